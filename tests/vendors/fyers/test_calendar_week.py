"""A simulated week of the live Fyers feed (real SDK, loopback server) on a fast clock:
Friday's session, a budget-day Saturday special session, Sunday with Muhurat trading in
the evening, Monday, the Diwali Balipratipada holiday on Tuesday (with one unscheduled tick). The stall watchdog stays
quiet while the calendar says closed (no reconnect loop), the badge says market_closed
with the next open, and candles exist only where ticks were."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import override_settings

from market import selectors
from market.conf import market
from market.core.timeframes import Timeframe
from market.core.sessions import DEFAULT_SESSIONS
from market.feed.runner import run_feed
from market.models import CalendarOverride, FeedState, Symbol
from tests.vendors.fyers.live import TOKENS, Market, candles, db, eventually, make_symbols

pytestmark = pytest.mark.django_db(transaction=True)

IST = ZoneInfo("Asia/Kolkata")
SBIN = "NSE:SBIN-EQ"
STALL = 1.0        # real seconds: a watchdog armed by mistake fires within every closed phase
HOLD = 2.5         # real seconds each closed phase lasts


def ist(d, hh, mm=0) -> int:
    return int(dt.datetime(2026, 11, d, hh, mm, tzinfo=IST).timestamp())


class Clock:
    """The feed's wall clock: the test moves it; it never goes back."""

    def __init__(self, t: int) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t


def feed_state() -> tuple[str, str]:
    row = FeedState.objects.filter(source="fyers").first()
    return (row.state, row.detail) if row else ("", "")


