"""GET /api/market/status: the exchange calendar over HTTP, with the admin's overrides."""

from __future__ import annotations

import datetime as dt
import json
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


# ---- the chart's badge (static/market/js/status.js) in headless Chromium -----------------------
BADGE_PAGE = """<!doctype html><html><body>
<span id="status" role="status"></span>
<script id="chart-config" type="application/json">{"exchange": "NSE", "tz": "Asia/Kolkata"}</script>
<script type="module">
import { createStatus } from '/static/market/js/status.js';
window.tickchart = {};
const status = createStatus(document.getElementById('status'), null, window.tickchart);
status.socket = 'open';
status.gotSnapshot = true;
window.badge = status;
</script></body></html>"""


@pytest.mark.parametrize("closed_by_calendar", [True, False])
def test_the_badge_says_when_the_market_opens(closed_by_calendar):
    """The real module, its answers routed: with the feed's market_closed it says when the
    market opens (exchange-local); the calendar alone marks a holiday closed."""
    from pathlib import Path

    from tests.e2e.test_chart_browser import CHROMIUM, CHROMIUM_ARGS, need_chromium

    need_chromium()
    from playwright.sync_api import sync_playwright

    static = Path(__file__).resolve().parents[2] / "static"
    import time  # noqa: PLC0415

    opens = int(time.time()) // 60 * 60 + 3 * 86400  # the calendar's answer must not have run out
    local = dt.datetime.fromtimestamp(opens, IST).strftime("%a %d %b %H:%M")
    answer = {"exchange": "NSE", "open": False, "session": None, "next_open": opens, "reason": "holiday",
              "holiday": "Diwali Balipratipada"}
    if not closed_by_calendar:
        answer = {**answer, "open": True, "session": {"open": 0, "close": 4102444000}, "reason": "open",
                  "holiday": None}
    asked: list[str] = []

    def route(r):
        url = r.request.url
        if "/api/market/status" in url:
            asked.append(url)
            return r.fulfill(status=200, content_type="application/json", body=json.dumps(answer))
        if "/static/" in url:
            path = static / url.split("/static/", 1)[1]
            return r.fulfill(status=200, content_type="text/javascript", body=path.read_text())
        return r.fulfill(status=200, content_type="text/html", body=BADGE_PAGE)

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            page.route("http://tickchart.test/**", route)
            page.goto("http://tickchart.test/chart/")
            page.wait_for_function("() => window.tickchart && window.tickchart.market !== undefined")
            page.evaluate("() => window.badge.refresh()")
            status = page.evaluate("() => document.body.dataset.status")
            assert status == ("market_closed" if closed_by_calendar else "live")
            assert page.locator("#status").inner_text() == ("market closed" if closed_by_calendar else "live")
            page.evaluate("() => window.badge.onFeed({source: 'fyers', state: 'market_closed', detail: '', "
                          "heartbeat: 1})")
            if closed_by_calendar:
                page.wait_for_function("() => document.getElementById('status').textContent.includes('opens')")
                assert page.locator("#status").inner_text() == f"market closed — opens {local}"
            else:  # the feed says closed while the calendar expected a session: no opening time to give
                page.wait_for_function("() => document.body.dataset.status === 'market_closed'")
                page.wait_for_function("() => window.tickchart.market !== null && "
                                       "document.getElementById('status').textContent === 'market closed'")
        finally:
            chromium.close()
    assert asked and "exchange=NSE" in asked[0]
