"""Symbols on demand, end to end: browser -> consumer -> Channels layer -> Finnhub feed ->
loopback Finnhub server, and trades back to the browser as candles.

Nothing is mocked: the feed runs as ``runfeed`` runs it (``run_feed``), the browser is a
``WebsocketCommunicator`` on the real ASGI application, and the server records the real
subscribe/unsubscribe frames it receives. The only hook is a subclass of the feed's
``DemandListener`` that lets a test wait until the feed has joined its demand group.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections

from market.live.demand import DemandListener, demand_group
from market.vendors.finnhub import feed as finnhub_feed
from market.models import Symbol
from market.feed.runner import run_feed
from tests import wsclient
from tests.wsclient import quiet
from tests.conftest import record_listeners
from tests.vendors.finnhub.server import Conn, FakeFinnhub
from tests.vendors.finnhub.test_feed import KEY, T_NY_OPEN, conf, until

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
TIMEOUT = 5
LINGER = 0.4


def make(ticker: str, *, active: bool = False, always_record: bool = False, source: str = "finnhub") -> Symbol:
    exchange = ticker.partition(":")[0] or "US"
    return Symbol.objects.create(ticker=ticker, exchange=exchange, kind="crypto", source=source,
                                 name=ticker, active=active, always_record=always_record)


@pytest.fixture
def listeners(monkeypatch) -> list[DemandListener]:
    return record_listeners(monkeypatch, finnhub_feed)


async def start_feed(settings, listeners: list[DemandListener], url: str, **extra: Any):
    settings.FINNHUB = conf(url, **{"DEMAND_LINGER_SECONDS": LINGER, **extra})
    settings.MARKET = {**settings.MARKET, "FLUSH_INTERVAL": 0.05}
    stop = asyncio.Event()
    task = asyncio.create_task(run_feed("finnhub", stop))
    await until(lambda: bool(listeners))
    await asyncio.wait_for(listeners[0].ready.wait(), TIMEOUT)
    return stop, task


async def stop_feed(stop: asyncio.Event, task: asyncio.Task) -> None:
    stop.set()
    await asyncio.wait_for(task, TIMEOUT)


def browser() -> AbstractAsyncContextManager[WebsocketCommunicator]:
    return wsclient.ws(timeout=TIMEOUT)


async def next_of(comm: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    """The next frame of ``kind``, skipping status frames (the feed reports as it goes)."""
    while True:
        frame = await comm.receive_json_from(timeout=TIMEOUT)
        if frame["type"] == kind:
            return frame
        assert frame["type"] == "status", frame


async def subscribe(comm: WebsocketCommunicator, ticker: str, tf: str = "5s") -> dict[str, Any]:
    await comm.send_json_to({"type": "subscribe", "symbol": ticker, "tf": tf})
    snap = await next_of(comm, "snapshot")
    assert (snap["symbol"], snap["tf"]) == (ticker, tf)
    return snap


def trade(ticker: str, price: float, ms: int = 0) -> tuple[str, float, int, float]:
    return (ticker, price, T_NY_OPEN * 1000 + ms, 1.0)


@pytest.fixture(autouse=True)
async def _release_db():
    """The consumer reads in asgiref's shared sync thread: release that connection so
    PostgreSQL can drop the test database."""
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


# -- first viewer subscribes, trades reach the browser, last viewer leaves ---------------------
async def test_an_inactive_symbol_streams_while_watched_and_is_unsubscribed_after_the_linger(
        settings, listeners):
    await database_sync_to_async(make)("BINANCE:XRPUSDT")
    async with FakeFinnhub(KEY) as server:
        stop, task = await start_feed(settings, listeners, server.url)
        await until(lambda: bool(server.conns))
        conn: Conn = server.conns[0]
        assert conn.subscribed == []  # nothing recorded, nobody watching: nothing streamed

        async with browser() as comm:
            snap = await subscribe(comm, "BINANCE:XRPUSDT")
            assert snap["candles"] == []
            await conn.wait_subscribed(1)
            assert conn.subscribed == ["BINANCE:XRPUSDT"]

            await conn.trades(trade("BINANCE:XRPUSDT", 0.61), trade("BINANCE:XRPUSDT", 0.62, 100))
            frame = await next_of(comm, "candle")
            while frame["candle"]["ticks"] < 2:  # the first flush may have caught one trade
                frame = await next_of(comm, "candle")
            assert frame["symbol"] == "BINANCE:XRPUSDT" and frame["tf"] == "5s"
            assert frame["candle"]["time"] == T_NY_OPEN
            assert (frame["candle"]["open"], frame["candle"]["close"]) == (0.61, 0.62)
            left = time.monotonic()
        # The browser is gone: the subscription lingers, then goes.
        await until(lambda: "BINANCE:XRPUSDT" in conn.unsubscribed)
        assert time.monotonic() - left >= LINGER
        assert conn.subscribed == []
        await stop_feed(stop, task)
    assert server.errors_sent == []


async def test_a_viewer_coming_back_within_the_linger_keeps_the_subscription(settings, listeners):
    await database_sync_to_async(make)("BINANCE:XRPUSDT")
    async with FakeFinnhub(KEY) as server:
        stop, task = await start_feed(settings, listeners, server.url, DEMAND_LINGER_SECONDS=30)
        await until(lambda: bool(server.conns))
        conn = server.conns[0]
        async with browser() as comm:
            await subscribe(comm, "BINANCE:XRPUSDT")
            await conn.wait_subscribed(1)
            await comm.send_json_to({"type": "unsubscribe", "symbol": "BINANCE:XRPUSDT", "tf": "5s"})
            await subscribe(comm, "BINANCE:XRPUSDT", tf="1m")
            await quiet(comm, 0.3)
        assert conn.subscribed == ["BINANCE:XRPUSDT"] and conn.unsubscribed == []
        await stop_feed(stop, task)


async def test_always_record_symbols_stay_subscribed_after_their_viewers_leave(settings, listeners):
    def create() -> None:
        make("BINANCE:ETHUSDT", always_record=True)  # inactive but always recorded
        make("BINANCE:XRPUSDT")

    await database_sync_to_async(create)()
    async with FakeFinnhub(KEY) as server:
        stop, task = await start_feed(settings, listeners, server.url)
        await until(lambda: bool(server.conns))
        conn = server.conns[0]
        await conn.wait_subscribed(1)
        assert conn.subscribed == ["BINANCE:ETHUSDT"]  # recorded with nobody watching
        async with browser() as comm:
            await subscribe(comm, "BINANCE:ETHUSDT")
            await subscribe(comm, "BINANCE:XRPUSDT")
            await conn.wait_subscribed(2)
        await until(lambda: "BINANCE:XRPUSDT" in conn.unsubscribed)
        await asyncio.sleep(LINGER)
        assert conn.subscribed == ["BINANCE:ETHUSDT"]
        assert "BINANCE:ETHUSDT" not in conn.unsubscribed
        await stop_feed(stop, task)


# -- the vendor limit ---------------------------------------------------------------------------
async def test_past_the_limit_only_the_asking_browser_is_told_and_gets_the_next_free_slot(
        settings, listeners):
    def create() -> None:
        make("BINANCE:BTCUSDT", active=True)  # recorded: takes one of the two slots
        make("BINANCE:XRPUSDT")
        make("BINANCE:ADAUSDT")

    await database_sync_to_async(create)()
    async with FakeFinnhub(KEY, limit=2) as server:
        stop, task = await start_feed(settings, listeners, server.url, MAX_SYMBOLS=2)
        await until(lambda: bool(server.conns))
        conn = server.conns[0]
        async with browser() as first, browser() as second:
            await subscribe(first, "BINANCE:XRPUSDT")
            await conn.wait_subscribed(2)

            await subscribe(second, "BINANCE:ADAUSDT")
            error = await next_of(second, "error")
            assert error["code"] == "symbol_limit"
            assert (error["symbol"], error["tf"]) == ("BINANCE:ADAUSDT", "5s")
            assert "Finnhub allows 2 symbols per connection" in error["message"]
            assert "BINANCE:ADAUSDT" in error["message"]

            # The first browser is unaffected: no error, and its candles keep coming.
            await conn.trades(trade("BINANCE:XRPUSDT", 0.7))
            frame = await next_of(first, "candle")
            assert frame["symbol"] == "BINANCE:XRPUSDT"
            assert await quiet(second, 0.3) == []  # not told twice, no foreign candles
            assert sorted(conn.subscribed) == ["BINANCE:BTCUSDT", "BINANCE:XRPUSDT"]
            assert server.errors_sent == []  # we never made Finnhub refuse a subscription

            # The first browser leaves XRP: the waiting browser gets the slot at once
            # (a lingering symbol never keeps a real viewer waiting).
            await first.send_json_to({"type": "unsubscribe", "symbol": "BINANCE:XRPUSDT", "tf": "5s"})
            await until(lambda: "BINANCE:ADAUSDT" in conn.subscribed)
            assert conn.unsubscribed == ["BINANCE:XRPUSDT"]
            await conn.trades(trade("BINANCE:ADAUSDT", 0.35))
            frame = await next_of(second, "candle")
            assert frame["symbol"] == "BINANCE:ADAUSDT"
        await stop_feed(stop, task)


# -- what stays an error --------------------------------------------------------------------------
async def test_unknown_and_inactive_non_demand_symbols_still_error(settings):
    def create() -> None:
        make("DEMO:SLEEPY", source="simulated")     # the simulated feed streams active symbols only
        make("BINANCE:XRPUSDT")

    await database_sync_to_async(create)()
    settings.FINNHUB = {**settings.FINNHUB, "ON_DEMAND": True}
    async with browser() as comm:
        for ticker in ("NSE:NOPE-EQ", "DEMO:SLEEPY"):
            await comm.send_json_to({"type": "subscribe", "symbol": ticker, "tf": "1m"})
            reply = await next_of(comm, "error")
            assert reply["message"] == f"unknown symbol {ticker}"
        await subscribe(comm, "BINANCE:XRPUSDT", tf="1m")  # known, on demand: fine
        settings.FINNHUB = {**settings.FINNHUB, "ON_DEMAND": False}
        await comm.send_json_to({"type": "subscribe", "symbol": "BINANCE:XRPUSDT", "tf": "5s"})
        reply = await next_of(comm, "error")
        assert reply["message"] == "unknown symbol BINANCE:XRPUSDT"


async def test_demand_messages_name_the_ticker_once_and_are_withdrawn_on_disconnect(settings):
    """The consumer's side of the protocol, read straight off the group."""
    await database_sync_to_async(make)("BINANCE:XRPUSDT")
    layer = get_channel_layer()
    ear = await layer.new_channel()
    await layer.group_add(demand_group("finnhub"), ear)
    async with browser() as comm:
        await subscribe(comm, "BINANCE:XRPUSDT", tf="5s")
        await subscribe(comm, "BINANCE:XRPUSDT", tf="1m")  # same ticker: no second add
        add = await asyncio.wait_for(layer.receive(ear), TIMEOUT)
        assert add["type"] == "demand.add" and add["ticker"] == "BINANCE:XRPUSDT"
        reply = add["reply"]
        await comm.send_json_to({"type": "unsubscribe", "symbol": "BINANCE:XRPUSDT", "tf": "5s"})
        await comm.send_json_to({"type": "ping"})
        assert (await next_of(comm, "pong")) == {"type": "pong"}
    remove = await asyncio.wait_for(layer.receive(ear), TIMEOUT)
    assert remove == {"type": "demand.remove", "ticker": "BINANCE:XRPUSDT", "reply": reply}
    await layer.group_discard(demand_group("finnhub"), ear)


