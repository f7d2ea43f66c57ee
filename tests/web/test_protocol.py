"""Every frame a real consumer sends matches its JSON Schema (market/web/protocol.schema.json).

The consumers run behind the real ASGI application (channels' WebsocketCommunicator); a
communicator that checks each ``websocket.send`` it takes off the wire validates every
frame against the endpoint's schema and the schema of its ``type``, so a frame that drifts
(a key renamed, added or dropped, a type changed) fails here. Client messages are checked
against the schema too: the ones the server accepts are valid, the ones it answers with an
error are not.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.db import connections
from django.test import override_settings
from jsonschema import Draft202012Validator, ValidationError

from market import services
from market.core import frames
from market.core.pulse import Mover, StressEvent, snapshot as pulse_snapshot
from market.core.types import Candle, CandleUpdate
from market.live.broadcast import candles_publish, status_publish
from market.live.demand import demand_group
from market.models import FeedState, PulseEvent, Symbol
from market.pulse.service import PULSE_EVENT, PULSE_GROUP
from market.web.protocol import SCHEMA_PATH, candles_frame
from tests.wsclient import HEADERS

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5
QUIET = 0.3
TICKER = "DEMO:ALPHA"
T0 = 1_731_999_960  # a multiple of 120: a 2m bucket starts here

SCHEMA = json.loads(SCHEMA_PATH.read_text())
Draft202012Validator.check_schema(SCHEMA)
SERVER_TYPES = sorted(k.split(".", 1)[1] for k in SCHEMA["$defs"] if k.startswith("server."))


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{name}"})


def check(name: str, message: Any) -> None:
    """``message`` is valid for the endpoint schema ``name`` and for its own type's schema."""
    validator(name).validate(message)
    side = name.split(".")[1]
    validator(f"{side}.{message['type']}").validate(message)


def is_valid(name: str, message: Any) -> bool:
    return validator(name).is_valid(message)


class CheckedCommunicator(WebsocketCommunicator):
    """Validates every text frame the server sends, whichever way the test reads it."""

    def __init__(self, path: str, endpoint: str) -> None:
        from tickchart.asgi import application

        super().__init__(application, path, headers=HEADERS)
        self.endpoint = endpoint
        self.seen: list[str] = []

    async def receive_output(self, timeout: float = 1) -> dict[str, Any]:
        output = await super().receive_output(timeout)
        if output.get("type") == "websocket.send":
            text = output.get("text")
            assert text is not None, "the server sends JSON text frames only"
            frame = orjson.loads(text)
            check(f"{self.endpoint}.server", frame)
            self.seen.append(frame["type"])
        return output

    async def send_valid(self, message: dict[str, Any]) -> None:
        check(f"{self.endpoint}.client", message)
        await self.send_json_to(message)

    async def recv(self) -> dict[str, Any]:
        return await self.receive_json_from(timeout=TIMEOUT)

    async def next_of(self, kind: str) -> dict[str, Any]:
        """The next frame of ``kind``, past status and sync frames."""
        while (frame := await self.recv())["type"] != kind:
            assert frame["type"] in ("status", "sync"), frame
        return frame

    async def drain(self) -> list[dict[str, Any]]:
        frames_ = []
        while not await self.receive_nothing(timeout=QUIET, interval=0.01):
            frames_.append(await self.recv())
        return frames_


@asynccontextmanager
async def client(path: str = "/ws/market/", endpoint: str = "market") -> AsyncIterator[CheckedCommunicator]:
    comm = CheckedCommunicator(path, endpoint)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    try:
        yield comm
        await comm.drain()  # whatever is still on the wire is checked too
    finally:
        await comm.disconnect(timeout=TIMEOUT)


@pytest.fixture(autouse=True)
async def _close_consumer_db_connections():
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


def candle(i: int, ticks: int = 10) -> Candle:
    base = 100.0 + i
    return Candle(time=T0 + 60 * i, open=base, high=base + 2, low=base - 1, close=base + 0.5,
                  volume=10.0 * ticks, ticks=ticks)


def upd(c: Candle, ticker: str = TICKER) -> CandleUpdate:
    return CandleUpdate(symbol=ticker, timeframe="1m", candle=c, final=False)


