"""GET /api/market/status: the exchange calendar over HTTP, with the admin's overrides."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from market.models import CalendarOverride

IST = ZoneInfo("Asia/Kolkata")
pytestmark = pytest.mark.django_db


def at(y, m, d, hh=0, mm=0) -> int:
    return int(dt.datetime(y, m, d, hh, mm, tzinfo=IST).timestamp())


def status(client, **params):
    response = client.get("/api/market/status", params)
    return response.status_code, response.json()


def test_open_weekend_and_holiday(client):
    code, body = status(client, exchange="NSE", at=at(2026, 11, 9, 10, 0))
    assert code == 200
    assert body == {"exchange": "NSE", "open": True,
                    "session": {"open": at(2026, 11, 9, 9, 15), "close": at(2026, 11, 9, 15, 30)},
                    "next_open": at(2026, 11, 11, 9, 15), "reason": "open", "holiday": None}
    _, sat = status(client, exchange="nse", at=at(2026, 11, 7, 12, 0))
    assert (sat["open"], sat["reason"], sat["session"], sat["next_open"]) == (False, "weekend", None,
                                                                               at(2026, 11, 9, 9, 15))
    _, tue = status(client, exchange="BSE", at=str(at(2026, 11, 10, 12, 0)))
    assert (tue["reason"], tue["holiday"]) == ("holiday", "Diwali Balipratipada")


def test_admin_overrides_a_special_session_and_a_closure(client):
    CalendarOverride.objects.create(exchange="XNSE", date=dt.date(2026, 11, 8), kind="special",
                                    open=dt.time(18, 0), close=dt.time(19, 0), note="Muhurat trading")
    CalendarOverride.objects.create(exchange="NSE", date=dt.date(2026, 11, 11), kind="closed", note="Election day")
    _, sun = status(client, exchange="NSE", at=at(2026, 11, 8, 18, 15))
    assert (sun["open"], sun["reason"], sun["session"]) == (
        True, "special_session", {"open": at(2026, 11, 8, 18, 0), "close": at(2026, 11, 8, 19, 0)})
    _, wed = status(client, exchange="NSE", at=at(2026, 11, 11, 10, 0))
    assert (wed["open"], wed["reason"], wed["holiday"], wed["next_open"]) == (
        False, "holiday", "Election day", at(2026, 11, 12, 9, 15))
    _, cd = status(client, exchange="NSE_CD", at=at(2026, 11, 11, 10, 0))  # the closure was NSE's only
    assert (cd["open"], cd["session"]["close"]) == (True, at(2026, 11, 11, 17, 0))


def test_without_at_it_answers_for_now_and_round_the_clock_exchanges_are_open(client, make_symbol):
    code, body = status(client, exchange="US")
    assert code == 200 and body["exchange"] == "US" and isinstance(body["open"], bool)
    assert body["next_open"] is not None
    make_symbol("DEMO:ALPHA", "DEMO")
    _, demo = status(client, exchange="DEMO", at=at(2026, 11, 7, 12, 0))
    assert (demo["open"], demo["reason"]) == (True, "open")


@pytest.mark.parametrize("params", [
    {}, {"exchange": ""}, {"exchange": "NOPE"}, {"exchange": "NSE;DROP"}, {"exchange": "N" * 17},
    {"exchange": "NSE", "at": "soon"}, {"exchange": "NSE", "at": "nan"}, {"exchange": "NSE", "at": "-5"},
    {"exchange": "NSE", "at": "1e20"},
])
def test_a_bad_exchange_or_at_is_a_400(client, params):
    code, body = status(client, **params)
    assert code == 400 and set(body) == {"error"} and body["error"]


def test_only_get(client):
    response = client.post("/api/market/status?exchange=NSE")
    assert response.status_code == 405
