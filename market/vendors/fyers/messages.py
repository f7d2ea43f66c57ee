"""Fyers data-socket messages (as ``fyers_apiv3`` hands them to ``on_message``) to ``Tick``.

Shared by the replay feed and the live Fyers feed so both see identical ticks.
Payloads, as decoded by fyers-apiv3 3.2.0 in full mode (``SymbolUpdate``)::

    equity "sf": {"type": "sf", "symbol": "NSE:SBIN-EQ", "ltp": 812.5,
                  "vol_traded_today": 10423911, "last_traded_time": 1732000000,
                  "exch_feed_time": 1732000001, "bid_price": ..., "ask_price": ...,
                  "open_price": ..., "prev_close_price": ..., "ch": ..., "chp": ...}
    index  "if": {"type": "if", "symbol": "NSE:NIFTY50-INDEX", "ltp": 24350.1,
                  "exch_feed_time": 1732000001, "prev_close_price": ..., ...}
    depth  "dp": five levels of bid/ask, no time: not a tick.
    control: {"type": "cn"|"ful"|"lit"|"sub"|"unsub"|"cp"|"cr", "code", "message", "s"}

Times are epoch seconds UTC with 1 s resolution. Lite mode carries no time or volume,
so its messages are rejected (``no_time``) for candle building.
"""

from __future__ import annotations

import math
from typing import Any

from market.core.types import Reject, Tick

TICK_TYPES = frozenset({"sf", "if"})
NON_TICK_TYPES = frozenset({"dp", "cn", "ful", "lit", "sub", "unsub", "cp", "cr", "ok", "error"})

# Plausible exchange times: after 2001-09-09 and before 2286; catches ms or garbage.
_MIN_EPOCH = 1_000_000_000
_MAX_EPOCH = 10_000_000_000
_INF = math.inf
_MAX_INT_FLOAT = 2**53  # ints below this convert to float exactly (and never overflow)
_INT32_MIN = -2**31   # the SDK's int32 decode: its "no value", and the lowest wrapped volume
_UINT32 = 2**32


def _number(value: Any) -> float | None:
    """A finite int/float (bools and strings are not numbers here), else None."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        try:
            return float(value)
        except OverflowError:  # an int beyond float range must not raise out of parse
            return None
    return None


_new = object.__new__


def parse(message: Any) -> Tick | Reject | None:
    """One decoded message → ``Tick``, a ``Reject`` reason, or ``None`` when not market data."""
    # The shape the SDK sends nearly every time, read with subscripts and no calls: a full
    # "sf" with a float price, int times and an int volume, or an "if". Anything else (a
    # missing key included) goes through ``_parse_checked``, which has every rule; this
    # path returns only what that one would (``tests/vendors/fyers/test_messages.py``).
    try:
        if type(message) is dict:
            kind = message["type"]
            symbol = message["symbol"]
            price = message["ltp"]
            t = message["exch_feed_time"]
            if (type(symbol) is str and symbol and type(price) is float and 0.0 < price < _INF
                    and type(t) is int and _MIN_EPOCH <= t < _MAX_EPOCH):
                if kind == "sf":
                    volume = message["vol_traded_today"]
                    ltt = message["last_traded_time"]
                    if (type(volume) is int and 0 <= volume < _MAX_INT_FLOAT
                            and type(ltt) is int and _MIN_EPOCH <= ltt < _MAX_EPOCH):
                        # Tick(symbol, t, price, volume, ltt), slot by slot: half the cost.
                        tick = _new(Tick)
                        tick.symbol = symbol
                        tick.time = t
                        tick.price = price
                        tick.day_volume = volume
                        tick.last_traded_time = ltt
                        tick.size = None
                        return tick
                elif kind == "if":
                    tick = _new(Tick)
                    tick.symbol = symbol
                    tick.time = t
                    tick.price = price
                    tick.day_volume = tick.last_traded_time = tick.size = None
                    return tick
    except KeyError:
        pass
    return _parse_checked(message)


def _parse_checked(message: Any) -> Tick | Reject | None:
    """``parse`` with every rule, in the order the verdicts depend on."""
    if type(message) is not dict:
        return Reject.MALFORMED
    kind = message.get("type")
    if kind != "sf" and kind != "if":
        try:
            return None if kind in NON_TICK_TYPES else Reject.MALFORMED
        except TypeError:  # an unhashable "type" (list, dict): must not raise out of parse
            return Reject.MALFORMED
    symbol = message.get("symbol")
    if type(symbol) is not str or not symbol:
        return Reject.NO_SYMBOL
    # The SDK sends float prices and int times and volumes: those are checked inline and
    # kept as they are (ints compare and add exactly); anything else goes through
    # ``_number``. The verdicts are the same either way.
    price = message.get("ltp")
    if type(price) is not float:
        price = _number(price)
        if price is None:
            return Reject.BAD_PRICE
    if not 0.0 < price < _INF:  # also false for NaN
        return Reject.BAD_PRICE
    t = message.get("exch_feed_time")
    if type(t) is not int:
        t = _number(t)
        if t is None:
            return Reject.NO_TIME
    if not _MIN_EPOCH <= t < _MAX_EPOCH:
        return Reject.NO_TIME
    if kind == "if":
        return Tick(symbol, t, price)
    volume = message.get("vol_traded_today")
    if type(volume) is int and _INT32_MIN < volume < 0:
        # The SDK decodes the day volume as a signed int32 (">i"): above 2**31 it wraps
        # negative. The field is a count, never negative: read the same 4 bytes unsigned.
        # (2**31 itself is the protocol's "no value" and never arrives; past 2**32 it is lost.)
        volume += _UINT32
    if volume is not None and (type(volume) is not int or not 0 <= volume < _MAX_INT_FLOAT):
        volume = _number(volume)
        if volume is None or volume < 0.0:
            return Reject.BAD_VOLUME
    ltt = message.get("last_traded_time")
    if type(ltt) is not int or not _MIN_EPOCH <= ltt < _MAX_EPOCH:
        ltt = _number(ltt)
    return Tick(symbol, t, price, volume, ltt)


def kind_of(message: dict[str, Any]) -> str:
    """Instrument kind of a symbol first seen in a message (used to register it)."""
    symbol = str(message.get("symbol", ""))
    if message.get("type") == "if" or symbol.endswith("-INDEX"):
        return "index"
    suffix = symbol.rsplit("-", 1)[-1] if "-" in symbol else ""
    if suffix in ("EQ", "BE", "SM", "ST", "BZ"):
        return "equity"
    if symbol.endswith("FUT"):
        return "future"
    if symbol.endswith(("CE", "PE")):
        return "option"
    return "equity" if message.get("type") == "sf" else "other"


def exchange_of(symbol: str) -> str:
    """``NSE`` from ``NSE:SBIN-EQ``; symbols without a prefix belong to no exchange."""
    prefix, sep, _ = symbol.partition(":")
    return prefix.upper() if sep and prefix else ""
