"""The newest candles of one stream, kept in memory so a subscribe can be answered without
the database (issue 17: a reconnect storm is a thousand equal snapshot reads at once).

A ``Recent`` is seeded from a database read that is a *tail* of the stream (every stored
candle from some time on) and then kept up to date with the same candle events the
browsers are sent. It knows how far back it is complete (``floor``): it holds every stored
candle at or after ``floor`` (``None``: every stored candle at all), so it answers only
what a database read would answer the same way, and says ``None`` otherwise.

Events are applied as the consumers apply them: a candle replaces the one of its time
when it has at least as many ticks, or when it is a revision (a correction may shrink a
bar); a new time is inserted in order (gap repair fills holes), one older than ``floor``
is ignored (nothing is claimed there). Framework-free: candles are the dicts of
``Candle.as_dict()``, as the frames carry them.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Iterable

CandleRow = dict[str, Any]


class Recent:
    """A bounded, ordered ring of a stream's newest candles."""

    __slots__ = ("capacity", "floor", "times", "rows", "version")

    def __init__(self, capacity: int, rows: Iterable[CandleRow], *, floor: int | None) -> None:
        """``rows``: every stored candle at or after ``floor`` (``None``: every stored candle),
        ascending by time. Past ``capacity`` the oldest are dropped (the floor moves up)."""
        if capacity < 1:
            raise ValueError("a Recent needs room for at least one candle")
        self.capacity = capacity
        self.rows: list[CandleRow] = list(rows)
        self.times: list[int] = [r["time"] for r in self.rows]
        if any(a >= b for a, b in zip(self.times, self.times[1:])):
            raise ValueError("seed candles must be strictly ascending by time")
        if floor is not None and self.times and self.times[0] < floor:
            raise ValueError("seed candles start before the floor they claim")
        self.floor = floor
        self.version = 0  # bumped on every change (callers cache what they built from it)
        self._trim()

    @classmethod
    def from_newest(cls, capacity: int, rows: list[CandleRow], *, asked: int) -> Recent:
        """From a read of the newest ``asked`` candles: fewer came back, so that is all there is."""
        return cls(capacity, rows, floor=None if len(rows) < asked else (rows[0]["time"] if rows else None))

    def apply(self, candle: CandleRow, *, revised: bool = False) -> bool:
        """A live candle (an event's ``candle``); True if it changed what is held."""
        t = candle["time"]
        times = self.times
        i = bisect_left(times, t)
        if i < len(times) and times[i] == t:
            if not revised and candle.get("ticks", 0) < self.rows[i].get("ticks", 0):
                return False  # an older state of this bar (as the consumers drop it)
            self.rows[i] = candle
        elif self.floor is not None and t < self.floor:
            return False  # before what is held in full: nothing claimed there
        else:
            times.insert(i, t)
            self.rows.insert(i, candle)
            self._trim()
        self.version += 1
        return True

    def last(self, limit: int) -> list[CandleRow] | None:
        """The newest ``limit`` candles as the database gives them, or None if not held."""
        if len(self.rows) >= limit:
            return self.rows[-limit:] if limit > 0 else []
        if self.floor is None:
            return list(self.rows)
        return None

    def since(self, since: int, limit: int) -> list[CandleRow] | None:
        """Candles from ``since`` (inclusive); ``limit`` or more of them: the newest ``limit``
        instead (as ``market.web.consumers._candles_since`` reads). None if not held."""
        if self.floor is not None and since < self.floor:
            return None
        out = self.rows[bisect_left(self.times, since):]
        if len(out) >= limit:
            return self.last(limit)
        return out

    def _trim(self) -> None:
        extra = len(self.rows) - self.capacity
        if extra > 0:
            del self.rows[:extra]
            del self.times[:extra]
            self.floor = self.times[0]