def store(symbol: Symbol, *candles: Candle) -> None:
    services.candle_upsert_many(updates=[upd(c, symbol.ticker) for c in candles], symbol_ids={symbol.ticker: symbol.id})


@pytest.fixture
def alpha(make_symbol):
    symbol = make_symbol(TICKER, exchange="DEMO")
    store(symbol, *(candle(i) for i in range(4)))
    FeedState.objects.create(source="simulated", state="live", detail="", heartbeat=time.time())
    return symbol


# -- the schema itself --------------------------------------------------------------------------
def test_every_builder_matches_its_schema_and_a_drifted_frame_does_not():
    bar = candle(1).as_dict()
    built = [
        frames.snapshot_frame(TICKER, "1m", [bar]), frames.resync_frame(TICKER, "1m", [bar], bar["time"]),
        frames.candle_frame(TICKER, "1m", bar), frames.error_frame("x", code="rate_limited", ticker=TICKER, tf="1m"),
        frames.symbol_limit_frame(TICKER, "1m", "limit"), frames.sync_frame(3), frames.behind_frame(4),
        frames.CAUGHT_UP, frames.PONG,
        frames.status_frame(source="simulated", state="live", detail="", heartbeat=1.5),
        candles_frame([frames.candle_frame(TICKER, "1m", bar), frames.candle_frame(TICKER, "5m", bar)]),
    ]
    for text in built:
        check("market.server", orjson.loads(text))
    check("pulse.server", orjson.loads(frames.hello_frame([])))
    drifted = [
        {"type": "candle", "symbol": TICKER, "tf": "1m", "candle": {**bar, "vwap": 1.0}},  # a key added
        {"type": "candle", "symbol": TICKER, "timeframe": "1m", "candle": bar},  # a key renamed
        {"type": "snapshot", "symbol": TICKER, "tf": "1m", "candles": [bar], "resync": True},  # since dropped
        {"type": "sync", "seq": "3"},  # a type changed
        {"type": "status", "source": "x", "state": "sleeping", "detail": "", "heartbeat": 1.0},
        {"type": "hello"},
        {"type": "candles", "updates": [{"type": "candle", "symbol": TICKER, "tf": "1m", "candle": bar}]},  # one
        {"type": "candles", "updates": [{"type": "pong"}, {"type": "pong"}]},  # not candles
    ]
    for frame in drifted:
        with pytest.raises(ValidationError):
            check("market.server" if frame["type"] != "hello" else "pulse.server", frame)


def test_the_bytes_are_the_ones_browsers_always_got():
    """Key order and spacing are unchanged from the hand-written frames."""
    assert frames.sync_frame(7) == '{"type":"sync","seq":7}'
    assert frames.behind_frame(7) == '{"type":"behind","seq":7}'
    assert frames.error_frame("m", code="c", ticker="A", tf="1m") == (
        '{"type":"error","message":"m","code":"c","symbol":"A","tf":"1m"}')
    assert frames.symbol_limit_frame("A", "1m", "m") == (
        '{"type":"error","code":"symbol_limit","symbol":"A","tf":"1m","message":"m"}')
    assert frames.resync_frame("A", "1m", [], 5) == (
        '{"type":"snapshot","symbol":"A","tf":"1m","candles":[],"since":5,"resync":true}')


# -- /ws/market/ --------------------------------------------------------------------------------
async def test_subscribe_update_status_and_pong_frames_match_their_schemas(alpha):
    async with client() as comm:
        assert (await comm.recv())["type"] == "status"  # the stored feed state, on connect
        await comm.send_valid({"type": "subscribe", "symbol": TICKER, "tf": "1m"})
        snap = await comm.next_of("snapshot")
        assert len(snap["candles"]) == 4
        await comm.send_valid({"type": "subscribe", "symbol": TICKER, "tf": "2m"})  # derived
        await comm.next_of("snapshot")
        await comm.send_valid({"type": "subscribe", "symbol": TICKER, "tf": "5s", "since": T0})
        await comm.next_of("snapshot")
        await database_sync_to_async(store)(alpha, candle(4))
        await candles_publish(get_channel_layer(), [upd(candle(4))])
        live = [f for f in await comm.drain() if f["type"] == "candle"]
        assert {f["tf"] for f in live} == {"1m", "2m"}
        await status_publish(get_channel_layer(), source="simulated", state="stale", detail="quiet", heartbeat=2.0)
        assert (await comm.next_of("status"))["state"] == "stale"
        await comm.send_valid({"type": "ping"})
        assert await comm.next_of("pong") == {"type": "pong"}
        await comm.send_valid({"type": "unsubscribe", "symbol": TICKER, "tf": "2m"})
        await comm.send_valid({"type": "ping"})
        await comm.next_of("pong")
    assert {"status", "snapshot", "candle", "pong"} <= set(comm.seen)


