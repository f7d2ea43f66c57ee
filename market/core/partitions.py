"""The candle table's partition layout on PostgreSQL (pure; no Django).

``market_candle`` is ``PARTITION BY LIST (timeframe)``: one partition per timeframe. A
timeframe that has a retention (``MARKET["RETENTION_DAYS"]``) when its partition is made
is sub-partitioned ``BY RANGE (time)``, one partition per UTC day for sub-minute
timeframes (5 s: ~2.2 M rows a day for 500 symbols) and per UTC month otherwise, so that
retention drops whole tables instead of deleting rows. A timeframe kept forever is one
plain partition. There is no DEFAULT partition: a write creates the partition it needs
(a stray row would never expire, and a DEFAULT would forbid ``DETACH … CONCURRENTLY`` and
make every new partition scan it).

This module names partitions, computes their bounds, says which ones a cutoff drops and
spells the DDL; ``market.services``/``market.selectors`` and the migration run it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Literal

Span = Literal["day", "month"]

DAY = 86400
#: Spans created past the newest one written, so a new day rarely waits for DDL.
AHEAD = 2
_CODE = re.compile(r"^[0-9]+[smhd]$")


def span_of(seconds: int) -> Span:
    """How much time one range partition of a timeframe of ``seconds`` holds."""
    return "day" if seconds < 60 else "month"


def span_seconds_of(code: str) -> int:
    """The seconds of a timeframe code (``"5s"`` -> 5), checking that it is safe in a name."""
    if not _CODE.match(code):
        raise ValueError(f"timeframe code {code!r} cannot name a partition")
    return int(code[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": DAY}[code[-1]]


def _utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def bounds(time: int, span: Span) -> tuple[int, int]:
    """``[start, end)`` in epoch seconds of the ``span`` partition holding ``time``."""
    if span == "day":
        start = time - time % DAY
        return start, start + DAY
    d = _utc(time)
    start = datetime(d.year, d.month, 1, tzinfo=timezone.utc)
    end = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=timezone.utc)
    return int(start.timestamp()), int(end.timestamp())


@dataclass(frozen=True, order=True)
class Partition:
    """One partition of ``table``: a timeframe's whole partition (``start`` None) or one
    of its range partitions ``[start, end)``."""

    table: str
    timeframe: str
    start: int | None = None
    end: int | None = None

    @property
    def parent(self) -> str:
        """The table this partition is attached to."""
        return self.table if self.start is None else timeframe_name(self.table, self.timeframe)

    @property
    def name(self) -> str:
        if self.start is None:
            return timeframe_name(self.table, self.timeframe)
        assert self.end is not None
        d = _utc(self.start)
        stamp = d.strftime("%Y%m%d") if self.end - self.start <= DAY else d.strftime("%Y%m")
        return f"{self.parent}_{stamp}"


def timeframe_name(table: str, code: str) -> str:
    span_seconds_of(code)
    return f"{table}_{code}"


def partition_for(table: str, code: str, time: int) -> Partition:
    """The range partition of ``code`` that holds ``time``."""
    start, end = bounds(time, span_of(span_seconds_of(code)))
    return Partition(table, code, start, end)


def following(p: Partition, n: int = 1) -> list[Partition]:
    """The ``n`` range partitions after ``p``."""
    out = []
    for _ in range(n):
        assert p.end is not None
        p = partition_for(p.table, p.timeframe, p.end)
        out.append(p)
    return out


def covering(table: str, code: str, lo: int, hi: int) -> list[Partition]:
    """Every range partition of ``code`` from the one holding ``lo`` to the one holding ``hi``."""
    first = partition_for(table, code, lo)
    out = [first]
    while out[-1].end is not None and out[-1].end <= hi:
        out += following(out[-1])
    return out


def needed(table: str, rows: Iterable[tuple[str, int]], ranged: set[str]) -> set[Partition]:
    """The partitions ``(timeframe, time)`` rows go to, and ``AHEAD`` spans after the
    newest of each ranged timeframe: a timeframe in ``ranged`` needs its range
    partitions, any other its whole-timeframe partition."""
    days: dict[str, set[int]] = {}
    for code, time in rows:
        days.setdefault(code, set()).add(time // DAY)
    out: set[Partition] = set()
    for code, ds in days.items():
        if code not in ranged:
            out.add(Partition(table, code))
            continue
        parts = {partition_for(table, code, d * DAY) for d in ds}
        out |= parts
        out.update(following(max(parts), AHEAD))
    return out


def expired(partitions: Iterable[Partition], before: int) -> list[Partition]:
    """The range partitions wholly older than ``before`` (every row starts before it),
    oldest first. A partition holding the cutoff stays until it expires wholly."""
    return sorted(p for p in partitions if p.end is not None and p.end <= before)


def closed(partitions: Iterable[Partition], now: int) -> list[Partition]:
    """The range partitions that ended by ``now``, oldest first: live candles no longer go
    there (a gap repair's rare late rows aside), so they can be rewritten in key order."""
    return sorted(p for p in partitions if p.end is not None and p.end <= now)


def compact_sql(p: Partition, index: str) -> list[str]:
    """Rewrite ``p`` in the order of its unique key ``index`` (symbol, timeframe, time).

    Candles arrive time-major (every symbol's bar of one bucket together), so a symbol's
    5,000 newest 5 s candles sit on ~5,000 different pages; in key order they fill ~70. CLUSTER
    holds an ACCESS EXCLUSIVE lock on that one partition while it runs (seconds for a day of
    500 symbols): readers of that day wait, nobody else does. It also marks the index as
    clustered, which is how the next run knows this partition is done."""
    return [f'CLUSTER "{p.name}" USING "{index}"', f'ANALYZE "{p.name}"']


_LIST = re.compile(r"^FOR VALUES IN \('([^']*)'\)$")
_RANGE = re.compile(r"^FOR VALUES FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)$")


def parse_bound(table: str, timeframe: str | None, bound: str) -> Partition:
    """A partition from PostgreSQL's ``pg_get_expr(relpartbound)`` text: ``FOR VALUES IN
    ('5s')`` under ``table``, or ``FOR VALUES FROM ('1') TO ('2')`` under ``timeframe``'s."""
    m = _LIST.match(bound.strip())
    if m and timeframe is None:
        return Partition(table, m.group(1))
    m = _RANGE.match(bound.strip())
    if m and timeframe is not None:
        return Partition(table, timeframe, int(m.group(1)), int(m.group(2)))
    raise ValueError(f"unexpected partition bound {bound!r} (timeframe {timeframe!r}) under {table}")


def create_sql(p: Partition, *, ranged: bool = False) -> list[str]:
    """Make ``p`` as a plain table, then attach it: ``ATTACH PARTITION`` takes only a SHARE
    UPDATE EXCLUSIVE lock on the parent, where ``CREATE TABLE … PARTITION OF`` would take
    ACCESS EXCLUSIVE and wait for (and then block) every reader. ``ranged``: a timeframe
    partition that is itself ``PARTITION BY RANGE (time)``."""
    by = " PARTITION BY RANGE (time)" if ranged else ""
    if p.start is None:
        values = f"IN ('{p.timeframe}')"
    else:
        values = f"FROM ({p.start}) TO ({p.end})"
    return [
        f'CREATE TABLE "{p.name}" (LIKE "{p.table}" INCLUDING DEFAULTS){by}',
        f'ALTER TABLE "{p.parent}" ATTACH PARTITION "{p.name}" FOR VALUES {values}',
    ]


def drop_sql(p: Partition, *, concurrently: bool) -> list[str]:
    """Detach ``p`` (``CONCURRENTLY``: readers and writers of the parent go on; it cannot run
    inside a transaction) and drop it."""
    how = " CONCURRENTLY" if concurrently else ""
    return [f'ALTER TABLE "{p.parent}" DETACH PARTITION "{p.name}"{how}', f'DROP TABLE "{p.name}"']


def finalize_sql(p: Partition) -> list[str]:
    """Finish a ``DETACH … CONCURRENTLY`` that was interrupted, then drop the table."""
    return [f'ALTER TABLE "{p.parent}" DETACH PARTITION "{p.name}" FINALIZE', f'DROP TABLE "{p.name}"']
