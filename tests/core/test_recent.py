"""market.core.recent: a stream's newest candles answer exactly what the database would."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from market.core.recent import Recent


def bar(t: int, ticks: int = 1, close: float = 1.0) -> dict[str, Any]:
    return {"time": t, "open": 1.0, "high": 2.0, "low": 0.5, "close": close, "volume": float(ticks), "ticks": ticks}


def test_a_short_read_of_the_newest_is_everything_there_is():
    ring = Recent.from_newest(10, [bar(60), bar(120)], asked=5)
    assert ring.floor is None
    assert ring.last(5) == [bar(60), bar(120)]
    assert ring.since(0, 100) == [bar(60), bar(120)]
    assert ring.since(61, 100) == [bar(120)]


def test_a_full_read_of_the_newest_holds_nothing_before_its_first_candle():
    ring = Recent.from_newest(10, [bar(60 * i) for i in range(1, 6)], asked=5)
    assert ring.floor == 60
    assert ring.last(5) == [bar(60 * i) for i in range(1, 6)]
    assert ring.last(3) == [bar(180), bar(240), bar(300)]
    assert ring.last(6) is None  # older candles may be stored
    assert ring.since(59, 100) is None
    assert ring.since(60, 100) == [bar(60 * i) for i in range(1, 6)]


def test_since_with_limit_or_more_candles_answers_the_newest_limit():
    ring = Recent(10, [bar(60 * i) for i in range(1, 6)], floor=0)
    assert ring.since(60, 3) == [bar(180), bar(240), bar(300)]
    assert ring.since(240, 3) == [bar(240), bar(300)]


def test_updates_replace_with_more_ticks_and_ignore_fewer_unless_revised():
    ring = Recent.from_newest(10, [bar(60, ticks=5)], asked=5)
    assert not ring.apply(bar(60, ticks=4, close=9.0))
    assert ring.last(1) == [bar(60, ticks=5)]
    assert ring.apply(bar(60, ticks=5, close=2.0))
    assert ring.last(1) == [bar(60, ticks=5, close=2.0)]
    assert ring.apply(bar(60, ticks=2, close=3.0), revised=True)
    assert ring.last(1) == [bar(60, ticks=2, close=3.0)]


def test_new_candles_go_in_order_and_the_oldest_drop_past_capacity():
    ring = Recent.from_newest(3, [bar(60), bar(180)], asked=10)
    ring.apply(bar(120))  # a filled gap
    assert ring.last(3) == [bar(60), bar(120), bar(180)]
    assert ring.floor is None
    ring.apply(bar(240))
    assert ring.last(3) == [bar(120), bar(180), bar(240)]
    assert ring.floor == 120
    assert not ring.apply(bar(60))  # before the floor: not claimed, not held
    assert ring.since(60, 10) is None


def test_a_complete_ring_takes_a_candle_older_than_all():
    ring = Recent.from_newest(5, [bar(120)], asked=5)
    assert ring.apply(bar(60), revised=True)
    assert ring.last(5) == [bar(60), bar(120)]


def test_every_change_bumps_the_version():
    ring = Recent.from_newest(5, [bar(60)], asked=5)
    v = ring.version
    ring.apply(bar(60, ticks=0))  # fewer ticks: no change
    assert ring.version == v
    ring.apply(bar(120))
    assert ring.version == v + 1


@pytest.mark.parametrize("rows, floor, message", [
    ([bar(120), bar(60)], None, "ascending"),
    ([bar(60), bar(60)], None, "ascending"),
    ([bar(60)], 120, "floor"),
])
def test_a_bad_seed_is_refused(rows, floor, message):
    with pytest.raises(ValueError, match=message):
        Recent(5, rows, floor=floor)


def test_no_capacity_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        Recent(0, [], floor=None)


# -- against a model database ---------------------------------------------------------------
def db_last(db: dict[int, dict], limit: int) -> list[dict]:
    return [db[t] for t in sorted(db)][-limit:] if limit else []


def db_since(db: dict[int, dict], since: int, limit: int) -> list[dict]:
    out = [db[t] for t in sorted(db) if t >= since]
    return db_last(db, limit) if len(out) >= limit else out


steps = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3), st.booleans()), max_size=60)


@settings(max_examples=300, deadline=None)
@given(seed_times=st.sets(st.integers(0, 40), max_size=15), asked=st.integers(1, 12),
       capacity=st.integers(1, 12), events=steps, since=st.integers(0, 42), limit=st.integers(1, 14))
def test_whatever_it_answers_equals_the_database(seed_times, asked, capacity, events, since, limit):
    """The database is written last-write-wins and publishes each write in order; a bar only
    grows unless the write is a revision. The ring, seeded from a read of the newest ``asked``
    and fed the events, answers as the database would, or says it cannot."""
    db = {t * 60: bar(t * 60, ticks=1) for t in seed_times}
    ring = Recent.from_newest(capacity, db_last(db, asked), asked=asked)
    for slot, grow, revised in events:
        t = slot * 60
        old = db.get(t)
        ticks = grow if revised else (old["ticks"] if old else 0) + grow
        candle = bar(t, ticks=ticks, close=float(len(db) + ticks))
        db[t] = candle
        ring.apply(candle, revised=revised)
    last = ring.last(limit)
    if last is not None:
        assert last == db_last(db, limit)
    got = ring.since(since * 60, limit)
    if got is not None:
        assert got == db_since(db, since * 60, limit)
    times = ring.times
    assert times == sorted(times) and len(times) <= capacity
    assert [r["time"] for r in ring.rows] == times
    if ring.floor is not None:  # everything the database has from the floor on is held
        assert [db[t] for t in sorted(db) if t >= ring.floor] == ring.rows[bisect_left(times, ring.floor):]
