"""Finnhub's trade WebSocket frames -> ticks and control events (no I/O, no Django).

The protocol (``wss://ws.finnhub.io?token=KEY``), JSON text frames::

    client: {"type": "subscribe", "symbol": "AAPL"}
            {"type": "unsubscribe", "symbol": "AAPL"}
    server: {"type": "trade", "data": [{"s": "AAPL", "p": 189.5, "t": 1700000000123,
                                        "v": 100, "c": ["1", "12"]}, ...]}
            {"type": "ping"}
            {"type": "error", "msg": "Subscribing to too many symbols"}

Each entry of ``data`` is one trade print: ``s`` symbol, ``p`` price, ``t`` exchange
time in **milliseconds**, ``v`` the volume of this trade (not cumulative; forex quotes
carry ``0``) and ``c`` its trade conditions (a list of codes, or ``null``). A tick keeps
``t`` as float epoch seconds (millisecond precision is kept) and ``v`` as ``size``, so
the engine adds per-trade volumes and, by design, does no repeat detection on them: two
identical prints are two real trades.

Trade conditions. ``c`` is not interpreted by default: every print updates OHLC and
adds its volume. What the conditions would mostly filter (pre-market and after-hours
"Form T" prints) is already dropped by the exchange session (``out_of_session``: US
stocks trade 09:30–16:00 America/New_York). Prints whose condition codes include one of
``excluded_conditions`` (configuration: ``FINNHUB["EXCLUDED_CONDITIONS"]``, e.g. odd-lot
or average-price codes of the venue's condition table) are dropped and counted as
``excluded_condition``; the rest of the frame is still used.

Bad entries are counted by reason and never raise; one bad entry does not spoil its
frame. Symbols: ``AAPL`` is a US stock (exchange ``US``, session America/New_York);
``OANDA:EUR_USD`` / ``BINANCE:BTCUSDT`` are on the exchange named by their prefix, which
trades round the clock unless a session is configured for it.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import orjson

from market.core.types import Control, Reject, Tick, TickBatch

EXCLUDED_CONDITION = "excluded_condition"
BAD_JSON = "bad_json"
UNKNOWN_TYPE = "unknown_type"

#: Exchange prefixes and their asset class; anything else is ``other``.
DEFAULT_PREFIX_KINDS: dict[str, str] = {
    "OANDA": "currency", "FXCM": "currency", "FOREX": "currency", "FXPRO": "currency",
    "IC MARKETS": "currency", "ICMTRADER": "currency", "PEPPERSTONE": "currency", "SAXO": "currency",
    "BINANCE": "crypto", "COINBASE": "crypto", "KRAKEN": "crypto", "BITFINEX": "crypto",
    "BITSTAMP": "crypto", "GEMINI": "crypto", "HUOBI": "crypto", "KUCOIN": "crypto", "POLONIEX": "crypto",
    "BITMEX": "crypto", "OKEX": "crypto", "HITBTC": "crypto",
}
STOCK_EXCHANGE = "US"


def _number(value: Any) -> float | None:
    if type(value) is bool or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _trade(entry: Any, excluded: frozenset[str], out: TickBatch) -> None:
    if not isinstance(entry, dict):
        out.reject(Reject.MALFORMED.value)
        return
    symbol = entry.get("s")
    if not isinstance(symbol, str) or not symbol or len(symbol) > 64:
        out.reject(Reject.NO_SYMBOL.value)
        return
    price = _number(entry.get("p"))
    if price is None or price <= 0:
        out.reject(Reject.BAD_PRICE.value)
        return
    t_ms = _number(entry.get("t"))
    if t_ms is None or t_ms <= 0:
        out.reject(Reject.NO_TIME.value)
        return
    raw_v = entry.get("v", 0)
    size = 0.0 if raw_v is None else _number(raw_v)
    if size is None or size < 0:
        out.reject(Reject.BAD_VOLUME.value)
        return
    conditions = entry.get("c")
    if excluded and isinstance(conditions, list) and any(str(c) in excluded for c in conditions):
        out.reject(EXCLUDED_CONDITION)
        return
    out.ticks.append(Tick(symbol=symbol, time=t_ms / 1000.0, price=price, size=size))


def parse(frame: str | bytes | Mapping[str, Any], *, excluded_conditions: Iterable[str] = ()) -> TickBatch:
    """One WebSocket frame (text, or already decoded) -> its ticks, control events and rejects."""
    out = TickBatch()
    excluded = frozenset(str(c) for c in excluded_conditions)
    if isinstance(frame, (str, bytes)):
        try:
            message: Any = orjson.loads(frame)
        except orjson.JSONDecodeError:
            out.reject(BAD_JSON)
            return out
    else:
        message = frame
    if not isinstance(message, dict):
        out.reject(Reject.MALFORMED.value)
        return out
    kind = message.get("type")
    if kind == "trade":
        data = message.get("data")
        if not isinstance(data, list):
            out.reject(Reject.MALFORMED.value)
            return out
        for entry in data:
            _trade(entry, excluded, out)
    elif kind == "ping":
        out.controls.append(Control("ping"))
    elif kind == "error":
        msg = message.get("msg")
        out.controls.append(Control("error", str(msg)[:200] if msg is not None else "unspecified error"))
    elif isinstance(kind, str):
        out.controls.append(Control("other", kind[:40]))
    else:
        out.reject(UNKNOWN_TYPE)
    return out


def subscribe_frame(symbol: str) -> str:
    return orjson.dumps({"type": "subscribe", "symbol": symbol}).decode()


def unsubscribe_frame(symbol: str) -> str:
    return orjson.dumps({"type": "unsubscribe", "symbol": symbol}).decode()


def classify(symbol: str, prefix_kinds: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(exchange, kind)`` of a Finnhub symbol: ``AAPL`` -> (US, equity), ``BINANCE:X`` -> (BINANCE, crypto)."""
    kinds = DEFAULT_PREFIX_KINDS if prefix_kinds is None else prefix_kinds
    prefix, sep, _ = symbol.partition(":")
    if not sep:
        return STOCK_EXCHANGE, "equity"
    exchange = prefix.upper()[:16]
    return exchange, kinds.get(prefix.upper(), "other")
