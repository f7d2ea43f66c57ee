"""The WebSocket protocol of ``/ws/market/`` and ``/ws/pulse/``: what a client may send, how
its messages are read, the close codes, and the frames the server answers with.

The frames themselves are built by ``market.core.frames`` (pure, so that
``market.live.broadcast`` can pre-serialise candle and status frames once per fan-out
without importing the web edge, which sits above it); they are re-exported here so the
consumers have one module to speak through. Each frame type and each client message
type has a JSON Schema in ``protocol.schema.json`` beside this file, and
``tests/web/test_protocol.py`` validates every frame a real consumer sends against it.

Client messages (JSON text frames, at most MARKET ``WS_MAX_FRAME_BYTES``)::

    {"type": "subscribe", "symbol": "NSE:SBIN-EQ", "tf": "1m", "since": 1732000000?}
    {"type": "unsubscribe", "symbol": "NSE:SBIN-EQ", "tf": "1m"}
    {"type": "ack", "seq": n}
    {"type": "ping"}
    {"type": "hello", "batch": true}   the client unpacks candles frames: the candle frames
        of one flush come as {"type": "candles", "updates": [<candle frame>, ...]}

Every error frame names its cause in ``code`` (``ERROR_CODES``), so a client can act on
it without parsing the message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from market.core.frames import (
    CAUGHT_UP, PONG, behind_frame, candle_frame, error_frame, hello_frame, resync_frame, snapshot_frame,
    status_frame, symbol_limit_frame, sync_frame,
)
from market.core.timeframes import Timeframe, TimeframeError
from market.web.validation import MAX_TICKER_LENGTH, is_ticker

__all__ = [
    "CAUGHT_UP", "CLOSE_LIMITS", "CLOSE_TOO_SLOW", "ERROR_CODES", "PONG", "SCHEMA_PATH", "LimitExceeded",
    "ProtocolError",
    "behind_frame", "candle_frame", "candles_frame", "echo", "error_frame", "frame_too_large", "hello_frame", "read_batch", "read_message",
    "read_since", "read_target", "resync_frame", "snapshot_frame", "status_frame", "symbol_limit_frame",
    "sync_frame",
]

SCHEMA_PATH = Path(__file__).with_name("protocol.schema.json")

CLOSE_LIMITS = 4429  # kept breaking limits (README "Limits"); others on the layer are unaffected
CLOSE_TOO_SLOW = 4008  # behind and no ack for WS_STALL_SECONDS (docs/deploy.md "Slow clients")

_MAX_EPOCH = 10**10

#: The ``code`` of an error frame: what was wrong (the schema's ``server.error`` lists them).
ERROR_CODES = (
    "bad_request",             # not a message we understand: bad JSON, type, field or value
    "bad_timeframe",           # ``tf`` is not a timeframe code
    "unknown_symbol",          # no such (active) symbol
    "not_subscribed",          # unsubscribe from a stream this socket does not have
    "bad_study",               # a study key or parameter it cannot compute
    "server_error",            # our fault (e.g. the database is down): try again
    "rate_limited",            # the limits (README "Limits"), each also a strike
    "frame_too_large",
    "too_many_subscriptions",
    "symbol_limit",            # the vendor's cap on live symbols (the stream stays open)
)


class ProtocolError(ValueError):
    """A client message we answer with ``{"type": "error", "code": code}``."""

    def __init__(self, message: str, *, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code


class LimitExceeded(ProtocolError):
    """A broken limit: answered with an error carrying ``code``, and a strike (README "Limits")."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)


def frame_too_large(text_data: str | None, bytes_data: bytes | None, max_bytes: int) -> bool:
    """Is the frame larger than ``max_bytes`` as it came over the wire (UTF-8 for text)?"""
    if text_data is None:
        return len(bytes_data or b"") > max_bytes
    n = len(text_data)
    if n > max_bytes or n * 4 <= max_bytes:  # a character is 1 to 4 bytes: no encode needed
        return n > max_bytes
    return len(text_data.encode("utf-8", "surrogatepass")) > max_bytes


def read_message(text_data: str | None, bytes_data: bytes | None, max_bytes: int) -> dict[str, Any]:
    """The client's message as a JSON object, or the ProtocolError it is answered with."""
    if frame_too_large(text_data, bytes_data, max_bytes):
        raise LimitExceeded(f"message larger than {max_bytes} bytes", code="frame_too_large")
    if text_data is None:
        raise ProtocolError("send JSON text frames")
    try:
        msg = orjson.loads(text_data)
    except orjson.JSONDecodeError:
        raise ProtocolError("invalid JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a message is a JSON object")
    return msg


def read_target(msg: dict[str, Any]) -> tuple[str, Timeframe]:
    """The (ticker, timeframe) a subscribe or unsubscribe names."""
    ticker = msg.get("symbol")
    if ticker is None:
        raise ProtocolError("symbol is required")
    if not is_ticker(ticker):
        raise ProtocolError("symbol must be a ticker such as NSE:SBIN-EQ")
    code = msg.get("tf")
    if code is None:
        raise ProtocolError("tf is required")
    try:
        tf = Timeframe.parse(code)
    except TimeframeError as exc:
        raise ProtocolError(str(exc), code="bad_timeframe") from None
    return ticker, tf


def read_since(msg: dict[str, Any]) -> int | None:
    """A subscribe's ``since`` (epoch seconds), if it gave one."""
    since = msg.get("since")
    if since is not None and (type(since) is not int or not 0 <= since < _MAX_EPOCH):
        raise ProtocolError("since must be epoch seconds (an integer)")
    return since


def echo(request: dict[str, Any] | None) -> dict[str, str]:
    """The request's ``symbol`` and ``tf`` an error frame repeats (short strings only), as
    ``error_frame`` keywords."""
    if request is None:
        return {}
    out = {}
    for key, name in (("symbol", "ticker"), ("tf", "tf")):
        value = request.get(key)
        if isinstance(value, str) and len(value) <= MAX_TICKER_LENGTH:
            out[name] = value
    return out


def read_batch(msg: dict[str, Any]) -> bool:
    """A hello's ``batch``: may the server coalesce candle frames into ``candles`` frames?"""
    batch = msg.get("batch", False)
    if type(batch) is not bool:
        raise ProtocolError("batch must be true or false")
    return batch


def candles_frame(texts: list[str]) -> str:
    """Candle frames of one flush as one frame, ``{"type": "candles", "updates": [...]}``:
    joined as they were serialised (each once per fan-out, in market.live.broadcast)."""
    return '{"type":"candles","updates":[' + ",".join(texts) + "]}"
