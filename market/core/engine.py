"""The candle engine: accepted ticks in, exact OHLCV candles at every stored timeframe out.

Only the 5 s candle is touched per tick; larger stored timeframes are rolled up from
closed 5 s candles and merged with the open one when read, which keeps the per-tick cost
flat however many timeframes are stored. The engine does no I/O: callers ``add`` ticks
and periodically ``collect`` the candles that changed (closed ones flagged ``final``).

Contract (each point pinned by ``tests/core/test_engine.py``):
a/b/c bucketing by exchange time via ``TradingDay``; d out-of-session ticks rejected;
e ticks before the open 5 s bucket are late; f open/close by (exchange time, arrival);
g volume from rises of the cumulative day volume; h repeats are not ticks; j no filler
candles; k each candle counts its ticks.

Speed (``bench/engine.py``): a tick inside the open 5 s bucket of its symbol, which holds
ticks already, is checked against one range ``[lo, hi)`` set when that bucket took its
first tick (in session, not late, before the horizon) and folded in without the other
checks; every other tick goes through ``_add_checked``, which spells every rule out.
``tests/core/test_engine_fast.py`` checks the engine against the one before these fast
paths (``tests/core/reference_engine.py``) tick for tick.
"""

from __future__ import annotations

import time as _time
from typing import Callable, Iterable, Mapping

from market.core.sessions import Session, SessionBook, TradingDay
from market.core.timeframes import BASE, Timeframe
from market.core.types import Candle, CandleUpdate, Reject, Tick

_NEG_INF = float("-inf")
_INF = float("inf")
_MIN_TIME = 0.0
_MAX_TIME = 10_000_000_000.0  # year 2286: anything later is a unit error (ms, µs)
_BASE_CODE = BASE.code

# The hot paths build ``Candle`` and ``CandleUpdate`` (and the Fyers parser ``Tick``) as
# ``_new(cls)`` plus one store per slot instead of calling the dataclass: the same object
# (the classes have no ``__post_init__`` and no defaults the engine leaves out), at half the
# cost, because on CPython 3.11 a call to a class with a Python ``__init__`` is the dearest
# thing on the tick path. ``tests/core/test_engine_fast.py`` pins the field lists.
_new = object.__new__


class _Rollup:
    """Closed 5 s candles of one larger timeframe's open bucket."""

    __slots__ = ("tf", "code", "start", "end", "o", "h", "l", "c", "v", "n")

    def __init__(self, tf: Timeframe) -> None:
        self.tf = tf
        self.code = tf.code
        self.start = 0
        self.end = 0
        self.o = self.h = self.l = self.c = self.v = 0.0
        self.n = 0

    def candle(self) -> Candle:
        c = _new(Candle)
        c.time = self.start
        c.open = self.o
        c.high = self.h
        c.low = self.l
        c.close = self.c
        c.volume = self.v
        c.ticks = self.n
        return c


class _SymbolState:
    __slots__ = (
        "symbol", "session", "day",
        "start", "end", "o", "h", "l", "c", "v", "n", "ot", "ct",
        "rollups", "vol_label", "vol_max", "last_key", "dirty", "lo", "hi", "counted",
    )

    def __init__(self, symbol: str, session: Session, rollups: list[_Rollup]) -> None:
        self.symbol = symbol
        self.session = session
        self.day: TradingDay | None = None
        # The open 5 s bucket [start, end); -inf until the first tick.
        self.start: float = _NEG_INF
        self.end: float = _NEG_INF
        self.o = self.h = self.l = self.c = self.v = 0.0
        self.n = 0
        self.ot = self.ct = 0.0  # exchange times of the open and close ticks
        self.rollups = rollups
        self.vol_label: int | None = None  # trading day the volume state belongs to
        self.vol_max = 0.0  # running maximum of the cumulative day volume
        self.last_key: tuple[float, ...] | None = None
        self.dirty = False
        # ``n`` when ``CandleEngine.accepted`` last counted this symbol: the fast path of
        # ``add`` only bumps ``n``, and the count adds ``n - counted`` of each symbol.
        self.counted = 0
        self.shut()

    def shut(self) -> None:
        """Send every tick through ``CandleEngine._add_checked`` until one opens ``[lo, hi)``."""
        self.lo = _INF  # empty: no t has inf <= t < -inf
        self.hi = _NEG_INF

    def base_candle(self) -> Candle:
        return Candle(int(self.start), self.o, self.h, self.l, self.c, self.v, self.n)


