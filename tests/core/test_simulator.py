import pytest

from market.core.simulator import DAY, DEMO_SYMBOLS, RandomWalk, SimSymbol

T0 = 1_732_060_800.0  # 2024-11-20 00:00 UTC


def _ticks(walk, end, start=None):
    return list(walk.ticks_until(end, t_start=start) if start is not None else walk.ticks_until(end))


def test_deterministic_for_a_seed():
    a = _ticks(RandomWalk(DEMO_SYMBOLS, rate=3.0, seed=1), T0 + 120, T0)
    b = _ticks(RandomWalk(DEMO_SYMBOLS, rate=3.0, seed=1), T0 + 120, T0)
    c = _ticks(RandomWalk(DEMO_SYMBOLS, rate=3.0, seed=2), T0 + 120, T0)
    assert a == b
    assert a != c


def test_split_calls_join_without_a_seam():
    whole = _ticks(RandomWalk(DEMO_SYMBOLS, seed=5), T0 + 300, T0)
    w = RandomWalk(DEMO_SYMBOLS, seed=5)
    parts = _ticks(w, T0 + 100, T0) + _ticks(w, T0 + 101.5) + _ticks(w, T0 + 300)
    assert parts == whole


def test_ticks_are_ascending_within_range_and_at_roughly_the_rate():
    ticks = _ticks(RandomWalk(DEMO_SYMBOLS, rate=2.0, seed=3), T0 + 600, T0)
    times = [t.time for t in ticks]
    assert times == sorted(times)
    assert T0 <= times[0] and times[-1] < T0 + 600
    expected = 2.0 * 600 * len(DEMO_SYMBOLS)
    assert 0.85 * expected < len(ticks) < 1.15 * expected
    assert {t.symbol for t in ticks} == {s.ticker for s in DEMO_SYMBOLS}


def test_prices_are_positive_multiples_of_the_tick_size():
    specs = {s.ticker: s for s in DEMO_SYMBOLS}
    for t in _ticks(RandomWalk(DEMO_SYMBOLS, seed=4), T0 + 300, T0):
        assert t.price > 0
        steps = t.price / specs[t.symbol].tick_size
        assert abs(steps - round(steps)) < 1e-6


def test_index_has_no_volume_and_others_have_rising_cumulative_volume_reset_at_midnight():
    ticks = _ticks(RandomWalk(DEMO_SYMBOLS, rate=1.0, seed=6), T0 + DAY + 600, T0 + DAY - 600)
    idx = [t for t in ticks if t.symbol == "DEMO:INDEX"]
    assert idx and all(t.day_volume is None and t.last_traded_time is None for t in idx)
    alpha = [t for t in ticks if t.symbol == "DEMO:ALPHA"]
    before = [t.day_volume for t in alpha if t.time < T0 + DAY]
    after = [t.day_volume for t in alpha if t.time >= T0 + DAY]
    assert before == sorted(before) and after == sorted(after)
    assert after[0] < before[-1]  # restarted at 00:00 UTC
    assert all(t.last_traded_time == t.time for t in alpha)


def test_start_from_continues_from_a_stored_price():
    w = RandomWalk([SimSymbol("X:A", "A", 100.0)], seed=1)
    w.start_from("X:A", 5000.0)
    first = _ticks(w, T0 + 5, T0)[0]
    assert 4500 < first.price < 5500


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        RandomWalk(DEMO_SYMBOLS, rate=0)
    with pytest.raises(ValueError):
        _ticks(RandomWalk(DEMO_SYMBOLS), T0)


def test_sim_universe_adds_numbered_symbols_the_same_way_each_time():
    from market.core.simulator import sim_universe

    assert sim_universe(0) == DEMO_SYMBOLS
    more = sim_universe(500)
    assert more == sim_universe(500) and more[:len(DEMO_SYMBOLS)] == DEMO_SYMBOLS
    extra = more[len(DEMO_SYMBOLS):]
    assert [s.ticker for s in extra[:2]] == ["DEMO:S0000", "DEMO:S0001"] and len(extra) == 500
    assert len({s.ticker for s in more}) == 504
    assert all(s.price >= 20 and s.volatility > 0 for s in extra)
    ticks = _ticks(RandomWalk(more, rate=1.0, seed=1), T0 + 60, T0)
    assert {t.symbol for t in ticks} == {s.ticker for s in more}  # every one of them trades
