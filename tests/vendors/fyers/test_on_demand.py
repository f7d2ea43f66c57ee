"""Symbols on demand for Fyers, end to end: a browser (the real ASGI app through a
``WebsocketCommunicator``) -> consumer -> Channels layer -> the Fyers feed (as runfeed runs
it) -> the real fyers-apiv3 SDK -> the loopback server speaking Fyers' binary protocol,
and ticks back to the browser as candles. History is answered by the loopback HTTP server.

The only hook is a subclass of the feed's ``DemandListener`` that records the listener,
so a test can wait until the feed listens (and reach the feed through its callback).
"""

from __future__ import annotations


import asyncio
import os
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import override_settings

from market import conf
from market.conf import demand_conf
from market.live.demand import DemandListener, on_demand
from market.vendors.fyers import feed as fyers_feed
from market.models import Candle, Symbol
from market.feed.runner import run_feed
from tests import wsclient
from tests.conftest import record_listeners
from tests.wsclient import quiet
from tests.vendors.fyers.live import TOKENS, Market, candles, db, eventually, make_symbols
from tests.vendors.fyers.loopback import topic_for

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
TIMEOUT = 10
LINGER = 0.6
SBIN, TCS, INFY = "NSE:SBIN-EQ", "NSE:TCS-EQ", "NSE:INFY-EQ"


def topic(ticker: str) -> str:
    return topic_for(TOKENS[ticker])


def subscribed_topics(ws) -> list[str]:
    return [t for request in ws.subscribed for t in request]


def unsubscribed_topics(ws) -> list[str]:
    return [t for request in ws.unsubscribed for t in request]


@pytest.fixture
def listeners(monkeypatch) -> list[DemandListener]:
    return record_listeners(monkeypatch, fyers_feed)


@pytest.fixture(autouse=True)
async def _release_db():
    """The consumer reads in asgiref's shared sync thread: release that connection so
    PostgreSQL can drop the test database."""
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


def aim(fyers_settings, ws, **extra):
    return override_settings(FYERS={**fyers_settings, "WS_URL": ws.url, "DEMAND_LINGER_SECONDS": LINGER,
                                    **extra})


async def start_feed(listeners: list[DemandListener], ws, *, subscribes: int = 1):
    """runfeed's Fyers feed, authenticated, its recorded symbols subscribed, listening; returns
    ``(stop, task, streams)``, ``streams`` the feed's symbol book (its session at ``.session``)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_feed("fyers", stop, standby=True))
    await eventually(lambda: bool(listeners), 40)  # standby: another test run may hold the lock
    await asyncio.wait_for(listeners[0].ready.wait(), 40)
    if subscribes:
        await eventually(lambda: len(ws.subscribed) >= subscribes, 40)
    streams = listeners[0].changed.__self__  # the feed's market.vendors.fyers.streams.Streams
    await eventually(lambda: streams.session.authed, 10)
    return stop, task, streams


async def stop_feed(stop: asyncio.Event, task: asyncio.Task) -> None:
    stop.set()
    await asyncio.wait_for(task, 30)


def browser() -> AbstractAsyncContextManager[WebsocketCommunicator]:
    return wsclient.ws(timeout=TIMEOUT)


async def next_of(comm: WebsocketCommunicator, kind: str, timeout: float = TIMEOUT, *,
                  subscribing: tuple[str, str] | None = None) -> dict[str, Any]:
    """The next frame of ``kind``, skipping status frames (the feed reports as it goes) and,
    while ``subscribing`` to a stream, live candles of other streams still in flight."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await comm.receive_json_from(timeout=max(0.01, deadline - time.monotonic()))
        if frame["type"] == kind:
            return frame
        if subscribing is not None and frame["type"] == "candle" and (frame["symbol"], frame["tf"]) != subscribing:
            continue  # e.g. a 5 s candle sent just before its stream was unsubscribed
        assert frame["type"] == "status", frame


