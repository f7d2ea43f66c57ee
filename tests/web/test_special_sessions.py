"""Timeframes derived on read in a web process (``/api/candles``, the consumer's snapshot)
anchor a special session's bars on its own open, as runfeed stores them: Muhurat trading
18:00-19:00 IST on a Sunday gives 30m bars at 18:00 and 18:30, not on the 09:15 grid."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from market import selectors
from market.conf import market
from market.core.timeframes import Timeframe
from market.models import CalendarOverride, Candle

IST = ZoneInfo("Asia/Kolkata")
pytestmark = pytest.mark.django_db


def at(hh: int, mm: int) -> int:
    return int(dt.datetime(2026, 11, 8, hh, mm, tzinfo=IST).timestamp())


def test_derived_bars_of_a_muhurat_session_start_at_its_open(client, make_symbol):
    symbol = make_symbol("NSE:SBIN-EQ", "NSE")
    CalendarOverride.objects.create(exchange="XNSE", date=dt.date(2026, 11, 8), kind="special",
                                    open=dt.time(18, 0), close=dt.time(19, 0), note="Muhurat trading")
    # what runfeed stored (its engine anchors the day on 18:00): four 15m bars
    for i, m in enumerate((0, 15, 30, 45)):
        Candle.objects.create(symbol=symbol, timeframe="15m", time=at(18, m), open=100 + i, high=101 + i,
                              low=99 + i, close=100.5 + i, volume=10 * (i + 1), ticks=1)
    tf30 = Timeframe.parse("30m")
    regular = market().sessions.for_exchange("NSE")  # without the calendar: the 09:15 grid
    assert regular.day_of(at(18, 0)).bucket_start(tf30, at(18, 0)) != at(18, 0)

    body = client.get("/api/candles", {"symbol": "NSE:SBIN-EQ", "tf": "30m"}).json()
    assert [(c["time"], c["open"], c["close"], c["volume"]) for c in body["candles"]] == [
        (at(18, 0), 100.0, 101.5, 30.0), (at(18, 30), 102.0, 103.5, 70.0)]
    session = selectors.session_for("NSE")  # the consumer's snapshot and live tracker use this
    assert session.day_of(at(18, 40)).bucket_start(tf30, at(18, 40)) == at(18, 30)

    CalendarOverride.objects.all().delete()  # withdrawn in the admin: the regular grid again
    assert selectors.session_for("NSE").day_of(at(18, 0)).bucket_start(tf30, at(18, 0)) != at(18, 0)
