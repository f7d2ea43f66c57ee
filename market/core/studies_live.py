"""Live study values for WebSocket candle frames (issue 11), pure.

A ``LiveStudies`` keeps one stream's candle window (seeded with the snapshot's warm-up and
candles) and computes its studies for each live candle, so the values equal the batch
functions over the whole stored series: windowed and decaying studies with
``market.core.studies.compute`` over their warm-up (``Study.warmup``) before the candle,
VWAP over its session; OBV and Supertrend (path-dependent) step on from their state after
the previous candle (``studies.supertrend_step``, ``atr_step``: TA-Lib's own operations),
which is recomputed from the first candle only when a candle before it changes.

``Registry`` shares the work per process: one ``LiveStudies`` per (symbol, tf, studies)
however many sockets watch it, and each candle update is computed once (the sockets that
see the same update get the memoised values).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any, Hashable, Sequence

from market.core.sessions import Session
from market.core.studies import (
    Series, Study, TrendState, atr_step, compute, session_start, supertrend_run, supertrend_step, warmup,
)
from market.core.timeframes import Timeframe
from market.core.types import Candle

Values = dict[str, Any]
PATH = frozenset({"obv", "supertrend"})  # a value depends on every candle before it


OBV_START = (0.0, math.nan, False)  # before the first candle


def _obv_next(state: tuple[float, float, bool], c: Candle) -> tuple[float, float, bool]:
    """TA-Lib's OBV one candle on: ``(obv, close, any volume so far)``; the first candle's
    OBV is its volume."""
    obv, prev_close, seen = state
    if prev_close != prev_close:
        return c.volume, c.close, c.volume != 0
    if c.close > prev_close:
        obv += c.volume
    elif c.close < prev_close:
        obv -= c.volume
    return obv, c.close, seen or c.volume != 0


def _trend_next(state: TrendState, c: Candle, study: Study) -> tuple[TrendState, float, float]:
    """Supertrend one candle on from a state that has its ATR (TA-Lib's Wilder step)."""
    period, factor = int(study.params[0]), float(study.params[1])
    atr = atr_step(state.atr, state.close, c.high, c.low, period)
    return supertrend_step(state, c.high, c.low, c.close, atr, factor)


def _value(study: Study, row: dict[str, Any]) -> Any:
    fields = study.fields
    if len(fields) == 1:
        return row[fields[0]]
    return {f: row[f] for f in fields}


class LiveStudies:
    """One stream's studies, updated candle by candle."""

    def __init__(self, studies: Sequence[Study], candles: Sequence[Candle], *, tf: Timeframe,
                 session: Session, no_volume: bool = False) -> None:
        self.studies = list(studies)
        self.tf, self.session, self.no_volume = tf, session, no_volume
        self.window: list[Candle] = list(candles)
        self.keep = warmup(self.studies)  # None: the whole series
        self.sessional = any(s.session for s in self.studies)
        self._last: tuple[Candle, Values] | None = None
        # Path-dependent studies step on from their state after window[_at]; the others are
        # computed over the warm-up they need before the candle.
        self.path = [s for s in self.studies if s.name in PATH]
        self.windowed = [s for s in self.studies if s.name not in PATH]
        self._wkeep = warmup(self.windowed) if self.windowed else 0
        self._at: int | None = None  # the states hold after window[_at] (None: to recompute)
        self._states: dict[str, Any] = {}

    def update(self, candle: Candle) -> Values | None:
        """``candle`` (new, forming or revised) into the window; its studies' values (None:
        older than the window, unknown here)."""
        last = self._last
        if last is not None and last[0] == candle:
            return last[1]  # memo: another socket's copy of the same update
        w = self.window
        if not w or candle.time > w[-1].time:
            w.append(candle)
            i = len(w) - 1
        elif candle.time == w[-1].time:
            w[-1] = candle
            i = len(w) - 1
        else:
            i = bisect_left([c.time for c in w], candle.time)
            if i == 0 and w[0].time != candle.time and self.keep is not None:
                return None  # before the window: its warm-up is not here
            if w[i].time == candle.time:
                w[i] = candle
            else:
                w.insert(i, candle)
            self._last = None
            if self._at is not None and i <= self._at:
                self._at = None  # the path states after it are stale
        values = self.values_at(i)
        if i == len(w) - 1:
            self._last = (candle, values)
        self._trim()
        return values

    def merge(self, candles: Sequence[Candle]) -> None:
        """Stored candles read from the database (a later subscriber's snapshot, a resync
        or catch-up) into the window: what live updates may have missed."""
        if not candles:
            return
        w = self.window
        first = w[0].time if w else candles[0].time
        by_time = {c.time: c for c in w}
        by_time.update((c.time, c) for c in candles if c.time >= first)
        self.window = [by_time[t] for t in sorted(by_time)]
        self._last = None
        self._at = None  # any candle may have changed: path states from the first candle again
        self._trim()

    def values_at(self, i: int) -> Values:
        w = self.window
        out: Values = {}
        if self.windowed:
            lo = max(0, i - self._wkeep)
            if self.sessional:
                lo = min(lo, bisect_left([c.time for c in w], session_start(w[i].time, self.tf, self.session)))
            rows = compute(self.windowed, w[lo: i + 1], tf=self.tf, session=self.session, skip=i - lo,
                           no_volume=self.no_volume)
            out.update((s.key, _value(s, rows[s.key][0])) for s in self.windowed)
        if self.path:
            out.update(self._path_values(i))
        return {s.key: out[s.key] for s in self.studies}

    # -- path-dependent studies -----------------------------------------------------------------
    def _path_values(self, i: int) -> Values:
        """OBV and Supertrend at window[i], stepped on from their states after window[i - 1]."""
        w = self.window
        if self._at is None or self._at >= i:
            self._path_reset(i - 1)
        else:
            while self._at < i - 1:
                self._path_advance(w[self._at + 1])
        out: Values = {}
        c = w[i]
        for study in self.path:
            key = study.key
            state = self._states.get(key)
            if study.name == "obv":
                out[key] = None if self.no_volume or not (state[2] or c.volume) else _obv_next(state, c)[0]
                continue
            if state.atr != state.atr:  # the ATR warms up (or is seeded) here: batch
                rows = compute([study], w[: i + 1], tf=self.tf, session=self.session, skip=i)
                out[key] = _value(study, rows[key][0])
                continue
            _, value, direction = _trend_next(state, c, study)
            out[key] = {"value": value, "direction": int(direction)}
        return out

    def _path_reset(self, k: int) -> None:
        """The path states after window[k], from the first candle (k < 0: none yet)."""
        self._states = {}
        self._at = k
        head = self.window[: k + 1]
        series = Series.of(head) if head else None
        for study in self.path:
            if study.name == "obv":
                state: Any = OBV_START
                for c in head:
                    state = _obv_next(state, c)
            elif series is None:
                state = TrendState()
            else:
                *_, state = supertrend_run(series, int(study.params[0]), float(study.params[1]))
            self._states[study.key] = state

    def _path_advance(self, c: Candle) -> None:
        for study in self.path:
            key = study.key
            state = self._states[key]
            if study.name == "obv":
                self._states[key] = _obv_next(state, c)
            elif state.atr != state.atr:  # still warming up: recompute from the start (cheap here)
                self._path_reset(self._at + 1)  # (all path states, this candle included)
                return
            else:
                self._states[key] = _trend_next(state, c, study)[0]
        self._at += 1

    def rows(self, since: int) -> dict[str, list[dict[str, Any]]]:
        """Rows for the window's candles from ``since`` on (e.g. after a revision)."""
        times = [c.time for c in self.window]
        skip = bisect_left(times, since)
        return compute(self.studies, self.window, tf=self.tf, session=self.session, skip=skip,
                       no_volume=self.no_volume)

    def _trim(self) -> None:
        keep, w = self.keep, self.window
        if keep is None or len(w) <= 2 * keep + 256:
            return
        cut = len(w) - 1 - keep
        if self.sessional:
            start = session_start(w[-1].time, self.tf, self.session)
            cut = min(cut, bisect_left([c.time for c in w], start))
        if cut > 0:
            del w[:cut]


class Registry:
    """The process's ``LiveStudies``, shared by the sockets that watch the same stream."""

    def __init__(self) -> None:
        self._items: dict[Hashable, tuple[LiveStudies, int]] = {}

    def acquire(self, key: Hashable, make: Any) -> LiveStudies:
        item = self._items.get(key)
        if item is None:
            live = make()
            self._items[key] = (live, 1)
            return live
        self._items[key] = (item[0], item[1] + 1)
        return item[0]

    def release(self, key: Hashable) -> None:
        item = self._items.get(key)
        if item is None:
            return
        if item[1] <= 1:
            del self._items[key]
        else:
            self._items[key] = (item[0], item[1] - 1)

    def __len__(self) -> int:
        return len(self._items)


REGISTRY = Registry()
