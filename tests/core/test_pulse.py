"""market.core.pulse pinned against a naive recomputation on deterministic streams.

The naive side keeps the whole list of (minute, close) and recomputes every metric from
scratch with the standard library (statistics.stdev, linear_regression, quantiles), so
it shares no code with the engine.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from market.core.pulse import PulseConfig, PulseEngine, Thresholds

T0 = 1_732_000_020 - 1_732_000_020 % 60  # a whole minute
CONF = PulseConfig(regime_min_samples=5, regime_lookback=20, cooldown=30.0,
                   thresholds={"default": Thresholds(0.004, 0.008, 2.0),
                               "crypto": Thresholds(0.02, 0.04, 3.0)},
                   corr_bucket=120, corr_lookback=12, corr_lookback_high_vol=6, corr_min_points=3, corr_top=3)


def stream(seed: int, minutes: int, *, gaps: bool = True, vol: float = 0.003):
    """(time, close) updates: several per minute (the last is the close), some minutes missing."""
    rng = random.Random(seed)
    price = 100.0
    out = []
    for m in range(minutes):
        if gaps and rng.random() < 0.1:
            continue
        for k in range(rng.randint(1, 3)):
            price *= math.exp(rng.gauss(0, vol))
            out.append((T0 + m * 60 + 10 * k + rng.random(), price))
    return out


# -- naive ----------------------------------------------------------------------------------
def closes_by_minute(updates):
    d = {}
    for t, c in updates:
        d[int(t // 60) * 60] = c
    return sorted(d.items())


def naive_vol(points):
    if len(points) < 3:
        return None
    rets = [math.log(points[i][1] / points[i - 1][1]) for i in range(1, len(points))]
    return statistics.stdev(rets)


def naive_metrics(points, conf=CONF):
    t_last, last = points[-1]

    def ret(n):
        older = [c for t, c in points if t <= t_last - n * 60]
        return last / older[-1] - 1 if older else None

    window = [(t, c) for t, c in points if t > t_last - conf.vol_window]
    vol = naive_vol(window)
    slope = None
    if len(window) >= 2:
        slope = statistics.linear_regression([t / 60 for t, _ in window], [math.log(c) for _, c in window]).slope
    hist = []
    for j in range(1, len(points)):  # minute j-1 closed when minute j arrived
        closed = points[:j]
        v = naive_vol([(t, c) for t, c in closed if t > closed[-1][0] - conf.vol_window])
        if v is not None:
            hist.append(v)
    hist = hist[-conf.regime_lookback:]
    if vol is None or len(hist) < conf.regime_min_samples:
        regime = "warming_up"
    else:
        regime = "high_vol" if vol > statistics.quantiles(hist, n=100, method="inclusive")[
            int(conf.regime_percentile) - 1] else "normal"
    return {"last": last, "r1m": ret(1), "r5m": ret(5), "r15m": ret(15), "vol15m": vol, "slope": slope,
            "regime": regime, "hist": hist}


def close(a, b):
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))


# -- movers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_mover_metric_equals_the_naive_recomputation_at_every_step(seed):
    updates = stream(seed, 90)
    engine = PulseEngine(CONF)
    engine.watch("X", "equity")
    seen = []
    for i, (t, c) in enumerate(updates):
        engine.update("X", t, c)
        seen.append((t, c))
        if i % 3:  # steps are periodic, not per update
            continue
        movers, _ = engine.step(now=t, emit=False)
        (m,) = movers
        want = naive_metrics(closes_by_minute(seen))
        for name in ("last", "r1m", "r5m", "r15m", "vol15m", "slope"):
            assert close(getattr(m, name), want[name]), (i, name, getattr(m, name), want[name])
        assert m.regime == want["regime"], i
        assert m.time == closes_by_minute(seen)[-1][0]


def test_regime_reaches_high_vol_after_a_calm_history_and_the_metrics_still_match():
    calm = stream(5, 60, gaps=False, vol=0.001)
    wild = [(t + 3600, c * 1.0) for t, c in stream(6, 10, gaps=False, vol=0.02)]
    wild = [(t, c * calm[-1][1] / wild[0][1]) for t, c in wild]
    engine = PulseEngine(CONF)
    engine.watch("X", "equity")
    for t, c in calm + wild:
        engine.update("X", t, c)
    (m,), _ = engine.step(now=wild[-1][0], emit=False)
    want = naive_metrics(closes_by_minute(calm + wild))
    assert want["regime"] == "high_vol" == m.regime
    assert close(m.vol15m, want["vol15m"])


def test_too_little_data_gives_none_not_zero():
    engine = PulseEngine(CONF)
    engine.watch("X", "equity")
    engine.update("X", T0, 100.0)
    (m,), _ = engine.step(now=T0)
    assert (m.r1m, m.r5m, m.r15m, m.vol15m, m.slope, m.regime) == (None, None, None, None, None, "warming_up")


def test_updates_of_unknown_symbols_bad_prices_and_unseen_older_minutes_are_ignored():
    engine = PulseEngine(CONF)
    engine.watch("X", "equity")
    assert not engine.update("Y", T0, 1.0)
    assert not engine.update("X", T0, float("nan"))
    assert not engine.update("X", T0, -1.0)
    assert engine.update("X", T0 + 120, 10.0)
    assert not engine.update("X", T0 + 60, 11.0)   # never seen: not inserted behind
    assert engine.update("X", T0 + 125, 12.0)      # same minute: the close is replaced
    assert engine.series("X") == ([T0 + 120], [12.0])


def test_history_is_bounded_and_metrics_survive_trimming():
    updates = stream(9, 400, gaps=True)
    engine = PulseEngine(CONF)
    engine.watch("X", "equity")
    for t, c in updates:
        engine.update("X", t, c)
    assert len(engine.series("X")[0]) <= 2 * CONF.history_points
    (m,), _ = engine.step(now=updates[-1][0], emit=False)
    want = naive_metrics(closes_by_minute(updates))
    assert all(close(getattr(m, k), want[k]) for k in ("r1m", "r5m", "r15m", "vol15m", "slope"))
    assert m.regime == want["regime"]


# -- stress events --------------------------------------------------------------------------
def naive_events(updates, asset_class, step_every, conf=CONF):
    th = conf.thresholds.get(asset_class, conf.thresholds["default"])
    last_emit: dict[str, float] = {}
    out = []
    seen = []
    for i, (t, c) in enumerate(updates):
        seen.append((t, c))
        if i % step_every:
            continue
        m = naive_metrics(closes_by_minute(seen), conf)
        candidates = []
        if m["r1m"] is not None and abs(m["r1m"]) >= th.move_1m:
            candidates.append("move_1m")
        if m["r5m"] is not None and abs(m["r5m"]) >= th.move_5m:
            candidates.append("move_5m")
        if m["vol15m"] is not None and len(m["hist"]) >= conf.regime_min_samples:
            if m["vol15m"] >= th.vol_spike * statistics.median(m["hist"]):
                candidates.append("vol_spike")
        for kind in candidates:
            if kind in last_emit and t - last_emit[kind] < conf.cooldown:
                continue
            last_emit[kind] = t
            out.append((kind, t))
    return out


@pytest.mark.parametrize("asset_class, vol", [("equity", 0.004), ("crypto", 0.012)])
def test_stress_events_follow_asset_class_thresholds_and_the_cooldown(asset_class, vol):
    calm = stream(11, 40, gaps=False, vol=vol / 8)
    wild = stream(12, 30, gaps=False, vol=vol)
    wild = [(t + 2400, c * calm[-1][1] / wild[0][1]) for t, c in wild]
    updates = calm + wild
    engine = PulseEngine(CONF)
    engine.watch("X", asset_class)
    got = []
    for i, (t, c) in enumerate(updates):
        engine.update("X", t, c)
        if i % 2 == 0:
            got.extend((e.kind, e.time) for e in engine.step(now=t)[1])
    want = naive_events(updates, asset_class, 2)
    assert got == want
    kinds = {k for k, _ in got}
    assert {"move_1m", "move_5m", "vol_spike"} <= kinds  # the stream exercises all three
    for kind in kinds:  # and the cooldown really held them apart
        times = [t for k, t in got if k == kind]
        assert all(b - a >= CONF.cooldown for a, b in zip(times, times[1:]))


def test_an_event_names_symbol_kind_value_and_threshold():
    engine = PulseEngine(CONF)
    engine.watch("BINANCE:BTCUSDT", "crypto")
    engine.update("BINANCE:BTCUSDT", T0, 100.0)
    engine.update("BINANCE:BTCUSDT", T0 + 60, 103.0)
    _, events = engine.step(now=T0 + 61)
    (e,) = events
    assert (e.symbol, e.asset_class, e.kind, e.threshold) == ("BINANCE:BTCUSDT", "crypto", "move_1m", 0.02)
    assert math.isclose(e.value, 0.03) and e.message == "BINANCE:BTCUSDT +3.00% in 1m"
    engine.update("BINANCE:BTCUSDT", T0 + 65, 104.0)
    assert engine.step(now=T0 + 80)[1] == []          # within the 30 s cooldown
    engine.update("BINANCE:BTCUSDT", T0 + 70, 104.5)
    assert [x.kind for x in engine.step(now=T0 + 91)[1]] == ["move_1m"]  # after it


# -- correlation ----------------------------------------------------------------------------
def naive_correlations(series: dict[str, list[tuple[int, float]]], base: str, lookback: int, conf=CONF):
    b = conf.corr_bucket

    def buckets(points):
        d = {}
        for t, c in points:
            d[t - t % b] = c
        return d

    newest = series[base][-1][0] - series[base][-1][0] % b
    since = newest - (lookback - 1) * b
    base_b = {k: v for k, v in buckets(series[base]).items() if since <= k <= newest}
    rows = []
    for sym, points in series.items():
        if sym == base:
            continue
        ob = {k: v for k, v in buckets(points).items() if since <= k}
        common = sorted(set(base_b) & set(ob))
        if len(common) - 1 < conf.corr_min_points:
            continue
        xs = [math.log(base_b[common[i]] / base_b[common[i - 1]]) for i in range(1, len(common))]
        ys = [math.log(ob[common[i]] / ob[common[i - 1]]) for i in range(1, len(common))]
        try:
            r = statistics.correlation(xs, ys)
        except statistics.StatisticsError:
            continue
        rows.append((sym, r, len(xs)))
    rows.sort(key=lambda r: (-abs(r[1]), r[0]))
    return rows[: conf.corr_top]


NO_REGIME = PulseConfig(**{**CONF.__dict__, "regime_min_samples": 10_000})  # never high_vol


def correlated_universe(seed: int, wild_base: bool = False):
    rng = random.Random(seed)
    base_updates = stream(seed, 60, gaps=True, vol=0.002)
    if wild_base:
        calm = stream(seed, 40, gaps=False, vol=0.0005)
        wild = stream(seed + 1, 6, gaps=False, vol=0.02)
        base_updates = calm + [(t + 2400, c * calm[-1][1] / wild[0][1]) for t, c in wild]
    out = {"BASE": base_updates}
    for k, beta in enumerate([1.0, -0.8, 0.3, 0.0, 0.6]):
        pts, prev = [], None
        for t, c in base_updates:
            if rng.random() < 0.15:
                continue  # this symbol misses some updates: alignment matters
            noise = math.exp(rng.gauss(0, 0.0005))
            val = (c / 100.0) ** beta * 50.0 * noise if beta else 50.0 * noise
            pts.append((t + rng.random() * 5, val))
        out[f"S{k}"] = pts
    return out


@pytest.mark.parametrize("seed", [21, 22])
def test_correlations_align_on_common_buckets_and_match_the_naive_ranking(seed):
    universe = correlated_universe(seed)
    engine = PulseEngine(NO_REGIME)
    for sym, updates in universe.items():
        engine.watch(sym, "equity")
        for t, c in updates:
            engine.update(sym, t, c)
    engine.step(now=T0 + 3600, emit=False)
    card = engine.correlations("BASE")
    want = naive_correlations({s: closes_by_minute(u) for s, u in universe.items()}, "BASE", CONF.corr_lookback)
    assert card["lookback"] == CONF.corr_lookback and card["bucket"] == 120
    assert [(r["symbol"], r["n"]) for r in card["top"]] == [(s, n) for s, _, n in want]
    assert all(math.isclose(r["corr"], w, abs_tol=1e-9) for r, (_, w, _) in zip(card["top"], want))
    # The independent symbol is not among the top; the anti-correlated one shows its sign.
    assert "S3" not in {r["symbol"] for r in card["top"]}
    assert next(r["corr"] for r in card["top"] if r["symbol"] == "S1") < -0.5


def test_the_look_back_shortens_while_the_base_is_high_vol():
    universe = correlated_universe(31, wild_base=True)
    engine = PulseEngine(CONF)
    for sym, updates in universe.items():
        engine.watch(sym, "equity")
        for t, c in updates:
            engine.update(sym, t, c)
    engine.step(now=T0 + 7200, emit=False)
    assert engine.regime("BASE") == "high_vol"
    card = engine.correlations("BASE")
    assert card["lookback"] == CONF.corr_lookback_high_vol and card["regime"] == "high_vol"
    want = naive_correlations({s: closes_by_minute(u) for s, u in universe.items()}, "BASE",
                              CONF.corr_lookback_high_vol)
    assert [(r["symbol"], r["n"]) for r in card["top"]] == [(s, n) for s, _, n in want]
    assert all(r["n"] <= CONF.corr_lookback_high_vol - 1 for r in card["top"])


def test_config_from_settings_mapping_and_validation():
    conf = PulseConfig.from_mapping({"THRESHOLDS": {"crypto": {"move_1m": 0.02, "move_5m": 0.05, "vol_spike": 3}},
                                     "COOLDOWN": 10, "CORR_BUCKET": 300})
    assert conf.for_class("crypto") == Thresholds(0.02, 0.05, 3.0)
    assert conf.for_class("equity") == Thresholds()  # falls back to default
    assert conf.cooldown == 10 and conf.corr_bucket == 300
    with pytest.raises(ValueError):
        PulseConfig.from_mapping({"CORR_BUCKET": 90})
