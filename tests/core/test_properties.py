"""Property tests: the engine against a naive model of the contract, and derive vs direct.

(1) Over random tick streams (out of order inside a bucket, late, repeats, cumulative
    volume going backwards, NSE and round-the-clock sessions, session edges, day changes,
    a resumed day-volume baseline) the engine's verdict on every tick and its collected
    candles equal a naive recomputation from the accepted ticks.
(2) Every timeframe code derived with ``derive.aggregate`` from each stored timeframe that
    divides it equals direct aggregation of the same ticks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.core.derive import aggregate
from market.core.engine import CandleEngine
from market.vendors.fyers.messages import exchange_of
from market.core.timeframes import ALL, BASE, CODES, TimeframePlan, divides
from market.core.types import Candle, Reject, Tick

from tests.core.helpers import BOOK, DAY1, TF, ist, utc

SYMBOLS = ("NSE:AAA-EQ", "NSE:IDX-INDEX", "DEMO:BTC")
HAS_VOLUME = {"NSE:AAA-EQ": True, "NSE:IDX-INDEX": False, "DEMO:BTC": True}
START = {
    "NSE:AAA-EQ": ist(*DAY1, 9, 14, 50),       # a few pre-open ticks, then the open
    "NSE:IDX-INDEX": ist(*DAY1, 15, 28, 0),    # runs into the close
    "DEMO:BTC": utc(*DAY1, 23, 57, 0),         # crosses 00:00 UTC
}
SESSION = {s: BOOK.for_exchange(exchange_of(s)) for s in SYMBOLS}

SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- streams -------------------------------------------------------------------------------
forward = st.sampled_from([0, 0, 0.5, 1, 1, 2, 3, 4.5, 5, 7, 13, 59, 61, 300, 907])
backward = st.sampled_from([0.5, 1, 2, 3, 4.5, 6, 11, 60])
jump = st.sampled_from([3600, 3 * 3600, 6 * 3600, 12 * 3600, 18 * 3600, 86400])

step = st.tuples(
    st.integers(0, len(SYMBOLS) - 1),
    st.sampled_from(["next"] * 6 + ["back"] * 2 + ["repeat", "jump"]),
    forward, backward, jump,
    st.integers(1, 8),                   # price (small set -> ties at high/low/open/close)
    st.integers(-40, 120),               # change of the cumulative volume (may go backwards)
    st.booleans(),                       # a new day resets the source's cumulative volume
    st.sampled_from([False] * 5 + [True]),  # collect() after this step
)
stored_sets = st.sets(st.sampled_from([c for c in CODES if c != "5s"]), max_size=6).map(
    lambda extra: ("5s", *sorted(extra, key=lambda c: TF(c)))
)
seeds = st.dictionaries(st.sampled_from(["NSE:AAA-EQ", "DEMO:BTC"]), st.integers(0, 3000), max_size=2)


@dataclass
class Stream:
    ticks: list
    collect_after: set


def build_stream(steps) -> Stream:
    t = dict(START)
    vol = {s: 1000 for s in SYMBOLS}
    last: dict[str, Tick] = {}
    ticks, collect_after = [], set()
    for sym_i, kind, fwd, back, jmp, price, dvol, reset, do_collect in steps:
        s = SYMBOLS[sym_i]
        if kind == "repeat" and s in last:
            prev = last[s]
            # the SDK re-sends the same trade; for equities the exchange time may move on
            moved = prev.time + (fwd if HAS_VOLUME[s] else 0)
            tick = Tick(s, moved, prev.price, prev.day_volume, prev.last_traded_time)
        else:
            if kind == "back":
                t[s] -= back
            elif kind == "jump":
                t[s] += jmp
                if reset:
                    vol[s] = 0
            else:
                t[s] += fwd
            if HAS_VOLUME[s]:
                vol[s] = max(0, vol[s] + dvol)
                tick = Tick(s, t[s], float(price), float(vol[s]), t[s])
            else:
                tick = Tick(s, t[s], float(price))
        last[s] = tick
        ticks.append(tick)
        if do_collect:
            collect_after.add(len(ticks) - 1)
    return Stream(ticks, collect_after)


# -- the naive model -----------------------------------------------------------------------
def naive_verdicts(ticks, seeds):
    """Reason per tick (None = accepted) and the volume each accepted tick adds."""
    open5: dict[str, int] = {}
    last_key: dict[str, tuple] = {}
    vol_day: dict[str, int] = {}
    vol_max: dict[str, float] = {}
    verdicts, adds = [], []
    for tk in ticks:
        s = tk.symbol
        key = (tk.price, tk.day_volume, tk.last_traded_time or 0.0) if tk.day_volume is not None \
            else (tk.price, tk.time)
        day = SESSION[s].day_of(tk.time)
        if last_key.get(s) == key:
            verdict = Reject.REPEAT
        elif not day.contains(tk.time):
            verdict = Reject.OUT_OF_SESSION  # a pre-open print is out of session, even if also late
        elif s in open5 and tk.time < open5[s]:
            verdict = Reject.LATE
        else:
            verdict = None
        verdicts.append(verdict)
        if verdict is not None:
            adds.append(None)
            continue
        last_key[s] = key
        open5[s] = day.bucket_start(BASE, tk.time)
        add = 0.0
        if tk.day_volume is not None:
            if vol_day.get(s) != day.label:
                if s in seeds and seeds[s][0] == day.label:
                    vol_max[s] = seeds[s][1]
                elif s not in vol_day:
                    vol_max[s] = tk.day_volume
                else:
                    vol_max[s] = 0.0
                vol_day[s] = day.label
            add = max(0.0, tk.day_volume - vol_max[s])
            vol_max[s] = max(vol_max[s], tk.day_volume)
        adds.append(add)
    return verdicts, adds


def direct(ticks, adds, tf):
    """{(symbol, time): Candle} straight from accepted ticks: (exchange time, arrival) order."""
    groups: dict[tuple, list] = {}
    for i, (tk, add) in enumerate(zip(ticks, adds)):
        if add is None:
            continue
        day = SESSION[tk.symbol].day_of(tk.time)
        groups.setdefault((tk.symbol, day.bucket_start(tf, tk.time)), []).append((tk.time, i, tk.price, add))
    out = {}
    for key, rows in groups.items():
        rows.sort()
        prices = [r[2] for r in rows]
        out[key] = Candle(key[1], prices[0], max(prices), min(prices), prices[-1],
                          float(sum(r[3] for r in rows)), len(rows))
    return out


def run_engine(stream, stored, seeds):
    engine = CandleEngine([TF(c) for c in stored], BOOK)
    for s in SYMBOLS:
        engine.register(s, exchange_of(s))
        if s in seeds:
            engine.resume(s, {}, day_volume=seeds[s])
    verdicts, finals, state = [], set(), {}
    problems = []

    def fold(updates):
        for u in updates:
            k = (u.symbol, u.timeframe, u.candle.time)
            if k in finals:
                problems.append(f"update after final: {u}")
            if u.candle.ticks <= 0:
                problems.append(f"empty candle: {u}")
            state[k] = u.candle
            if u.final:
                finals.add(k)

    for i, tk in enumerate(stream.ticks):
        verdicts.append(engine.add(tk))
        if i in stream.collect_after:
            fold(engine.collect())
    fold(engine.collect())
    return engine, verdicts, state, problems


def _seed_values(raw):
    # the stored baseline belongs to each symbol's first trading day
    return {s: (SESSION[s].day_of(START[s]).label, float(v)) for s, v in raw.items()}


@SETTINGS
@given(steps=st.lists(step, min_size=30, max_size=200), stored=stored_sets, raw_seeds=seeds)
def test_engine_candles_equal_a_naive_recomputation_from_accepted_ticks(steps, stored, raw_seeds):
    stream = build_stream(steps)
    seeds_ = _seed_values(raw_seeds)
    engine, verdicts, state, problems = run_engine(stream, stored, seeds_)
    expected_verdicts, adds = naive_verdicts(stream.ticks, seeds_)
    assert verdicts == expected_verdicts
    assert problems == []
    counts: dict[str, int] = {}
    for v in expected_verdicts:
        if v is not None:
            counts[v.value] = counts.get(v.value, 0) + 1
    assert engine.rejected == counts
    assert engine.accepted == sum(v is None for v in expected_verdicts)
    for code in stored:
        want = direct(stream.ticks, adds, TF(code))
        got = {(s, t): c for (s, tf, t), c in state.items() if tf == code}
        assert got == want, code


@SETTINGS
@given(steps=st.lists(step, min_size=30, max_size=200), stored=stored_sets)
def test_every_code_derived_from_each_stored_base_equals_direct_aggregation(steps, stored):
    stream = build_stream(steps)
    _, _, state, _ = run_engine(stream, stored, {})
    _, adds = naive_verdicts(stream.ticks, {})
    plan = TimeframePlan.build(stored)
    series: dict[tuple, list] = {}
    for (sym, tf, t), c in sorted(state.items(), key=lambda kv: kv[0][2]):
        series.setdefault((sym, tf), []).append(c)
    for target in ALL:
        want: dict[str, list] = {}
        for (sym, t), c in sorted(direct(stream.ticks, adds, target).items(), key=lambda kv: kv[0][1]):
            want.setdefault(sym, []).append(c)
        bases = [b for b in plan.stored if b == target or (b.seconds < target.seconds and divides(b, target))]
        assert plan.base_for(target) in bases
        for base in bases:
            for s in SYMBOLS:
                derived = list(aggregate(series.get((s, base.code), []), target, SESSION[s]))
                assert derived == want.get(s, []), (s, base.code, target.code)


def run_with_restarts(stream, stored, seeds, restart_after):
    """The same stream, but the engine is thrown away after each collect in ``restart_after``
    and a fresh one continues from the stored states (through JSON, as the database keeps them)."""
    def fresh():
        engine = CandleEngine([TF(c) for c in stored], BOOK)
        for s in SYMBOLS:
            engine.register(s, exchange_of(s))
        return engine

    engine = fresh()
    for s in SYMBOLS:
        if s in seeds:
            engine.resume(s, {}, day_volume=seeds[s])
    stored_states: dict[str, str] = {}
    verdicts, state = [], {}

    def fold(updates, states):
        for u in updates:
            state[(u.symbol, u.timeframe, u.candle.time)] = u.candle
        stored_states.update({s: json.dumps(v) for s, v in states.items()})

    for i, tk in enumerate(stream.ticks):
        verdicts.append(engine.add(tk))
        if i in stream.collect_after or i in restart_after:
            states: dict = {}
            fold(engine.collect(states), states)
        if i in restart_after:
            engine = fresh()
            for s, raw in stored_states.items():
                assert engine.restore(s, json.loads(raw))
            for s in SYMBOLS:  # a symbol with no state yet still has its baseline
                if s in seeds and s not in stored_states:
                    engine.resume(s, {}, day_volume=seeds[s])
    states = {}
    fold(engine.collect(states), states)
    return verdicts, state


@SETTINGS
@given(steps=st.lists(step, min_size=30, max_size=200), stored=stored_sets, raw_seeds=seeds,
       cuts=st.sets(st.integers(0, 199), max_size=12))
def test_restarting_from_collected_states_at_any_point_changes_nothing(steps, stored, raw_seeds, cuts):
    stream = build_stream(steps)
    seeds_ = _seed_values(raw_seeds)
    _, verdicts, state, _ = run_engine(stream, stored, seeds_)
    restarted_verdicts, restarted_state = run_with_restarts(stream, stored, seeds_, cuts)
    assert restarted_verdicts == verdicts
    assert restarted_state == state


def test_a_state_from_other_timeframes_is_refused():
    engine = CandleEngine([TF("5s"), TF("1m")], BOOK)
    engine.register("DEMO:BTC", "DEMO")
    engine.add(Tick("DEMO:BTC", START["DEMO:BTC"], 10.0, None, None, 1.0))
    states: dict = {}
    engine.collect(states)
    other = CandleEngine([TF("5s"), TF("5m")], BOOK)
    other.register("DEMO:BTC", "DEMO")
    assert other.restore("DEMO:BTC", states["DEMO:BTC"]) is False
    assert other.restore("DEMO:BTC", {"v": 99}) is False
    assert other.current("DEMO:BTC", TF("5s")) is None  # nothing half-restored
