"""The WebSocket frames the server sends, as the JSON text browsers receive.

Every ``type`` the server emits on ``/ws/market/`` and ``/ws/pulse/`` is built here, and
nowhere else (the ``pulse`` frame's dict is ``market.core.pulse.snapshot``). It is a pure
module on purpose: ``market.live.broadcast`` (rank 4) serialises candle and status frames
once per fan-out, below the web edge (rank 7) whose ``market.web.protocol`` owns the rest
of the protocol (client messages, close codes, the JSON Schema in
``market/web/protocol.schema.json``); both import from here, so the arrows point down.

Key order is part of the contract (the bytes are what they were when each frame was
written by hand): orjson keeps a dict's order, and the fixed frames are constants.
"""

from __future__ import annotations

from typing import Any

import orjson

PONG = '{"type":"pong"}'
CAUGHT_UP = '{"type":"caught_up"}'


def _text(payload: dict[str, Any]) -> str:
    return orjson.dumps(payload).decode()


# -- /ws/market/ -------------------------------------------------------------------------------
def snapshot_frame(ticker: str, tf: str, candles: list[dict[str, Any]],
                   studies: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """A stream's history, on subscribe (``since``: from that time, inclusive); with
    ``studies`` (issue 11) each study's rows, one per candle."""
    payload: dict[str, Any] = {"type": "snapshot", "symbol": ticker, "tf": tf, "candles": candles}
    if studies is not None:
        payload["studies"] = studies
    return _text(payload)


def resync_frame(ticker: str, tf: str, candles: list[dict[str, Any]], since: int,
                 studies: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """A held stream caught up from ``since`` (inclusive), after the client was behind (or
    a revised candle's studies, revising those after it)."""
    payload: dict[str, Any] = {"type": "snapshot", "symbol": ticker, "tf": tf, "candles": candles,
                               "since": since, "resync": True}
    if studies is not None:
        payload["studies"] = studies
    return _text(payload)


def candle_frame(ticker: str, tf: str, candle: dict[str, Any], studies: dict[str, Any] | None = None) -> str:
    """One live candle (the whole bar: a lost frame is repaired by the next); with
    ``studies`` each study's value (or object of values) for it."""
    if studies is None:
        return _text({"type": "candle", "symbol": ticker, "tf": tf, "candle": candle})
    return _text({"type": "candle", "symbol": ticker, "tf": tf, "candle": candle, "studies": studies})


def status_frame(*, source: str, state: str, detail: str, heartbeat: float) -> str:
    """A feed's state: live | stale | reconnecting | market_closed | token_expired | stopped."""
    return _text({"type": "status", "source": source, "state": state, "detail": detail, "heartbeat": heartbeat})


def user_frame(kind: str, payload: dict[str, Any]) -> str:
    """A frame for one signed-in user's sockets only (``market.live.broadcast.user_publish``):
    ``{"type": kind, **payload}``, e.g. ``drawing`` or ``alert_event``."""
    return _text({"type": kind, **payload})


def error_frame(message: str, *, code: str | None = None, ticker: str | None = None, tf: str | None = None) -> str:
    """An answer to a message we could not serve; ``code`` names a broken limit
    (rate_limited | frame_too_large | too_many_subscriptions), ``symbol``/``tf`` echo the request."""
    payload: dict[str, Any] = {"type": "error", "message": message}
    if code is not None:
        payload["code"] = code
    if ticker is not None:
        payload["symbol"] = ticker
    if tf is not None:
        payload["tf"] = tf
    return _text(payload)


def symbol_limit_frame(ticker: str, tf: str, message: str) -> str:
    """The feed cannot stream ``ticker`` live (the vendor's symbol limit): an error frame
    with ``code: symbol_limit``, in the key order it always had."""
    return _text({"type": "error", "code": "symbol_limit", "symbol": ticker, "tf": tf, "message": message})


def sync_frame(seq: int) -> str:
    """Ask for an ack: ``seq`` frames were sent so far (on the relay path: no encoder)."""
    return '{"type":"sync","seq":%d}' % seq


def behind_frame(seq: int) -> str:
    """The client fell behind at ``seq``: its live frames are held from here on."""
    return '{"type":"behind","seq":%d}' % seq


# -- /ws/pulse/ --------------------------------------------------------------------------------
def hello_frame(events: list[dict[str, Any]]) -> str:
    """On connect: the recent stored stress events."""
    return _text({"type": "hello", "events": events})
