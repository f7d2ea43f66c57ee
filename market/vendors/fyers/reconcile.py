"""Which stored candles the broker's official bars correct (pure; no Django).

Policy: for *closed* buckets only, the broker's bar is the truth for open, high, low,
close and volume (our live bars come from sampled snapshots: a high or low between two
snapshots is missed). A bucket we lack is added with ``ticks`` 0; a bucket that differs
keeps our tick count; an identical bucket is left alone, so re-running changes nothing.
Buckets the broker does not have are never deleted (no ticks, no candle stays true).
"""

from __future__ import annotations

from typing import Container, Iterable, Mapping

from market.core.derive import aggregate
from market.core.sessions import Session
from market.core.timeframes import Timeframe
from market.core.types import Candle

PRICE_TOLERANCE = 1e-6   # relative: float noise, not a correction
VOLUME_TOLERANCE = 0.5   # shares


def _differs(a: Candle, b: Candle) -> bool:
    for x, y in ((a.open, b.open), (a.high, b.high), (a.low, b.low), (a.close, b.close)):
        if abs(x - y) > PRICE_TOLERANCE * max(abs(x), abs(y), 1.0):
            return True
    return abs(a.volume - b.volume) > VOLUME_TOLERANCE


def corrections(
    ours: Mapping[int, Candle], theirs: Iterable[Candle], *, tf: Timeframe, session: Session,
    closed_before: float, skip: Container[int] = (),
) -> list[Candle]:
    """Candles to write so ours match the broker's, for buckets ending by ``closed_before``
    (``skip``: buckets the live engine holds open; it would overwrite them)."""
    out = []
    for c in theirs:
        if c.time in skip:
            continue
        day = session.day_of(c.time) if not tf.is_daily else session.day_for_label(c.time)
        end = day.close if tf.is_daily else day.bucket(tf, c.time)[1]
        if end > closed_before:
            continue
        mine = ours.get(c.time)
        if mine is None:
            out.append(Candle(c.time, c.open, c.high, c.low, c.close, c.volume, 0))
        elif _differs(mine, c):
            out.append(Candle(c.time, c.open, c.high, c.low, c.close, c.volume, mine.ticks))
    return out


def rederive(base: Iterable[Candle], tf: Timeframe, session: Session, buckets: set[int]) -> list[Candle]:
    """The ``tf`` candles of ``buckets`` re-aggregated from ascending stored ``base`` candles."""
    return [c for c in aggregate(base, tf, session) if c.time in buckets]


def bucket_of(t: int, tf: Timeframe, session: Session) -> tuple[int, int]:
    day = session.day_of(t)
    return day.bucket(tf, t)
