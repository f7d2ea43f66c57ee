"""``runfeed --source finnhub`` against a loopback server speaking Finnhub's protocol.

Nothing is mocked: the feed opens a real WebSocket to ``tests/vendors/finnhub/server.py``, which
checks the token, records real subscribe frames and sends real trade/ping/error frames or
drops the TCP connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import pytest
from channels.db import database_sync_to_async

from market.models import Candle, FeedState, Symbol
from market.feed.runner import run_feed
from tests.vendors.finnhub.server import Conn, FakeFinnhub

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "fh-SECRET-key-5f2a9c"
T_NY_OPEN = 1_732_287_600          # Fri 2024-11-22 15:00 UTC = 10:00 New York (in session)
T_NY_PRE = 1_732_280_400           # 08:00 New York: pre-market, out of session


def conf(url: str, **extra: Any) -> dict[str, Any]:
    base = {"API_KEY": KEY, "WS_URL": url, "MAX_SYMBOLS": 50, "BACKOFF_MIN": 0.05, "BACKOFF_MAX": 0.4,
            "REFRESH_SECONDS": 30, "EXCLUDED_CONDITIONS": []}
    base.update(extra)
    return base


def make(ticker: str, exchange: str, kind: str = "equity", active: bool = True) -> Symbol:
    return Symbol.objects.create(ticker=ticker, exchange=exchange, kind=kind, source="finnhub",
                                 name=ticker, active=active)


async def until(predicate: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def candles(ticker: str, tf: str = "5s") -> list[tuple]:
    return list(Candle.objects.filter(symbol__ticker=ticker, timeframe=tf).order_by("time")
                .values_list("time", "open", "high", "low", "close", "volume", "ticks"))


def feed_state() -> FeedState | None:
    return FeedState.objects.filter(source="finnhub").first()


async def start(settings, url: str, **extra: Any):
    settings.FINNHUB = conf(url, **extra)
    settings.MARKET = {**settings.MARKET, "FLUSH_INTERVAL": 0.05}
    stop = asyncio.Event()
    task = asyncio.create_task(run_feed("finnhub", stop))
    return stop, task


async def test_trades_become_candles_with_per_trade_volume_and_ms_times(settings):
    await database_sync_to_async(make)("AAPL", "US")
    await database_sync_to_async(make)("BINANCE:BTCUSDT", "BINANCE", "crypto")
    done = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.wait_subscribed(2)
        await c.trades(("AAPL", 190.0, T_NY_OPEN * 1000 + 1, 100), ("AAPL", 191.0, T_NY_OPEN * 1000 + 4_999, 50),
                       ("AAPL", 189.5, T_NY_OPEN * 1000 + 5_000, 7), ("AAPL", 189.5, T_NY_OPEN * 1000 + 5_000, 7))
        await c.send({"type": "ping"})
        await c.trades(("BINANCE:BTCUSDT", 90000.5, T_NY_OPEN * 1000 + 250, 0.25),
                       ("AAPL", 150.0, T_NY_PRE * 1000, 10))          # pre-market: out of session
        done.set()

    async with FakeFinnhub(KEY, [script]) as server:
        stop, task = await start(settings, server.url)
        await asyncio.wait_for(done.wait(), 5)
        await until(lambda: database_sync_to_async(lambda: len(candles("AAPL")) == 2
                                                   and len(candles("BINANCE:BTCUSDT")) == 1)())
        stop.set()
        pipeline = await asyncio.wait_for(task, 5)

    assert server.conns[0].subscribed == ["AAPL", "BINANCE:BTCUSDT"]
    aapl = await database_sync_to_async(candles)("AAPL")
    # ms times: .001 and 4.999 s share the first 5 s bucket, 5.000 opens the next.
    assert aapl[0] == (T_NY_OPEN, 190.0, 191.0, 190.0, 191.0, 150.0, 2)
    # Two identical prints are two trades (no repeat detection on per-trade sizes).
    assert aapl[1] == (T_NY_OPEN + 5, 189.5, 189.5, 189.5, 189.5, 14.0, 2)
    btc = await database_sync_to_async(candles)("BINANCE:BTCUSDT")
    assert btc == [(T_NY_OPEN, 90000.5, 90000.5, 90000.5, 90000.5, 0.25, 1)]
    assert pipeline.rejected() == {"out_of_session": 1}
    assert pipeline.not_ticks == 1  # the ping
    assert pipeline.messages == 3


async def test_bad_entries_are_counted_and_the_rest_of_the_frame_is_used(settings):
    await database_sync_to_async(make)("BINANCE:ETHUSDT", "BINANCE", "crypto")
    done = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.wait_subscribed(1)
        await c.send("{not json")
        await c.send({"type": "trade", "data": [
            {"s": "BINANCE:ETHUSDT", "p": "x", "t": T_NY_OPEN * 1000, "v": 1},
            {"s": "BINANCE:ETHUSDT", "p": 3000.0, "t": T_NY_OPEN * 1000, "v": 2},
            {"s": "NOT:SUBSCRIBED", "p": 1.0, "t": T_NY_OPEN * 1000, "v": 1},
        ]})
        done.set()

    async with FakeFinnhub(KEY, [script]) as server:
        stop, task = await start(settings, server.url)
        await asyncio.wait_for(done.wait(), 5)
        await until(lambda: database_sync_to_async(lambda: len(candles("BINANCE:ETHUSDT")) == 1)())
        stop.set()
        pipeline = await asyncio.wait_for(task, 5)
    assert pipeline.rejected() == {"bad_json": 1, "bad_price": 1, "unknown_symbol": 1}
    assert (await database_sync_to_async(candles)("BINANCE:ETHUSDT"))[0][5] == 2.0


async def test_dropped_connection_reconnects_with_backoff_and_resubscribes(settings, caplog):
    caplog.set_level(logging.DEBUG)
    await database_sync_to_async(make)("OANDA:EUR_USD", "OANDA", "currency")
    second = asyncio.Event()

    async def first(c: Conn) -> None:
        await c.wait_subscribed(1)
        await c.trades(("OANDA:EUR_USD", 1.0500, T_NY_OPEN * 1000, 0))
        await asyncio.sleep(0.1)
        c.drop()

    async def then(c: Conn) -> None:
        await c.wait_subscribed(1)
        await c.trades(("OANDA:EUR_USD", 1.0510, T_NY_OPEN * 1000 + 6_000, 0))
        second.set()

    async with FakeFinnhub(KEY, [first, then], refuse=[]) as server:
        stop, task = await start(settings, server.url)
        await asyncio.wait_for(second.wait(), 5)
        await until(lambda: database_sync_to_async(lambda: len(candles("OANDA:EUR_USD")) == 2)())
        stop.set()
        await asyncio.wait_for(task, 5)

    assert len(server.conns) == 2
    assert server.conns[1].subscribed == ["OANDA:EUR_USD"]
    assert server.conns[1].opened - server.conns[0].opened >= 0.05  # waited the backoff
    assert "feed finnhub is reconnecting" in caplog.text
    rows = await database_sync_to_async(candles)("OANDA:EUR_USD")
    assert [r[4] for r in rows] == [1.05, 1.051]
    assert [r[5] for r in rows] == [0.0, 0.0]  # forex quotes carry no volume


async def test_refused_handshakes_back_off_exponentially(settings):
    await database_sync_to_async(make)("BINANCE:SOLUSDT", "BINANCE", "crypto")
    connected = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.wait_subscribed(1)
        connected.set()

    async with FakeFinnhub(KEY, [script], refuse=[503, 503, 503]) as server:
        stop, task = await start(settings, server.url, BACKOFF_MIN=0.1, BACKOFF_MAX=1.0)
        await asyncio.wait_for(connected.wait(), 5)
        stop.set()
        await asyncio.wait_for(task, 5)
    gaps = [b - a for a, b in zip(server.attempts, server.attempts[1:])]
    assert len(gaps) == 3
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4
    assert gaps[2] < 0.4 * 2  # not the maximum: it doubles


async def test_a_rejected_key_is_token_expired_and_never_logged(settings, caplog):
    caplog.set_level(logging.DEBUG)
    await database_sync_to_async(make)("AAPL", "US")
    async with FakeFinnhub("the-right-key") as server:
        stop, task = await start(settings, server.url)
        await until(lambda: len(server.attempts) >= 2)
        await until(lambda: database_sync_to_async(
            lambda: (s := feed_state()) is not None and s.state in ("token_expired", "reconnecting"))())
        stop.set()
        await asyncio.wait_for(task, 5)
    assert server.tokens_seen[0] == KEY  # the key did reach Finnhub...
    assert "Finnhub rejected the API key (HTTP 401)" in caplog.text
    assert KEY not in caplog.text       # ...and nothing else: not the logs (websockets' debug included)
    state = await database_sync_to_async(feed_state)()
    assert KEY not in state.detail


async def test_key_never_logged_even_at_debug_on_a_working_connection(settings, caplog):
    caplog.set_level(logging.DEBUG)
    await database_sync_to_async(make)("AAPL", "US")
    done = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.wait_subscribed(1)
        await c.send({"type": "error", "msg": f"echo {KEY}"})  # even when Finnhub echoes it
        await c.trades(("AAPL", 190.0, T_NY_OPEN * 1000, 1))
        done.set()

    async with FakeFinnhub(KEY, [script]) as server:
        stop, task = await start(settings, server.url)
        await asyncio.wait_for(done.wait(), 5)
        await until(lambda: database_sync_to_async(lambda: len(candles("AAPL")) == 1)())
        stop.set()
        await asyncio.wait_for(task, 5)
    assert "GET /?token=***" in caplog.text  # websockets' own debug line, redacted
    assert KEY not in caplog.text


async def test_error_frames_reach_the_status_every_browser_sees(settings):
    await database_sync_to_async(make)("BINANCE:BTCUSDT", "BINANCE", "crypto")

    async def script(c: Conn) -> None:
        await c.wait_subscribed(1)
        await c.send({"type": "error", "msg": "Invalid symbol FOO:BAR"})

    async with FakeFinnhub(KEY, [script]) as server:
        stop, task = await start(settings, server.url)
        await until(lambda: database_sync_to_async(
            lambda: (s := feed_state()) is not None and "Invalid symbol FOO:BAR" in s.detail)())
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_more_than_50_symbols_are_named_never_silently_dropped(settings, caplog):
    caplog.set_level(logging.INFO)

    def create() -> None:
        for i in range(53):
            make(f"BINANCE:C{i:02d}USDT", "BINANCE", "crypto")

    await database_sync_to_async(create)()
    subscribed = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.wait_subscribed(50)
        await asyncio.sleep(0.1)  # anything past 50 would arrive now
        subscribed.set()

    async with FakeFinnhub(KEY, [script], limit=50) as server:
        stop, task = await start(settings, server.url)
        await asyncio.wait_for(subscribed.wait(), 5)
        await until(lambda: database_sync_to_async(
            lambda: (s := feed_state()) is not None and "3 symbol(s) not streamed" in s.detail
            and "BINANCE:C50USDT" in s.detail and s.state == "live")())
        stop.set()
        await asyncio.wait_for(task, 5)
    assert len(server.conns[0].subscribed) == 50
    assert server.errors_sent == []  # we never made Finnhub refuse a subscription
    left_out = ["BINANCE:C50USDT", "BINANCE:C51USDT", "BINANCE:C52USDT"]
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "not streamed" in r.getMessage()]
    assert warning and all(t in warning[0] for t in left_out) and "50 per connection" in warning[0]


async def test_symbols_added_or_deactivated_while_running_are_subscribed_or_unsubscribed(settings):
    await database_sync_to_async(make)("AAPL", "US")
    conn_ready = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.wait_subscribed(1)
        conn_ready.set()

    async with FakeFinnhub(KEY, [script]) as server:
        stop, task = await start(settings, server.url, REFRESH_SECONDS=0.1)
        await asyncio.wait_for(conn_ready.wait(), 5)
        await database_sync_to_async(make)("BINANCE:BTCUSDT", "BINANCE", "crypto")
        await database_sync_to_async(lambda: Symbol.objects.filter(ticker="AAPL").update(active=False))()
        conn = server.conns[0]
        await until(lambda: conn.subscribed == ["BINANCE:BTCUSDT"] and conn.unsubscribed == ["AAPL"])
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_missing_key_stops_with_a_clear_status(settings):
    stop, task = await start(settings, "ws://127.0.0.1:9", API_KEY=None)
    await until(lambda: database_sync_to_async(
        lambda: (s := feed_state()) is not None and s.state == "token_expired"
        and s.detail == "FINNHUB_API_KEY is not set")())
    stop.set()
    pipeline = await asyncio.wait_for(task, 5)
    assert pipeline.messages == 0


async def test_a_holiday_of_the_exchange_calendar_is_market_closed_with_the_next_open(settings):
    """Within the regular hours, but the calendar (an admin closure of today) says shut."""
    import datetime as dt

    from market.models import CalendarOverride

    settings.MARKET = {**settings.MARKET, "SESSIONS": {"US": {"tz": "UTC", "open": "00:00", "close": "23:59"}}}
    today = dt.datetime.now(dt.timezone.utc).date()
    await database_sync_to_async(CalendarOverride.objects.create)(exchange="XNYS", date=today, kind="closed",
                                                                  note="Test closure")
    await database_sync_to_async(make)("AAPL", "US")
    subscribed = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.wait_subscribed(1)
        subscribed.set()

    async with FakeFinnhub(KEY, [script]) as server:
        stop, task = await start(settings, server.url)
        await asyncio.wait_for(subscribed.wait(), 5)
        await until(lambda: database_sync_to_async(
            lambda: (s := feed_state()) is not None and s.state == "market_closed" and "opens" in s.detail)())
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_all_symbols_outside_their_session_is_market_closed(settings):
    hour = time.gmtime().tm_hour
    closed_now = {"tz": "UTC", "open": "20:00", "close": "21:00"} if hour < 12 else \
        {"tz": "UTC", "open": "02:00", "close": "03:00"}
    settings.MARKET = {**settings.MARKET, "SESSIONS": {"US": closed_now}}
    await database_sync_to_async(make)("AAPL", "US")
    subscribed = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.wait_subscribed(1)
        subscribed.set()

    async with FakeFinnhub(KEY, [script]) as server:
        stop, task = await start(settings, server.url)
        await asyncio.wait_for(subscribed.wait(), 5)
        await until(lambda: database_sync_to_async(
            lambda: (s := feed_state()) is not None and s.state == "market_closed")())
        stop.set()
        await asyncio.wait_for(task, 5)
