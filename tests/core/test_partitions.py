"""The candle partition layout (market/core/partitions.py): names, bounds, what a cutoff drops."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from market.core import partitions as pt

T = "market_candle"


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


def test_spans_day_below_a_minute_month_otherwise():
    assert pt.span_of(5) == "day" and pt.span_of(30) == "day"
    assert pt.span_of(60) == "month" and pt.span_of(86400) == "month"


def test_bounds_of_a_day_and_a_month():
    t = ts(2026, 12, 2, 14, 30)
    assert pt.bounds(t, "day") == (ts(2026, 12, 2), ts(2026, 12, 3))
    assert pt.bounds(ts(2026, 12, 2), "day") == (ts(2026, 12, 2), ts(2026, 12, 3))  # start is inside
    assert pt.bounds(ts(2026, 12, 2) - 1, "day") == (ts(2026, 12, 1), ts(2026, 12, 2))
    assert pt.bounds(t, "month") == (ts(2026, 12, 1), ts(2027, 1, 1))  # December rolls the year
    assert pt.bounds(ts(2024, 2, 29, 23), "month") == (ts(2024, 2, 1), ts(2024, 3, 1))


def test_names_and_parents():
    day = pt.partition_for(T, "5s", ts(2026, 12, 2, 9))
    month = pt.partition_for(T, "1m", ts(2026, 12, 2, 9))
    assert (day.name, day.parent) == ("market_candle_5s_20261202", "market_candle_5s")
    assert (month.name, month.parent) == ("market_candle_1m_202612", "market_candle_1m")
    whole = pt.Partition(T, "1d")
    assert (whole.name, whole.parent) == ("market_candle_1d", "market_candle")
    with pytest.raises(ValueError):
        pt.timeframe_name(T, "5s'; DROP TABLE x; --")


def test_covering_and_following():
    parts = pt.covering(T, "5s", ts(2026, 11, 30, 23), ts(2026, 12, 2, 0))
    assert [p.name for p in parts] == ["market_candle_5s_20261130", "market_candle_5s_20261201",
                                       "market_candle_5s_20261202"]
    assert [p.name for p in pt.following(parts[-1], 2)] == ["market_candle_5s_20261203", "market_candle_5s_20261204"]
    months = pt.covering(T, "1m", ts(2026, 11, 15), ts(2027, 1, 1))
    assert [p.name for p in months] == ["market_candle_1m_202611", "market_candle_1m_202612", "market_candle_1m_202701"]


def test_needed_holds_every_row_and_the_spans_ahead():
    rows = [("5s", ts(2026, 12, 1, 10)), ("5s", ts(2026, 12, 2, 10)), ("5s", ts(2026, 12, 2, 11)),
            ("1m", ts(2026, 12, 2, 10)), ("1d", ts(2026, 12, 2))]
    got = {p.name for p in pt.needed(T, rows, {"5s", "1m"})}
    assert got == {
        "market_candle_5s_20261201", "market_candle_5s_20261202",
        "market_candle_5s_20261203", "market_candle_5s_20261204",  # AHEAD of the newest
        "market_candle_1m_202612", "market_candle_1m_202701", "market_candle_1m_202702",
        "market_candle_1d",  # not ranged: the timeframe's one partition
    }
    for code, t in rows:  # every row has a partition whose bounds hold it
        if code != "1d":
            assert any(p.timeframe == code and p.start <= t < p.end for p in pt.needed(T, rows, {"5s", "1m"})
                       if p.start is not None)


def test_expired_are_the_partitions_wholly_before_the_cutoff():
    days = pt.covering(T, "5s", ts(2026, 11, 1), ts(2026, 11, 5))
    cutoff = ts(2026, 11, 3, 12)  # inside the 3rd
    assert [p.name for p in pt.expired(days, cutoff)] == ["market_candle_5s_20261101", "market_candle_5s_20261102"]
    assert [p.name for p in pt.expired(days, ts(2026, 11, 3))] == ["market_candle_5s_20261101",
                                                                  "market_candle_5s_20261102"]
    assert pt.expired([pt.Partition(T, "1d")], 10**12) == []  # a whole timeframe never expires
    assert pt.expired(days, ts(2026, 11, 1)) == []


def test_parse_bound_reads_what_postgresql_prints():
    assert pt.parse_bound(T, None, "FOR VALUES IN ('5s')") == pt.Partition(T, "5s")
    p = pt.parse_bound(T, "5s", "FOR VALUES FROM ('1764633600') TO ('1764720000')")
    assert (p.start, p.end, p.name) == (1764633600, 1764720000, "market_candle_5s_20251202")
    with pytest.raises(ValueError):
        pt.parse_bound(T, None, "DEFAULT")


def test_ddl_attaches_instead_of_creating_under_the_parent():
    p = pt.partition_for(T, "5s", ts(2026, 12, 2))
    create = pt.create_sql(p)
    assert create[0].startswith('CREATE TABLE "market_candle_5s_20261202" (LIKE "market_candle"')
    assert create[1] == (f'ALTER TABLE "market_candle_5s" ATTACH PARTITION "market_candle_5s_20261202" '
                         f"FOR VALUES FROM ({ts(2026, 12, 2)}) TO ({ts(2026, 12, 3)})")
    assert pt.create_sql(pt.Partition(T, "5s"), ranged=True)[0].endswith("PARTITION BY RANGE (time)")
    assert "IN ('1d')" in pt.create_sql(pt.Partition(T, "1d"))[1]
    assert pt.drop_sql(p, concurrently=True)[0].endswith("CONCURRENTLY")
    assert pt.drop_sql(p, concurrently=False) == [
        'ALTER TABLE "market_candle_5s" DETACH PARTITION "market_candle_5s_20261202"', 'DROP TABLE "market_candle_5s_20261202"']