async def candle_at(comm: WebsocketCommunicator, ticker: str, t: int, *, ticks: int = 1) -> dict[str, Any]:
    """The first candle frame of ``ticker`` for bucket ``t`` with at least ``ticks`` ticks."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        frame = await next_of(comm, "candle", timeout=max(0.01, deadline - time.monotonic()))
        assert frame["symbol"] == ticker, frame
        if frame["candle"]["time"] == t and frame["candle"]["ticks"] >= ticks:
            return frame["candle"]


async def subscribe(comm: WebsocketCommunicator, ticker: str, tf: str = "5s") -> dict[str, Any]:
    await comm.send_json_to({"type": "subscribe", "symbol": ticker, "tf": tf})
    snap = await next_of(comm, "snapshot", subscribing=(ticker, tf))
    assert (snap["symbol"], snap["tf"]) == (ticker, tf)
    return snap


def recent_bucket(seconds_back: int = 60) -> int:
    now = int(time.time())
    t = now - seconds_back
    return t - t % 5


def store_5s(ticker: str, t: int, price: float) -> None:
    Candle.objects.create(symbol=Symbol.objects.get(ticker=ticker), timeframe="5s", time=t, open=price,
                          high=price, low=price, close=price, volume=10, ticks=1)


# -- first viewer subscribes, history and ticks reach the browser, last viewer leaves -------------
async def test_an_inactive_symbol_streams_while_watched_backfilled_and_unsubscribed_after_the_linger(
        http, ws, fyers_settings, token, listeners):
    http.tokens.update(TOKENS)
    await db(make_symbols, SBIN)                 # recorded
    await db(make_symbols, TCS, active=False)    # known, inactive: on demand
    stored = recent_bucket(900)
    await db(store_5s, TCS, stored, 3400.0)      # history stored earlier: the feed resumes after it
    official = recent_bucket(300)                # the broker has a bar we do not: back-filled

    def history(q):
        if q["symbol"] == TCS and q["resolution"] == "5S":
            a, b = int(q["range_from"]), int(q["range_to"])
            if a <= official <= b:
                return 200, {"s": "ok", "candles": [[official, 3410.0, 3415.0, 3405.0, 3412.0, 70]]}
        return 200, {"s": "no_data", "candles": []}

    http.history = history
    broker = Market(ws)
    with aim(fyers_settings, ws):
        stop, task, streams = await start_feed(listeners, ws)
        assert subscribed_topics(ws) == [topic(SBIN)]  # nobody watches TCS: not streamed
        async with browser() as comm:
            asked = time.monotonic()
            snap = await subscribe(comm, TCS)
            assert [c["time"] for c in snap["candles"]] == [stored]  # the inactive symbol's history
            await eventually(lambda: topic(TCS) in subscribed_topics(ws), 5)
            assert time.monotonic() - asked < 5
            assert ws.subscribed[-1] == [topic(TCS)]  # only the new symbol, SBIN untouched

            # Back-filled through the shared limiter, from the newest stored candle on.
            froms = [int(q["range_from"]) for m, p, q, h in http.requests
                     if p == "/data/history" and q["symbol"] == TCS and q["resolution"] == "5S"]
            assert froms and min(froms) == stored + 5
            bar = await candle_at(comm, TCS, official, ticks=0)  # the broker's bar: no tick count
            assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]) == (
                3410.0, 3415.0, 3405.0, 3412.0, 70.0)

            t = recent_bucket(20)
            broker.trade(TCS, 3420.0, 5, t + 1)
            broker.trade(TCS, 3425.0, 5, t + 2)
            live = await candle_at(comm, TCS, t, ticks=2)
            assert (live["open"], live["high"], live["close"]) == (3420.0, 3425.0, 3425.0)
            left = time.monotonic()
        # The browser is gone: the subscription lingers, then goes (and only TCS goes).
        await eventually(lambda: topic(TCS) in unsubscribed_topics(ws), 10)
        assert time.monotonic() - left >= LINGER
        assert unsubscribed_topics(ws) == [topic(TCS)]
        assert TCS not in streams.symbols and SBIN in streams.symbols
        # The SDK's own list of subscribed symbols forgot TCS too (its unsubscribe quirk
        # would otherwise leave a stale copy behind per cycle, up to its 5000 cap).
        await eventually(lambda: topic(TCS) not in streams.session.socket._sdk.scrips_per_channel[11], 5)
        assert streams.session.socket._sdk.scrips_per_channel[11] == [topic(SBIN)]
        before = await db(candles, TCS, "5s")
        broker.trade(TCS, 3430.0, 5, t + 6)       # in flight after the unsubscribe: dropped
        broker.trade(SBIN, 600.0, 5, t + 6)
        await eventually(lambda: any(c[0] == t + 5 for c in candles(SBIN, "5s")), 5)
        await stop_feed(stop, task)
    assert await db(candles, TCS, "5s") == before


async def test_a_viewer_coming_back_within_the_linger_keeps_the_subscription(
        http, ws, fyers_settings, token, listeners):
    http.tokens.update(TOKENS)
    await db(make_symbols, SBIN)
    await db(make_symbols, TCS, active=False)
    Market(ws)
    with aim(fyers_settings, ws, DEMAND_LINGER_SECONDS=30):
        stop, task, streams = await start_feed(listeners, ws)
        async with browser() as comm:
            await subscribe(comm, TCS)
            await eventually(lambda: topic(TCS) in subscribed_topics(ws), 5)
            await comm.send_json_to({"type": "unsubscribe", "symbol": TCS, "tf": "5s"})
            await subscribe(comm, TCS, tf="1m")
            await quiet(comm, 0.5)
        await asyncio.sleep(0.5)
        assert unsubscribed_topics(ws) == [] and subscribed_topics(ws).count(topic(TCS)) == 1
        await stop_feed(stop, task)


async def test_always_record_symbols_stay_subscribed_after_their_viewers_leave(
        http, ws, fyers_settings, token, listeners):
    http.tokens.update(TOKENS)

    def create() -> None:
        Symbol.objects.create(ticker=SBIN, exchange="NSE", name=SBIN, source="fyers", active=False,
                              always_record=True)  # inactive, but always recorded
        make_symbols(TCS, active=False)

    await db(create)
    Market(ws)
    with aim(fyers_settings, ws):
        stop, task, streams = await start_feed(listeners, ws)
        assert subscribed_topics(ws) == [topic(SBIN)]  # recorded with nobody watching
        async with browser() as comm:
            await subscribe(comm, SBIN)
            await subscribe(comm, TCS)
            await eventually(lambda: topic(TCS) in subscribed_topics(ws), 5)
        await eventually(lambda: topic(TCS) in unsubscribed_topics(ws), 10)
        await asyncio.sleep(LINGER + 0.5)
        assert topic(SBIN) not in unsubscribed_topics(ws)
        assert list(streams.symbols) == [SBIN]
        await stop_feed(stop, task)


# -- the cap -------------------------------------------------------------------------------------
async def test_past_the_cap_only_the_asking_browser_is_refused_and_gets_the_next_free_slot(
        http, ws, fyers_settings, token, listeners):
    http.tokens.update(TOKENS)
    await db(make_symbols, SBIN)                      # recorded: one of the two slots
    await db(make_symbols, TCS, INFY, active=False)
    broker = Market(ws)
    with aim(fyers_settings, ws, MAX_SYMBOLS=2):
        stop, task, streams = await start_feed(listeners, ws)
        async with browser() as first, browser() as second:
            await subscribe(first, TCS)
            await eventually(lambda: topic(TCS) in subscribed_topics(ws), 5)

            await subscribe(second, INFY)
            error = await next_of(second, "error")
            assert error["code"] == "symbol_limit" and (error["symbol"], error["tf"]) == (INFY, "5s")
            assert "streams at most 2 symbols" in error["message"] and INFY in error["message"]

            # The first browser is unaffected: no error, and its candles keep coming.
            await asyncio.sleep(0.5)  # TCS's back-fill (no history here) releases its ticks
            t = recent_bucket(20)
            broker.trade(TCS, 3500.0, 5, t + 1)
            assert (await candle_at(first, TCS, t))["close"] == 3500.0
            assert await quiet(second, 0.3) == []      # told once, no foreign candles
            assert topic(INFY) not in subscribed_topics(ws)  # Fyers never asked for a third
            assert "1 watched symbol(s) waiting" in streams.live_detail()

            # The first browser leaves TCS: the waiting one gets the slot at once (a
            # lingering symbol never keeps a real viewer waiting).
            await first.send_json_to({"type": "unsubscribe", "symbol": TCS, "tf": "5s"})
            await eventually(lambda: topic(INFY) in subscribed_topics(ws), 5)
            assert unsubscribed_topics(ws) == [topic(TCS)]
            # ... and TCS went before INFY came (the SDK's no-op re-subscribe of TCS, the
            # unsubscribe, then INFY): the socket never held more than the cap.
            assert ws.log[-3:] == [4, 5, 4] and ws.subscribed[-1] == [topic(INFY)]
            await asyncio.sleep(0.5)
            broker.trade(INFY, 1500.0, 5, t + 2)
            assert (await candle_at(second, INFY, t))["close"] == 1500.0
        await stop_feed(stop, task)


# -- what stays an error, and the defaults -------------------------------------------------------
async def test_with_on_demand_off_an_inactive_fyers_symbol_is_unknown_to_a_browser():
    await db(make_symbols, TCS, active=False)
    with override_settings(FYERS={**settings.FYERS, "ON_DEMAND": False}):
        async with browser() as comm:
            await comm.send_json_to({"type": "subscribe", "symbol": TCS, "tf": "1m"})
            assert (await next_of(comm, "error"))["message"] == f"unknown symbol {TCS}"
    with override_settings(FYERS={**settings.FYERS, "ON_DEMAND": True}):
        async with browser() as comm:
            await subscribe(comm, TCS, tf="1m")


def test_on_demand_is_the_default_for_fyers():
    assert "FYERS_ON_DEMAND" not in os.environ
    resolved = conf.raw("FYERS")
    assert resolved["ON_DEMAND"] is True
    assert resolved["DEMAND_LINGER_SECONDS"] == 300 and resolved["DEMAND_TTL_SECONDS"] == 90
    without = {k: v for k, v in settings.FYERS.items() if k != "ON_DEMAND"}
    with override_settings(FYERS=without):
        assert on_demand("fyers")
        assert demand_conf("fyers").linger == 300