async def test_a_week_of_weekend_holiday_and_special_session(http, ws, fyers_settings, token, caplog):
    caplog.set_level(logging.WARNING, "market")
    http.tokens.update(TOKENS)
    await db(make_symbols, SBIN)
    await db(CalendarOverride.objects.create, exchange="NSE", date=dt.date(2026, 11, 7), kind="special",
             open=dt.time(9, 15), close=dt.time(15, 30), note="Budget day")
    await db(CalendarOverride.objects.create, exchange="XNSE", date=dt.date(2026, 11, 8), kind="special",
             open=dt.time(18, 0), close=dt.time(19, 0), note="Muhurat trading")
    clock = Clock(ist(6, 14, 0))
    broker = Market(ws)
    broker.snapshot_time[SBIN] = ist(6, 13, 0)  # the last trade before the run
    traded: list[int] = []

    async def trade_for(seconds: int) -> None:
        """A trade every simulated second, ten per real second."""
        for _ in range(seconds):
            clock.t += 1
            broker.trade(SBIN, 100.0 + len(traded) % 7, 1, int(clock.t))
            traded.append(int(clock.t))
            await asyncio.sleep(0.1)

    async def closed_at(t: int, why: str, opens: str) -> None:
        clock.t = t
        await eventually(lambda: feed_state()[0] == "market_closed", 10)
        await asyncio.sleep(HOLD)  # a watchdog armed by mistake would reconnect now
        state, detail = await db(feed_state)
        assert state == "market_closed" and f"({why})" in detail and f"opens {opens}" in detail, detail
        assert ws.connects == 1

    fyers = {**fyers_settings, "WS_URL": ws.url, "STALL_SECONDS": STALL}
    with override_settings(FYERS=fyers, MARKET={**settings.MARKET, "SESSIONS": DEFAULT_SESSIONS,
                                                "FLUSH_INTERVAL": 0.1}):
        market.cache_clear()
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True, clock=clock))
        try:
            await eventually(lambda: len(ws.subscribed) == 1, 40)  # standby: another run may hold the lock
            await eventually(lambda: feed_state()[0] == "live", 10)
            await trade_for(20)                                      # Friday 14:00, a regular session
            await eventually(lambda: feed_state()[0] == "live", 5)

            await closed_at(ist(6, 20, 0), "closed", "2026-11-07 09:15")       # Friday evening
            clock.t = ist(7, 10, 0)                                           # Saturday: budget day
            await trade_for(20)
            await eventually(lambda: feed_state()[0] == "live", 5)
            await closed_at(ist(8, 12, 0), "weekend", "2026-11-08 18:00")     # Sunday
            clock.t = ist(8, 18, 10)                                          # Muhurat trading
            await trade_for(20)
            await eventually(lambda: feed_state()[0] == "live", 5)
            await closed_at(ist(8, 20, 0), "weekend", "2026-11-09 09:15")     # Sunday night
            clock.t = ist(9, 10, 0)                                           # Monday
            await trade_for(20)
            await eventually(lambda: feed_state()[0] == "live", 5)
            await closed_at(ist(10, 12, 0), "Diwali Balipratipada", "2026-11-11 09:15")  # the holiday

            clock.t = ist(10, 12, 30)  # a print on the holiday: kept, logged, and the badge follows it
            await trade_for(1)
            await eventually(lambda: feed_state()[0] == "live", 5)
            assert "unscheduled session" in (await db(feed_state))[1]
            await eventually(lambda: len(candles(SBIN, "5s")) >= 1 + len({t - t % 5 for t in traded}), 10)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        # a web process deriving 2h from the stored 1h bars cuts Muhurat at 18:00 as well
        sbin = await db(Symbol.objects.get, ticker=SBIN)
        derived = await db(selectors.candle_list, symbol=sbin, tf=Timeframe.parse("2h"), start=ist(8, 0),
                           end=ist(9, 0))
        assert [c.time for c in derived] == [ist(8, 18, 0)]
        market.cache_clear()

    assert ws.connects == 1  # no reconnect loop, the whole week
    assert not any("no data for" in r.getMessage() for r in caplog.records)
    unscheduled = [r.getMessage() for r in caplog.records if "unscheduled session" in r.getMessage()]
    assert len(unscheduled) == 1 and "2026-11-10" in unscheduled[0] and "Diwali Balipratipada" in unscheduled[0]
    # candles only where ticks were: the snapshot's bucket and each traded 5 s bucket, nothing else
    stored = [row[0] for row in await db(candles, SBIN, "5s")]
    assert stored == sorted({broker.snapshot_time[SBIN] // 5 * 5} | {t - t % 5 for t in traded})
    sunday = [t for t in stored if ist(8, 0) <= t < ist(9, 0)]  # on Sunday only the Muhurat session's
    assert sunday and all(ist(8, 18, 0) <= t < ist(8, 19, 0) for t in sunday)
    # its hour bar is anchored on its own open (18:00), not on the regular 09:15 grid
    assert [row[0] for row in await db(candles, SBIN, "1h") if ist(8, 0) <= row[0] < ist(9, 0)] == [ist(8, 18, 0)]
    assert [t for t in stored if ist(10, 0) <= t < ist(11, 0)] == [(ist(10, 12, 30) + 1) // 5 * 5]


def test_reconciliation_and_back_fill_windows_follow_the_calendar():
    """Reconciliation only in or just after a session, the day bar once after the trading
    day's last close (none on a holiday), the back-fill counted in trading days."""
    from types import SimpleNamespace

    from market.core.calendar import Calendar
    from market.core.sessions import SessionBook
    from market.vendors.fyers.hours import Hours

    sbin = SimpleNamespace(ticker=SBIN, exchange="NSE", trading_session="0915-1530|1815-1915:")
    with override_settings(MARKET={**settings.MARKET, "SESSIONS": DEFAULT_SESSIONS}):
        market.cache_clear()
        hours = Hours({SBIN: sbin}, calendar=Calendar(SessionBook.from_config(DEFAULT_SESSIONS)))
        lookback = 1800
        assert hours.trading_recently(sbin, ist(6, 12, 0), lookback)        # Friday, in session
        assert hours.trading_recently(sbin, ist(6, 15, 50), lookback)       # its last bars
        assert not hours.trading_recently(sbin, ist(6, 16, 10), lookback)
        assert not hours.trading_recently(sbin, ist(7, 12, 0), lookback)    # Saturday
        assert not hours.trading_recently(sbin, ist(10, 12, 0), lookback)   # the holiday
        assert hours.day_closed(sbin, ist(6, 15, 0)) is None                # still trading
        assert hours.day_closed(sbin, ist(6, 16, 0)) == int(dt.datetime(2026, 11, 6, tzinfo=dt.timezone.utc)
                                                            .timestamp())
        assert hours.day_closed(sbin, ist(10, 16, 0)) is None               # no day bar on a holiday
        # five trading days before Wednesday 11 Nov: Mon 9, Fri 6, Thu 5, Wed 4, Tue 3
        assert hours.backfill_start(sbin, ist(11, 10, 0), 5) == ist(3, 9, 15)
        agri = SimpleNamespace(ticker="MCX:COTTON", exchange="MCX", trading_session="0900-1700|1815-1915:")
        assert not Hours({"MCX:COTTON": agri}, clock=lambda: ist(9, 18, 0)).open_now()  # closed at 17:00
        assert Hours({"MCX:GOLD": SimpleNamespace(ticker="MCX:GOLD", exchange="MCX", trading_session="")},
                     clock=lambda: ist(9, 18, 0)).open_now()
    market.cache_clear()
