"""Live study values (market.core.studies_live) equal the batch functions over the whole
series after every update: forming candle, new candle, revised candle (issue 11)."""

from __future__ import annotations

import dataclasses
import math

from market.core import studies as st
from market.core.studies_live import LiveStudies, Registry
from tests.core.helpers import RTC, TF
from tests.core.test_studies import random_walk

KEYS = ["sma", "ema:9", "rsi", "macd", "bb", "stoch", "atr", "wma", "obv", "vwap", "supertrend"]


def whole(studies, series, tf, no_volume=False):
    rows = st.compute(studies, series, tf=tf, session=RTC, no_volume=no_volume)
    return {s.key: rows[s.key] for s in studies}


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def assert_values(live_values, studies, series, tf, i=-1, no_volume=False):
    want = whole(studies, series, tf, no_volume)
    for s in studies:
        row = want[s.key][i]
        got = live_values[s.key]
        if len(s.fields) == 1:
            assert close(got, row[s.fields[0]]), (s.key, got, row)
        else:
            for f in s.fields:
                assert close(got[f], row[f]), (s.key, f, got, row)


def test_forming_new_and_revised_candles_equal_the_whole_series():
    tf = TF("5m")
    studies = st.parse_studies(KEYS[:8])
    series = random_walk(1500, seed=3, step=300)
    seed_at = 1200
    live = LiveStudies(studies, series[:seed_at], tf=tf, session=RTC)
    stored = list(series[:seed_at])
    for c in series[seed_at:]:
        forming = dataclasses.replace(c, close=c.open, high=max(c.open, c.low), ticks=1)
        stored.append(forming)
        assert_values(live.update(forming), studies, stored, tf)
        stored[-1] = c
        assert_values(live.update(c), studies, stored, tf)
        assert live.update(c) is live.update(c)  # memoised
    # a revision of an older candle changes its values and everything after it
    j = len(stored) - 5
    stored[j] = dataclasses.replace(stored[j], close=stored[j].close * 1.01, high=stored[j].high * 1.01)
    assert_values(live.update(stored[j]), studies, stored, tf, i=j)
    rows = live.rows(stored[j].time)
    want = whole(studies, stored, tf)
    for s in studies:
        for got, row in zip(rows[s.key], want[s.key][j:]):
            for f in s.fields:
                assert close(got[f], row[f])


def test_path_dependent_obv_supertrend_vwap():
    tf = TF("5m")
    studies = st.parse_studies(["obv", "supertrend", "vwap", "supertrend:7:2.5"])
    series = random_walk(900, seed=5, step=300)
    live = LiveStudies(studies, series[:600], tf=tf, session=RTC)
    for k, c in enumerate(series[600:], start=601):
        assert_values(live.update(c), studies, series[:k], tf)


def test_index_symbols_get_null_vwap_and_obv():
    tf = TF("5m")
    studies = st.parse_studies(["obv", "vwap", "ema"])
    series = random_walk(200, seed=7, step=300)
    live = LiveStudies(studies, series[:150], tf=tf, session=RTC, no_volume=True)
    values = live.update(series[150])
    assert values["obv"] is None and values["vwap"] is None and values["ema:20"] is not None


def test_registry_shares_one_per_stream():
    reg = Registry()
    made = []
    make = lambda: made.append(1) or object()  # noqa: E731
    a = reg.acquire(("X", "1m", "ema:20"), make)
    b = reg.acquire(("X", "1m", "ema:20"), make)
    assert a is b and len(made) == 1
    reg.release(("X", "1m", "ema:20"))
    assert len(reg) == 1
    reg.release(("X", "1m", "ema:20"))
    assert len(reg) == 0


def test_merge_takes_in_missed_candles():
    tf = TF("5m")
    studies = st.parse_studies(["ema:9", "obv", "supertrend"])
    series = random_walk(400, seed=9, step=300)
    live = LiveStudies(studies, series[:300], tf=tf, session=RTC)
    live.merge(series[290:350])  # candles 300..349 missed live, read back
    assert_values(live.update(series[350]), studies, series[:351], tf)


def test_path_studies_step_on_exactly_through_forming_new_revised_and_merged_candles():
    """OBV and Supertrend step on from their last state (no whole-series recompute per
    update); every kind of update still gives the batch value over the whole series."""
    import random

    tf = TF("5m")
    studies = st.parse_studies(["obv", "supertrend", "supertrend:3:1.5", "ema:5", "vwap"])
    series = random_walk(700, seed=11, step=300)
    rng = random.Random(4)
    for seed_at in (0, 2, 5, 40):  # the ATR warms up live, or already in the snapshot
        live = LiveStudies(studies, series[:seed_at], tf=tf, session=RTC)
        stored = list(series[:seed_at])
        for c in series[seed_at:seed_at + 250]:
            forming = dataclasses.replace(c, close=c.open, high=max(c.open, c.low), volume=c.volume / 3, ticks=1)
            stored.append(forming)
            assert_values(live.update(forming), studies, stored, tf)
            stored[-1] = c
            assert_values(live.update(c), studies, stored, tf)
            if len(stored) > 10 and rng.random() < 0.08:  # a revised older candle
                j = rng.randrange(len(stored) - 8, len(stored) - 1)
                stored[j] = dataclasses.replace(stored[j], close=stored[j].low, volume=stored[j].volume + 7)
                assert_values(live.update(stored[j]), studies, stored, tf, i=j)
                assert_values(live.update(stored[-1]), studies, stored, tf)
            if len(stored) > 20 and rng.random() < 0.03:  # a resync read back from the database
                live.merge(stored[-15:])
                assert_values(live.update(stored[-1]), studies, stored, tf)


def test_path_studies_of_an_index_and_of_zero_volume_prefixes():
    tf = TF("5m")
    studies = st.parse_studies(["obv"])
    series = [dataclasses.replace(c, volume=0.0) if i < 30 else c
              for i, c in enumerate(random_walk(60, seed=13, step=300))]
    live = LiveStudies(studies, series[:10], tf=tf, session=RTC)
    for k, c in enumerate(series[10:], start=11):
        assert_values(live.update(c), studies, series[:k], tf)  # null until the first volume