# -- across processes: the real Redis pub/sub layer -------------------------------------------------
async def test_demand_and_refusals_cross_redis_between_web_and_feed_processes(
        settings, listeners, redis_url, monkeypatch):
    from channels_redis.pubsub import RedisPubSubChannelLayer

    config = {"hosts": [{"address": redis_url, "socket_timeout": None, "max_connections": 10_000}],
              "prefix": f"test{uuid.uuid4().hex[:12]}"}
    # The feed's listener gets a layer instance of its own: its own Redis connections,
    # as runfeed has in production. The web side uses the app's default layer.
    feed_layer = RedisPubSubChannelLayer(**config)
    monkeypatch.setattr(finnhub_feed, "get_channel_layer", lambda: feed_layer)

    def create() -> None:
        make("BINANCE:XRPUSDT")
        make("BINANCE:ADAUSDT")

    await database_sync_to_async(create)()
    # Through the settings fixture, not override_settings: the feed's start changes
    # settings.FINNHUB inside, and nested overrides would restore the wrong layers.
    original = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": config}}
    channel_layers.backends.clear()
    try:
        web_layer = get_channel_layer()
        assert isinstance(web_layer, RedisPubSubChannelLayer) and web_layer is not feed_layer
        async with FakeFinnhub(KEY, limit=1) as server:
            stop, task = await start_feed(settings, listeners, server.url, MAX_SYMBOLS=1)
            await until(lambda: bool(server.conns))
            conn = server.conns[0]
            async with browser() as first, browser() as second:
                await subscribe(first, "BINANCE:XRPUSDT")
                await conn.wait_subscribed(1)      # web -> Redis -> feed
                await conn.trades(trade("BINANCE:XRPUSDT", 0.5))
                assert (await next_of(first, "candle"))["symbol"] == "BINANCE:XRPUSDT"
                await subscribe(second, "BINANCE:ADAUSDT")
                error = await next_of(second, "error")  # feed -> Redis -> that browser only
                assert error["code"] == "symbol_limit" and "Finnhub allows 1" in error["message"]
                assert await quiet(first, 0.3) == []
            await until(lambda: "BINANCE:XRPUSDT" in conn.unsubscribed)  # remove crossed too
            await stop_feed(stop, task)
        await web_layer.flush()
    finally:
        await feed_layer.flush()
        settings.CHANNEL_LAYERS = original
        channel_layers.backends.clear()