async def test_batched_candles_frames_match_their_schema(alpha):
    async with client() as comm:
        await comm.send_valid({"type": "hello", "batch": True})
        await comm.send_valid({"type": "subscribe", "symbol": TICKER, "tf": "1m"})
        await comm.next_of("snapshot")
        await candles_publish(get_channel_layer(), [upd(candle(4)), upd(candle(5))])
        batch = await comm.next_of("candles")
        assert [u["candle"]["time"] for u in batch["updates"]] == [T0 + 240, T0 + 300]
    assert "candles" in comm.seen


BAD_MESSAGES = [
    "not json",
    "[1, 2]",
    json.dumps({"type": "subscribe", "symbol": "NO SPACES", "tf": "1m"}),
    json.dumps({"type": "subscribe", "symbol": TICKER, "tf": "7m"}),
    json.dumps({"type": "subscribe", "symbol": TICKER, "tf": "1m", "since": "yesterday"}),
    json.dumps({"type": "subscribe", "symbol": "NSE:NOPE-EQ", "tf": "1m"}),  # valid shape, unknown
    json.dumps({"type": "unsubscribe", "symbol": TICKER, "tf": "15m"}),  # valid shape, not subscribed
    json.dumps({"type": "ack", "seq": -1}),
    json.dumps({"type": "dance"}),
    json.dumps({"type": "hello", "batch": "please"}),
    json.dumps({"type": "ping", "pad": "x" * 5000}),  # larger than WS_MAX_FRAME_BYTES
]


async def test_error_frames_match_their_schema_and_invalid_messages_are_invalid_for_the_schema(alpha):
    async with client() as comm:
        await comm.next_of("status")
        for text in BAD_MESSAGES:
            try:
                message = json.loads(text)
            except json.JSONDecodeError:
                message = None
            state_only = isinstance(message, dict) and message.get("symbol") == "NSE:NOPE-EQ" or (
                isinstance(message, dict) and message.get("type") == "unsubscribe")
            # What the schema can see is refused by it; the rest is the server's state.
            assert is_valid("market.client", message) == state_only, text
            await comm.send_to(text_data=text)
            error = await comm.next_of("error")
            assert error["message"]
        assert await comm.drain() == []
    assert comm.seen.count("error") == len(BAD_MESSAGES)


async def test_limit_errors_carry_their_code(alpha):
    with override_settings(MARKET={**django_settings.MARKET, "WS_MAX_SUBSCRIPTIONS": 1}):
        async with client() as comm:
            await comm.next_of("status")
            await comm.send_valid({"type": "subscribe", "symbol": TICKER, "tf": "1m"})
            await comm.next_of("snapshot")
            await comm.send_valid({"type": "subscribe", "symbol": TICKER, "tf": "5m"})
            error = await comm.next_of("error")
            assert (error["code"], error["symbol"], error["tf"]) == ("too_many_subscriptions", TICKER, "5m")
            await comm.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 5000}))
            assert (await comm.next_of("error"))["code"] == "frame_too_large"


