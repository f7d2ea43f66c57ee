"""Timeframes that are not stored, derived on read from a stored one that divides them.

Because every intraday bucket is anchored at the session open and cut at the close, a
bucket of a larger timeframe is the union of whole buckets of any stored timeframe that
divides it; aggregating those gives exactly what direct aggregation of the ticks gives.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from market.core.sessions import Session, TradingDay
from market.core.timeframes import Timeframe
from market.core.types import Candle


class _DayCache:
    __slots__ = ("session", "day")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.day: TradingDay | None = None

    def bucket_start(self, tf: Timeframe, t: int) -> int:
        day = self.day
        if day is None or not day.contains(t):
            day = self.day = self.session.day_of(t)
        return day.bucket_start(tf, t)


def merge(parts: list[Candle], time: int) -> Candle:
    """One candle from ascending parts of the same bucket."""
    first = parts[0]
    high, low, volume, ticks = first.high, first.low, 0.0, 0
    for c in parts:
        if c.high > high:
            high = c.high
        if c.low < low:
            low = c.low
        volume += c.volume
        ticks += c.ticks
    return Candle(time, first.open, high, low, parts[-1].close, volume, ticks)


def aggregate(candles: Iterable[Candle], target: Timeframe, session: Session) -> Iterator[Candle]:
    """Aggregate ascending intraday ``candles`` into ``target`` buckets, in order."""
    days = _DayCache(session)
    bucket: int | None = None
    parts: list[Candle] = []
    for c in candles:
        start = days.bucket_start(target, c.time)
        if start != bucket:
            if parts:
                yield merge(parts, bucket)  # type: ignore[arg-type]
            bucket = start
            parts = []
        parts.append(c)
    if parts:
        yield merge(parts, bucket)  # type: ignore[arg-type]


class DerivedTracker:
    """Keeps the open derived candle current as live candles of its base arrive.

    Seed it with the stored base candles of the open derived bucket; each base update
    (a whole-candle snapshot) then yields the derived candle that contains it.
    """

    def __init__(self, target: Timeframe, session: Session) -> None:
        self.target = target
        self._days = _DayCache(session)
        self.start: int | None = None
        self._parts: dict[int, Candle] = {}

    def update(self, base: Candle) -> Candle | None:
        """The derived candle after ``base``; ``None`` for a base older than the open bucket."""
        start = self._days.bucket_start(self.target, base.time)
        if self.start is None or start > self.start:
            self.start = start
            self._parts = {}
        elif start < self.start:
            return None
        self._parts[base.time] = base
        return merge([self._parts[k] for k in sorted(self._parts)], start)
