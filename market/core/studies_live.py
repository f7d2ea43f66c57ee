"""Live study values for WebSocket candle frames (issue 11), pure.

A ``LiveStudies`` keeps one stream's candle window (seeded with the snapshot's warm-up and
candles) and computes its studies for each live candle with ``market.core.studies.compute``
over that window, so the values equal the batch functions over the whole stored series:
windowed and decaying studies keep at least their warm-up (``Study.warmup``) before the
candle, VWAP keeps its session, and OBV / Supertrend (path-dependent) keep every candle.

``Registry`` shares the work per process: one ``LiveStudies`` per (symbol, tf, studies)
however many sockets watch it, and each candle update is computed once (the sockets that
see the same update get the memoised values).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Hashable, Sequence

from market.core.sessions import Session
from market.core.studies import Study, compute, session_start, warmup
from market.core.timeframes import Timeframe
from market.core.types import Candle

Values = dict[str, Any]


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
        self._trim()

    def values_at(self, i: int) -> Values:
        rows = compute(self.studies, self.window[: i + 1], tf=self.tf, session=self.session, skip=i,
                       no_volume=self.no_volume)
        return {s.key: _value(s, rows[s.key][0]) for s in self.studies}

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
