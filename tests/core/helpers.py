"""Shared builders for the core tests (no Django)."""

from __future__ import annotations

import datetime as dt

from market.core.engine import CandleEngine
from market.vendors.fyers.messages import exchange_of
from market.core.sessions import DEFAULT_SESSIONS, SessionBook
from market.core.timeframes import DEFAULT_STORED, Timeframe
from market.core.types import Candle, Tick

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
UTC = dt.timezone.utc
TF = Timeframe.parse
STORED = tuple(TF(c) for c in DEFAULT_STORED)
BOOK = SessionBook.from_config(DEFAULT_SESSIONS)
NSE = BOOK.for_exchange("NSE")
RTC = BOOK.for_exchange("DEMO")

EQ = "NSE:SBIN-EQ"
IDX = "NSE:NIFTY50-INDEX"
CRYPTO = "DEMO:ALPHA"


def ist(y, mo, d, h=0, mi=0, s=0) -> float:
    return dt.datetime(y, mo, d, h, mi, int(s), tzinfo=IST).timestamp() + (s - int(s))


def utc(y, mo, d, h=0, mi=0, s=0) -> float:
    return dt.datetime(y, mo, d, h, mi, int(s), tzinfo=UTC).timestamp() + (s - int(s))


# A Wednesday; the NSE session is 09:15-15:30 IST.
DAY1 = (2024, 11, 20)
DAY2 = (2024, 11, 21)


def t1(h, mi, s=0) -> float:
    return ist(*DAY1, h, mi, s)


def t2(h, mi, s=0) -> float:
    return ist(*DAY2, h, mi, s)


def make_engine(timeframes=STORED, *, symbols=(EQ, IDX, CRYPTO), max_ahead=None, now=None):
    clock = (lambda: now[0]) if now is not None else (lambda: 4_000_000_000.0)
    engine = CandleEngine(timeframes, BOOK, max_ahead=max_ahead, clock=clock)
    for s in symbols:
        engine.register(s, exchange_of(s))
    return engine


def eq(t, price, vol, ltt=None, symbol=EQ) -> Tick:
    return Tick(symbol, float(t), float(price), float(vol), float(t if ltt is None else ltt))


def ix(t, price, symbol=IDX) -> Tick:
    return Tick(symbol, float(t), float(price))


def latest(updates, into=None):
    """Fold collected updates into {(symbol, tf, time): Candle}, later updates winning."""
    out = {} if into is None else into
    for u in updates:
        out[(u.symbol, u.timeframe, u.candle.time)] = u.candle
    return out


def series(updates, symbol, tf):
    """Ascending candles of one symbol/timeframe from collected updates."""
    d = latest(updates)
    return [c for (s, code, _), c in sorted(d.items(), key=lambda kv: kv[0][2]) if s == symbol and code == tf]


def C(time, o, h, l, c, v, n) -> Candle:
    return Candle(int(time), float(o), float(h), float(l), float(c), float(v), n)
