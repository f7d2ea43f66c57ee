"""Fuzz the WebSocket protocol (/ws/market/) and keep serving everyone else.

Hypothesis sends arbitrary frames: text of any unicode (NUL included), bytes, empty
frames, JSON of any shape, protocol-shaped messages with hostile fields, deep nesting,
huge numbers, frames over the size limit and floods past the message rate. Each frame
must get a well-formed reply (or none, for a successful unsubscribe or ack) or a clean
close with the limits' code; the consumer never raises or logs an error; and a second,
well-behaved client on the same channel layer keeps receiving its candles afterwards.

Deterministic: derandomized, no example database.
"""

from __future__ import annotations

import json
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
import pytest

from tests import wsclient
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from hypothesis import HealthCheck, event, given, settings as hsettings, strategies as st

from market import services
from market.live.broadcast import candles_publish
from market.web.protocol import CLOSE_LIMITS, ERROR_CODES
from market.core.types import Candle, CandleUpdate

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
TIMEOUT = 5
TICKER = "DEMO:ALPHA"
T0 = 1_731_999_960
SERVER_TYPES = {"snapshot", "candle", "error", "pong", "status", "sync", "behind", "caught_up"}


# -- what the fuzzer sends -----------------------------------------------------------------------
_text = st.text(max_size=40)  # any code point but lone surrogates (a text frame is UTF-8)
_any_text = st.text(st.characters(codec="utf-8"), max_size=40)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), _any_text,
    st.sampled_from([TICKER, "NSE:SBIN-EQ", "DEMO:\x00", "NSE:" + "&" * 40, "A" * 65, "1m", "7m", "5s", "",
                     " 1m", "1M", "\u0661m", "NSE:\u0101", 10**10, -1, 2**63, 1.5, "1731999960"]),
)
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)), max_leaves=10)
_message = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["subscribe", "unsubscribe", "ping", "ack", "hello", ""]), _json)},
    optional={"symbol": _json, "tf": _json, "since": _json, "seq": _json},
).flatmap(lambda d: st.dictionaries(_text, _json, max_size=3).map(lambda extra: {**extra, **d}))

# Near-valid requests, so that subscriptions, snapshots and unsubscribes happen too.
_request = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "subscribe", "unsubscribe"]),
     "symbol": st.sampled_from([TICKER, TICKER, "DEMO:SLEEPY", "NSE:NOPE-EQ"]),
     "tf": st.sampled_from(["1m", "2m", "5s", "1h", "1d", "4h", "7m"])},
    optional={"since": st.one_of(st.integers(-5, 2 * 10**10), _scalars)},
)


def _frame(kind: str, value: Any) -> dict[str, Any]:
    if kind == "bytes":
        return {"type": "websocket.receive", "bytes": value}
    return {"type": "websocket.receive", "text": value}


_frames = st.one_of(
    _request.map(lambda m: _frame("text", json.dumps(m))),
    _request.map(lambda m: _frame("text", json.dumps(m))),
    _message.map(lambda m: _frame("text", json.dumps(m))),
    _json.map(lambda v: _frame("text", json.dumps(v))),
    _any_text.map(lambda t: _frame("text", t)),
    st.binary(max_size=64).map(lambda b: _frame("bytes", b)),
    st.just(_frame("text", "")),
    st.integers(1, 3000).map(lambda n: _frame("text", "[" * n + "]" * n)),  # nesting deeper than orjson's 1024
    st.sampled_from(['{"type":"subscribe","symbol":"DEMO:ALPHA","tf":"1m","since":1e400}',
                     '{"type":"subscribe","symbol":"DEMO:ALPHA","tf":"1m","since":' + "9" * 5000 + "}",
                     '{"type":"ping","type":"subscribe"}', '{"type":"ping"} trailing', "\ufeff{}",
                     '{"type":"ping","pad":"' + "\u00e9" * 2100 + '"}',  # 4 kB+ in UTF-8, not in characters
                     '{"type":"ping","pad":"' + "x" * 5000 + '"}']).map(lambda t: _frame("text", t)),
)
# A batch is a few frames, sometimes one of them repeated past the burst (a flood).
_batches = st.tuples(st.lists(_frames, min_size=1, max_size=6), st.integers(0, 3), st.booleans())
_batch_frames = _batches.map(lambda b: b[0] + [b[0][min(b[1], len(b[0]) - 1)]] * (89 if b[2] else 0))


# -- helpers ----------------------------------------------------------------------------------------
def ws() -> AbstractAsyncContextManager[WebsocketCommunicator]:
    return wsclient.ws(timeout=TIMEOUT)