async def test_symbol_limit_error_matches_its_schema(make_symbol, settings):
    await database_sync_to_async(make_symbol)("BINANCE:XRPUSDT", exchange="BINANCE", source="finnhub",
                                              kind="crypto", active=False)
    settings.FINNHUB = {**settings.FINNHUB, "ON_DEMAND": True}
    layer = get_channel_layer()
    ear = await layer.new_channel()
    await layer.group_add(demand_group("finnhub"), ear)
    try:
        async with client() as comm:
            await comm.send_valid({"type": "subscribe", "symbol": "BINANCE:XRPUSDT", "tf": "1m"})
            await comm.next_of("snapshot")
            add = await asyncio.wait_for(layer.receive(ear), TIMEOUT)
            await layer.send(add["reply"], {"type": "demand.refused", "ticker": "BINANCE:XRPUSDT", "limit": 1,
                                            "message": "BINANCE:XRPUSDT is not streaming live"})
            error = await comm.next_of("error")
            assert (error["code"], error["tf"]) == ("symbol_limit", "1m")
    finally:
        await layer.group_discard(demand_group("finnhub"), ear)


async def test_slow_client_frames_sync_behind_resync_and_caught_up_match_their_schemas(alpha):
    window = 8
    market = {**django_settings.MARKET, "WS_WINDOW_FRAMES": window, "WS_WINDOW_BYTES": 64 * 1024,
              "WS_MESSAGES_PER_SECOND": 10_000, "WS_MESSAGE_BURST": 10_000}
    with override_settings(MARKET=market):
        async with client() as comm:
            await comm.send_valid({"type": "subscribe", "symbol": TICKER, "tf": "1m"})
            await comm.next_of("snapshot")
            later = [candle(i) for i in range(4, 4 + 4 * window)]
            await database_sync_to_async(store)(alpha, *later)
            for c in later:  # the client does not ack: it falls behind
                await candles_publish(get_channel_layer(), [upd(c)])
            kinds: list[str] = []
            for _ in range(20):  # ack what the server numbers, until it says we caught up
                got = await comm.drain()
                kinds += [f["type"] for f in got]
                if "caught_up" in kinds:
                    break
                seqs = [f["seq"] for f in got if f["type"] in ("sync", "behind")]
                if seqs:
                    await comm.send_valid({"type": "ack", "seq": max(seqs)})
            assert "caught_up" in kinds, kinds
    resyncs = [k for k in comm.seen if k == "snapshot"]
    assert {"sync", "behind", "caught_up"} <= set(comm.seen), comm.seen
    assert len(resyncs) >= 2, "the subscription's snapshot and a resync snapshot"


# -- /ws/pulse/ ---------------------------------------------------------------------------------
async def test_pulse_frames_match_their_schemas(db):
    def make_event() -> None:
        PulseEvent.objects.create(symbol="S1", asset_class="equity", kind="move_1m", time=1000.0, value=0.02,
                                  threshold=0.005, message="S1 +2% in 1m")

    await database_sync_to_async(make_event)()
    async with client("/ws/pulse/", "pulse") as comm:
        hello = await comm.recv()
        assert hello["type"] == "hello" and len(hello["events"]) == 1
        mover = Mover(symbol="S1", asset_class="equity", time=T0, last=101.0, r1m=0.01, r5m=None, r15m=None,
                      vol15m=None, slope=None, regime="normal")
        event = StressEvent(symbol="S1", asset_class="equity", kind="move_1m", time=float(T0), value=0.02,
                            threshold=0.005, message="S1 +2% in 1m")
        frame = pulse_snapshot([mover], {"base": "S1", "bucket": 60, "lookback": 30, "regime": "normal", "top": []},
                               float(T0))
        frame["events"] = [event.as_dict()]  # as market.pulse.service publishes it
        await get_channel_layer().group_send(PULSE_GROUP, {"type": PULSE_EVENT, "text": orjson.dumps(frame).decode()})
        assert (await comm.recv())["type"] == "pulse"
        await comm.send_valid({"type": "ping"})
        assert await comm.recv() == {"type": "pong"}
        await comm.send_to(text_data="nonsense")
        assert (await comm.recv())["type"] == "error"
    assert comm.seen == ["hello", "pulse", "pong", "error"]


def test_every_server_frame_type_has_a_schema_and_a_builder():
    assert SERVER_TYPES == sorted(["snapshot", "candle", "candles", "error", "status", "sync", "behind", "caught_up", "pong",
                                   "hello", "pulse", "marker", "drawing", "alert", "alert_event"])
