from market.core.derive import DerivedTracker, aggregate, merge
from market.core.types import Candle

from tests.core.helpers import DAY1, DAY2, NSE, RTC, TF, C, t1, t2, utc


def test_merge_takes_first_open_last_close_extremes_and_sums():
    parts = [C(0, 10, 12, 9, 11, 5, 2), C(5, 11, 15, 11, 14, 7, 3), C(10, 14, 14, 8, 9, 1, 1)]
    assert merge(parts, 0) == C(0, 10, 15, 8, 9, 13, 6)
    assert merge(parts[1:2], 99) == C(99, 11, 15, 11, 14, 7, 3)


def test_aggregate_nse_1h_into_2h_and_4h_anchored_at_0915_with_the_stub():
    hours = [C(t1(h, 15), h, h + 1, h - 1, h + 0.5, 10 * h, h) for h in range(9, 16)]
    two = list(aggregate(hours, TF("2h"), NSE))
    assert [c.time for c in two] == [int(t1(9, 15)), int(t1(11, 15)), int(t1(13, 15)), int(t1(15, 15))]
    assert two[0] == C(t1(9, 15), 9, 11, 8, 10.5, 190, 19)
    assert two[-1] == hours[-1]  # 15:15 stub alone
    four = list(aggregate(hours, TF("4h"), NSE))
    assert [c.time for c in four] == [int(t1(9, 15)), int(t1(13, 15))]
    assert four[1] == C(t1(13, 15), 13, 16, 12, 15.5, 420, 42)


def test_aggregate_intraday_into_1d_uses_midnight_utc_of_the_local_date():
    cs = [C(t1(9, 15), 1, 2, 1, 2, 1, 1), C(t1(15, 15), 2, 3, 2, 3, 1, 1), C(t2(9, 15), 5, 5, 5, 5, 1, 1)]
    days = list(aggregate(cs, TF("1d"), NSE))
    assert days == [C(utc(*DAY1), 1, 3, 1, 3, 2, 2), C(utc(*DAY2), 5, 5, 5, 5, 1, 1)]


def test_aggregate_round_the_clock_anchors_at_midnight_utc():
    cs = [C(utc(*DAY1, h), h, h, h, h, 1, 1) for h in range(0, 24)]
    four = list(aggregate(cs, TF("4h"), RTC))
    assert [c.time for c in four] == [int(utc(*DAY1, h)) for h in range(0, 24, 4)]
    assert all(c.ticks == 4 for c in four)


def test_aggregate_skips_empty_buckets():
    cs = [C(t1(10, 0), 1, 1, 1, 1, 0, 1), C(t1(11, 30), 2, 2, 2, 2, 0, 1)]
    assert [c.time for c in aggregate(cs, TF("30m"), NSE)] == [int(t1(9, 45)), int(t1(11, 15))]
    assert list(aggregate([], TF("30m"), NSE)) == []


def test_derived_tracker_follows_live_base_updates():
    tr = DerivedTracker(TF("30m"), NSE)
    assert tr.update(C(t1(9, 45), 1, 2, 1, 2, 1, 1)) == C(t1(9, 45), 1, 2, 1, 2, 1, 1)
    # a newer snapshot of the same base candle replaces it
    assert tr.update(C(t1(9, 45), 1, 3, 1, 3, 2, 2)) == C(t1(9, 45), 1, 3, 1, 3, 2, 2)
    assert tr.update(C(t1(10, 0), 3, 4, 0.5, 4, 5, 1)) == C(t1(9, 45), 1, 4, 0.5, 4, 7, 3)
    # next bucket starts fresh; older base is ignored
    assert tr.update(C(t1(10, 15), 9, 9, 9, 9, 1, 1)) == C(t1(10, 15), 9, 9, 9, 9, 1, 1)
    assert tr.update(C(t1(10, 0), 3, 4, 0.5, 4, 5, 1)) is None


def test_derived_tracker_seeded_with_stored_parts_matches_aggregate():
    base = [C(t1(10, 15) + 60 * k, 10 + k % 3, 12 + k % 5, 8 - k % 2, 11 + k % 4, k, 1) for k in range(30)]
    tr = DerivedTracker(TF("30m"), NSE)
    out = None
    for c in base:
        out = tr.update(c)
    assert out == list(aggregate(base, TF("30m"), NSE))[-1]
    assert isinstance(out, Candle)