#: A symbol's engine state as ``collect(states)`` gives it: plain JSON values only.
SymbolState = dict
STATE_VERSION = 1


def _finite(x: float) -> float | None:
    return x if x == x and x not in (_INF, _NEG_INF) else None


def _state_of(st: _SymbolState) -> SymbolState:
    return {
        "v": STATE_VERSION,
        "start": _finite(st.start), "end": _finite(st.end),
        "ohlcv": [st.o, st.h, st.l, st.c, st.v], "n": st.n, "ot": st.ot, "ct": st.ct,
        "vol_label": st.vol_label, "vol_max": st.vol_max,
        "last_key": list(st.last_key) if st.last_key is not None else None,
        "rollups": {r.code: [r.start, r.end, r.o, r.h, r.l, r.c, r.v, r.n] for r in st.rollups},
    }


class CandleEngine:
    """Aggregates ticks of registered symbols into the stored timeframes."""

    def __init__(
        self,
        timeframes: Iterable[Timeframe],
        sessions: SessionBook,
        *,
        max_ahead: float | None = None,
        clock: Callable[[], float] = _time.time,
    ) -> None:
        tfs = sorted(set(timeframes))
        if not tfs or tfs[0] != BASE:
            raise ValueError("the engine's timeframes must include 5s")
        self.timeframes: tuple[Timeframe, ...] = tuple(tfs)
        self._larger = tuple(tfs[1:])
        self._sessions = sessions
        self._max_ahead = max_ahead
        self._clock = clock
        # Ticks beyond this are checked against a fresh clock reading; the clock only
        # moves forward, so a stale horizon is conservative and saves a call per tick.
        self._horizon = float("inf") if max_ahead is None else float("-inf")
        self._states: dict[str, _SymbolState] = {}
        self._day_volume_seed: dict[str, tuple[int, float]] = {}
        self._closed: list[CandleUpdate] = []
        self._dirty: list[_SymbolState] = []
        self._accepted = 0  # see ``accepted``
        self.rejected: dict[str, int] = {}

    @property
    def accepted(self) -> int:
        """Ticks accepted so far."""
        return self._accepted + sum(st.n - st.counted for st in self._states.values())

    def _count(self, st: _SymbolState) -> None:
        """Fold the fast-path ticks of ``st`` into ``_accepted`` before ``st.n`` is changed."""
        self._accepted += st.n - st.counted
        st.counted = st.n

    # -- symbols -----------------------------------------------------------------
    def register(self, symbol: str, exchange: str) -> None:
        if symbol not in self._states:
            session = self._sessions.for_exchange(exchange)
            self._states[symbol] = _SymbolState(
                symbol, session, [_Rollup(tf) for tf in self._larger]
            )

    def knows(self, symbol: str) -> bool:
        return symbol in self._states

    def session_of(self, symbol: str) -> Session:
        """The trading session of a registered symbol."""
        return self._states[symbol].session

    def resume(
        self,
        symbol: str,
        last: Mapping[Timeframe, Candle],
        *,
        day_volume: tuple[int, float] | None = None,
    ) -> None:
        """Continue from stored candles after a restart without reopening them.

        ``last`` holds the newest stored candle per timeframe. The newest 5 s candle counts
        as closed: ticks before its end are late. Larger candles whose bucket is still
        open continue from their stored state. ``day_volume`` is ``(day label, volume
        already stored that day)``, the baseline of contract g.
        """
        st = self._states[symbol]
        if day_volume is not None:
            self._day_volume_seed[symbol] = day_volume
        base = last.get(BASE)
        if base is None:
            return
        day = st.session.day_of(base.time)
        start, end = day.bucket(BASE, base.time)
        st.day = day
        st.start = st.end = end  # nothing open yet; anything earlier is late
        st.shut()
        for r in st.rollups:
            stored = last.get(r.tf)
            r_start, r_end = day.bucket(r.tf, base.time)
            r.start, r.end = r_start, r_end
            if stored is not None and stored.time == r_start:
                r.o, r.h, r.l, r.c = stored.open, stored.high, stored.low, stored.close
                r.v, r.n = stored.volume, stored.ticks
            else:
                r.n = 0

    # -- ticks -------------------------------------------------------------------
    def _reject(self, reason: Reject) -> Reject:
        self.rejected[reason.value] = self.rejected.get(reason.value, 0) + 1
        return reason

    def add(self, tick: Tick) -> Reject | None:
        """Fold one tick in; returns the reason when it is not accepted. Never raises."""
        try:
            st = self._states[tick.symbol]
        except KeyError:
            return self._reject(Reject.UNKNOWN_SYMBOL)
        t = tick.time
        p = tick.price
        dv = tick.day_volume
        if dv is not None:
            key: tuple[float, ...] | None = (p, dv, tick.last_traded_time or 0.0)
            if key == st.last_key:
                return self._reject(Reject.REPEAT)
        elif tick.size is None:
            key = (p, t)
            if key == st.last_key:
                return self._reject(Reject.REPEAT)
        else:
            key = None  # per-trade prints: identical trades are real trades
        if not st.lo <= t < st.hi:
            return self._add_checked(st, tick, t, p, dv, key)

        # The common case: ``t`` is in the open 5 s bucket and that bucket already holds a
        # tick (``_add_checked`` opened ``[lo, hi)``), so the time is valid, the tick is not
        # late, not ahead of the horizon, nothing rolls, and ``ot <= ct``. Same verdicts and
        # candles as the full path.
        if not 0.0 < p < _INF:
            return self._reject(Reject.BAD_PRICE)
        if dv is not None:
            if st.vol_label != st.day.label:  # type: ignore[union-attr]
                self._new_volume_day(st, dv)
            vol_max = st.vol_max
            if dv > vol_max:
                st.v += dv - vol_max
                st.vol_max = dv
            else:
                st.v += 0.0  # as the full path adds (it turns a -0.0 into 0.0)
        else:
            size = tick.size
            st.v += 0.0 if size is None else size
        if t >= st.ct:
            st.c = p
            st.ct = t
        elif t < st.ot:
            st.o = p
            st.ot = t
        if p > st.h:
            st.h = p
        elif p < st.l:
            st.l = p
        st.n += 1  # counted by ``accepted``
        st.last_key = key
        if not st.dirty:
            st.dirty = True
            self._dirty.append(st)
        return None

    def _add_checked(
        self, st: _SymbolState, tick: Tick, t: float, p: float, dv: float | None,
        key: tuple[float, ...] | None,
    ) -> Reject | None:
        """``add`` past the repeat check, every rule spelled out: the first tick of a bucket,
        and anything unusual (bad time, late, out of session, rolls)."""
        if not _MIN_TIME < t < _MAX_TIME:  # also false for NaN; parsers check, other sources may not
            return self._reject(Reject.NO_TIME)
        if not 0.0 < p < _INF:
            return self._reject(Reject.BAD_PRICE)
        if t < st.start:
            # Say why precisely: a pre-open print is out of session, not late.
            if not st.session.day_of(t).contains(t):
                return self._reject(Reject.OUT_OF_SESSION)
            return self._reject(Reject.LATE)
        if t > self._horizon:
            self._new_horizon()
            if t > self._horizon:
                return self._reject(Reject.FUTURE)
        self._count(st)
        if t >= st.end and not self._roll(st, t):
            return self._reject(Reject.OUT_OF_SESSION)

        # Volume (contract g).
        add = 0.0
        if dv is not None:
            if st.vol_label != st.day.label:  # type: ignore[union-attr]
                self._new_volume_day(st, dv)
            if dv > st.vol_max:
                add = dv - st.vol_max
                st.vol_max = dv
        elif tick.size is not None:
            add = tick.size

        if st.n == 0:
            st.o = st.h = st.l = st.c = p
            st.ot = st.ct = t
            st.v = add
            st.n = 1
        else:
            if t < st.ot:
                st.o = p
                st.ot = t
            if t >= st.ct:
                st.c = p
                st.ct = t
            if p > st.h:
                st.h = p
            elif p < st.l:
                st.l = p
            st.v += add
            st.n += 1
        st.last_key = key
        if not st.dirty:
            st.dirty = True
            self._dirty.append(st)
        self._accepted += 1
        st.counted = st.n
        # Open the fast path of ``add`` for the rest of this bucket, up to the horizon (past
        # it, the clock is read again). Always taken for states this engine made; the guards
        # keep a hand-made state on this path.
        if st.ot <= st.ct and st.start > _MIN_TIME and st.end <= _MAX_TIME:
            st.lo = st.start
            horizon = self._horizon
            st.hi = st.end if st.end <= horizon else horizon
        return None

    def _new_horizon(self) -> None:
        """Read the clock again. The fast paths opened before stay right if the horizon only
        moved forward (they stop short of it); if the clock went back, they are all shut."""
        before = self._horizon
        self._horizon = self._clock() + self._max_ahead  # type: ignore[operator]
        if self._horizon < before:
            for st in self._states.values():
                st.shut()

    def _new_volume_day(self, st: _SymbolState, dv: float) -> None:
        """The first cumulative volume of a trading day: set the baseline (contract g)."""
        label = st.day.label  # type: ignore[union-attr]
        seed = self._day_volume_seed.get(st.symbol)
        if seed is not None and seed[0] == label:
            st.vol_max = seed[1]
        elif st.vol_label is None:
            st.vol_max = dv
        else:
            st.vol_max = 0.0
        st.vol_label = label

    def _roll(self, st: _SymbolState, t: float) -> bool:
        """Close the open 5 s bucket and open the one holding ``t``; False if out of session."""
        day = st.day
        if day is None or not day.contains(t):
            day = st.session.day_of(t)
            if not day.contains(t):
                return False
        start, end = day.bucket(BASE, t)
        symbol = st.symbol
        closed_list = self._closed
        n = st.n
        if n:
            o, h, l, c, v = st.o, st.h, st.l, st.c, st.v
            closed = _new(Candle)
            closed.time = int(st.start)
            closed.open = o
            closed.high = h
            closed.low = l
            closed.close = c
            closed.volume = v
            closed.ticks = n
            u = _new(CandleUpdate)
            u.symbol = symbol
            u.timeframe = _BASE_CODE
            u.candle = closed
            u.final = True
            closed_list.append(u)
            for r in st.rollups:
                if r.n == 0:
                    r.o, r.h, r.l, r.c, r.v, r.n = o, h, l, c, v, n
                else:
                    if h > r.h:
                        r.h = h
                    if l < r.l:
                        r.l = l
                    r.c = c
                    r.v += v
                    r.n += n
            st.n = 0
        same_day = day is st.day
        for r in st.rollups:
            if not (same_day and r.start <= start < r.end):
                if r.n:
                    u = _new(CandleUpdate)
                    u.symbol = symbol
                    u.timeframe = r.code
                    u.candle = r.candle()
                    u.final = True
                    closed_list.append(u)
                r.start, r.end = day.bucket(r.tf, t)
                r.n = 0
        st.day = day
        st.start = start
        st.end = end
        if not st.dirty:
            st.dirty = True
            self._dirty.append(st)
        return True

    # -- output ------------------------------------------------------------------
    def _current(self, st: _SymbolState, out: list[CandleUpdate]) -> None:
        """Append the open candles of ``st``; the merge of ``_merged`` inlined (hot path)."""
        symbol = st.symbol
        append = out.append
        n = st.n
        if n:
            o, h, l, c, v = st.o, st.h, st.l, st.c, st.v
            candle = _new(Candle)
            candle.time = int(st.start)
            candle.open = o
            candle.high = h
            candle.low = l
            candle.close = c
            candle.volume = v
            candle.ticks = n
            u = _new(CandleUpdate)
            u.symbol = symbol
            u.timeframe = _BASE_CODE
            u.candle = candle
            u.final = False
            append(u)
            for r in st.rollups:
                candle = _new(Candle)
                candle.time = r.start
                candle.close = c
                rn = r.n
                if rn:
                    rh = r.h
                    rl = r.l
                    candle.open = r.o
                    candle.high = rh if rh > h else h
                    candle.low = rl if rl < l else l
                    candle.volume = r.v + v
                    candle.ticks = rn + n
                else:
                    candle.open = o
                    candle.high = h
                    candle.low = l
                    candle.volume = v
                    candle.ticks = n
                u = _new(CandleUpdate)
                u.symbol = symbol
                u.timeframe = r.code
                u.candle = candle
                u.final = False
                append(u)
        else:
            for r in st.rollups:
                if r.n:
                    u = _new(CandleUpdate)
                    u.symbol = symbol
                    u.timeframe = r.code
                    u.candle = r.candle()
                    u.final = False
                    append(u)

    @staticmethod
    def _merged(st: _SymbolState, r: _Rollup) -> Candle | None:
        if r.n == 0:
            if st.n == 0:
                return None
            return Candle(r.start, st.o, st.h, st.l, st.c, st.v, st.n)
        if st.n == 0:
            return r.candle()
        return Candle(
            r.start, r.o, max(r.h, st.h), min(r.l, st.l), st.c, r.v + st.v, r.n + st.n
        )

    def collect(self, states: dict[str, SymbolState] | None = None) -> list[CandleUpdate]:
        """Candles changed since the last call: closed ones (final) then the open ones.

        With ``states``, also the exact state of every symbol that changed (``restore``
        takes it back), captured at the same instant as the candles: stored together,
        they let a restart continue as if nothing had happened.
        """
        out = self._closed
        self._closed = []
        current = self._current
        for st in self._dirty:
            st.dirty = False
            current(st, out)
        if states is not None:
            for st in self._dirty:
                states[st.symbol] = _state_of(st)
        self._dirty = []
        return out

    def restore(self, symbol: str, state: SymbolState) -> bool:
        """Continue exactly where ``collect(states)`` left ``symbol``: open 5 s candle,
        rolled-up larger buckets, day volume and repeat detection included.

        False (and nothing changed) when the state does not fit this engine, e.g. the
        stored timeframes changed since it was taken; ``resume`` is the fallback then.
        """
        st = self._states[symbol]
        try:
            if state.get("v") != STATE_VERSION:
                return False
            rollups = state["rollups"]
            if sorted(rollups) != sorted(r.code for r in st.rollups):
                return False
            start, end = float(state["start"]), float(state["end"])
            day = st.session.day_of(start)
            values = [(r, [float(x) for x in rollups[r.code]]) for r in st.rollups]
            o, h, l, c, v = (float(x) for x in state["ohlcv"])
            n, ot, ct = int(state["n"]), float(state["ot"]), float(state["ct"])
            key = state["last_key"]
            vol_label = state["vol_label"]
            vol_max = float(state["vol_max"])
        except (KeyError, TypeError, ValueError):
            return False
        self._count(st)
        st.day, st.start, st.end = day, start, end
        st.shut()
        st.o, st.h, st.l, st.c, st.v, st.n, st.ot, st.ct = o, h, l, c, v, n, ot, ct
        st.counted = n  # restored ticks were accepted by the engine that collected them
        st.last_key = tuple(float(x) for x in key) if key is not None else None
        st.vol_label = None if vol_label is None else int(vol_label)
        st.vol_max = vol_max
        for r, (r_start, r_end, ro, rh, rl, rc, rv, rn) in values:
            r.start, r.end = int(r_start), int(r_end)
            r.o, r.h, r.l, r.c, r.v, r.n = ro, rh, rl, rc, rv, int(rn)
        self._day_volume_seed.pop(symbol, None)
        return True

    def current(self, symbol: str, timeframe: Timeframe) -> Candle | None:
        """The open candle of ``symbol`` at a stored ``timeframe``, if it has one."""
        st = self._states.get(symbol)
        if st is None:
            return None
        if timeframe == BASE:
            return st.base_candle() if st.n else None
        for r in st.rollups:
            if r.tf == timeframe:
                return self._merged(st, r)
        raise ValueError(f"{timeframe} is not stored by this engine")