def assert_well_formed(msg: Any) -> None:
    assert isinstance(msg, dict) and msg.get("type") in SERVER_TYPES, msg
    if msg["type"] == "error":
        assert isinstance(msg["message"], str) and msg["message"]
        assert set(msg) <= {"type", "message", "code", "symbol", "tf"}, msg
        assert msg["code"] in ERROR_CODES
        assert all(isinstance(msg[k], str) for k in ("symbol", "tf") if k in msg)
    elif msg["type"] == "snapshot":
        assert isinstance(msg["symbol"], str) and isinstance(msg["tf"], str) and isinstance(msg["candles"], list)


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def alpha(make_symbol):
    symbol = make_symbol(TICKER, exchange="DEMO")
    c = Candle(time=T0, open=1, high=2, low=0.5, close=1.5, volume=10, ticks=1)
    services.candle_upsert_many(updates=[CandleUpdate(TICKER, "1m", c, True)], symbol_ids={TICKER: symbol.id})
    make_symbol("DEMO:SLEEPY", exchange="DEMO", active=False)
    return symbol


@pytest.fixture(autouse=True)
async def _close_db_connections():
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


async def next_of(comm: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    while True:
        msg = orjson.loads((await comm.receive_output(timeout=TIMEOUT))["text"])
        if msg["type"] == kind:
            return msg


_example = iter(range(10**9))


@pytest.fixture
def slow_refill(settings):
    """Default burst and strikes, but (almost) no refill: whether a flood is closed does
    not depend on how fast this machine runs it."""
    from market.conf import market

    settings.MARKET = {**settings.MARKET, "WS_MESSAGES_PER_SECOND": 0.001}
    market.cache_clear()
    conf = market()
    return conf.ws_message_burst + conf.ws_strikes_to_close  # frames that surely end in a close


@hsettings(max_examples=120, deadline=None, derandomize=True, database=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.data_too_large])
@given(frames=_batch_frames)
async def test_any_frames_get_well_formed_replies_or_a_clean_close_and_others_keep_streaming(
    alpha, slow_refill, frames
):
    errors = ErrorRecords()
    logging.getLogger("market").addHandler(errors)
    n = next(_example)
    flood = len(frames) >= slow_refill
    assert flood or len(frames) < 10  # fewer frames than strikes to close: never closed
    try:
        async with ws() as calm, ws() as fuzz:
            await calm.send_json_to({"type": "subscribe", "symbol": TICKER, "tf": "1m"})
            assert (await next_of(calm, "snapshot"))["symbol"] == TICKER

            for frame in frames:
                await fuzz.send_input(frame)
            await fuzz.send_input(_frame("text", '{"type":"ping","marker":true}'))
            # Every ping is answered in order, the marker last; a flood ends in a close.
            pongs_due = 1 + sum(_is_ping(f) for f in frames)
            replies = 0
            while True:
                out = await fuzz.receive_output(timeout=TIMEOUT)
                if out["type"] == "websocket.close":
                    event("closed for breaking limits")
                    assert flood, "only a flood (or repeated breaches) closes a socket"
                    assert out == {"type": "websocket.close", "code": CLOSE_LIMITS}
                    assert await fuzz.receive_nothing(timeout=0.05)  # nothing after the close
                    break
                assert out["type"] == "websocket.send" and "text" in out, out
                msg = orjson.loads(out["text"])
                assert_well_formed(msg)
                event(f"reply {msg['type']} {msg.get('code', '')}".strip())
                if msg["type"] in {"error", "pong", "snapshot"}:
                    replies += 1
                pongs_due -= msg == {"type": "pong"}
                if not flood and not pongs_due:
                    break
            # At most one answer per frame (a successful unsubscribe or ack gets none).
            assert replies <= len(frames) + 1

            # The other client is unaffected: a new candle reaches it.
            candle = Candle(time=T0 + 60, open=1, high=9, low=0.5, close=float(n), volume=20, ticks=2 + n)
            await candles_publish(get_channel_layer(), [CandleUpdate(TICKER, "1m", candle, False)])
            assert (await next_of(calm, "candle"))["candle"]["close"] == float(n)
    finally:
        logging.getLogger("market").removeHandler(errors)
    assert not errors.records, [r.getMessage() for r in errors.records]


def _is_ping(frame: dict[str, Any]) -> bool:
    """Will the consumer answer this frame with a pong (a small JSON object of type ping)?"""
    text = frame.get("text")
    if not text or len(text.encode("utf-8", "surrogatepass")) > 4096:
        return False
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return isinstance(msg, dict) and msg.get("type") == "ping"
