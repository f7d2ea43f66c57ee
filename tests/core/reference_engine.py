"""The candle engine as it was before the fast paths (market/core/engine.py at a5a94f5),
kept verbatim as the reference ``tests/core/test_engine_fast.py`` checks the engine
against: same verdicts, same collected updates in the same order, same states.

Do not optimise this file; change it only when the contract itself changes.
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
        return Candle(self.start, self.o, self.h, self.l, self.c, self.v, self.n)


class _SymbolState:
    __slots__ = (
        "symbol", "session", "day",
        "start", "end", "o", "h", "l", "c", "v", "n", "ot", "ct",
        "rollups", "vol_label", "vol_max", "last_key", "dirty",
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
        self.accepted = 0
        self.rejected: dict[str, int] = {}

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
        st = self._states.get(tick.symbol)
        if st is None:
            return self._reject(Reject.UNKNOWN_SYMBOL)
        t = tick.time
        p = tick.price
        dv = tick.day_volume
        if dv is not None:
            key: tuple[float, ...] | None = (p, dv, tick.last_traded_time or 0.0)
        elif tick.size is None:
            key = (p, t)
        else:
            key = None  # per-trade prints: identical trades are real trades
        if key is not None and key == st.last_key:
            return self._reject(Reject.REPEAT)
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
            self._horizon = self._clock() + self._max_ahead  # type: ignore[operator]
            if t > self._horizon:
                return self._reject(Reject.FUTURE)
        if t >= st.end and not self._roll(st, t):
            return self._reject(Reject.OUT_OF_SESSION)

        # Volume (contract g).
        add = 0.0
        if dv is not None:
            label = st.day.label  # type: ignore[union-attr]
            if st.vol_label != label:
                seed = self._day_volume_seed.get(st.symbol)
                if seed is not None and seed[0] == label:
                    st.vol_max = seed[1]
                elif st.vol_label is None:
                    st.vol_max = dv
                else:
                    st.vol_max = 0.0
                st.vol_label = label
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
        self.accepted += 1
        return None

    def _roll(self, st: _SymbolState, t: float) -> bool:
        """Close the open 5 s bucket and open the one holding ``t``; False if out of session."""
        day = st.day
        if day is None or not day.contains(t):
            day = st.session.day_of(t)
            if not day.contains(t):
                return False
        start, end = day.bucket(BASE, t)
        symbol = st.symbol
        if st.n:
            closed = st.base_candle()
            self._closed.append(CandleUpdate(symbol, BASE.code, closed, True))
            for r in st.rollups:
                if r.n == 0:
                    r.o, r.h, r.l, r.c, r.v, r.n = (
                        closed.open, closed.high, closed.low, closed.close, closed.volume, closed.ticks,
                    )
                else:
                    if closed.high > r.h:
                        r.h = closed.high
                    if closed.low < r.l:
                        r.l = closed.low
                    r.c = closed.close
                    r.v += closed.volume
                    r.n += closed.ticks
            st.n = 0
        for r in st.rollups:
            if not (r.start <= start < r.end) or day is not st.day:
                if r.n:
                    self._closed.append(CandleUpdate(symbol, r.code, r.candle(), True))
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
        n = st.n
        if n:
            o, h, l, c, v = st.o, st.h, st.l, st.c, st.v
            out.append(CandleUpdate(symbol, _BASE_CODE, Candle(int(st.start), o, h, l, c, v, n), False))
            for r in st.rollups:
                rn = r.n
                if rn:
                    rh = r.h
                    rl = r.l
                    candle = Candle(r.start, r.o, rh if rh > h else h, rl if rl < l else l, c, r.v + v, rn + n)
                else:
                    candle = Candle(r.start, o, h, l, c, v, n)
                out.append(CandleUpdate(symbol, r.code, candle, False))
        else:
            for r in st.rollups:
                if r.n:
                    out.append(CandleUpdate(symbol, r.code, r.candle(), False))

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
        st.day, st.start, st.end = day, start, end
        st.o, st.h, st.l, st.c, st.v, st.n, st.ot, st.ct = o, h, l, c, v, n, ot, ct
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
