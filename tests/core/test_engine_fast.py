"""The engine's fast paths against the reference engine (``tests/core/reference_engine.py``).

``CandleEngine.add`` takes a short path for a tick inside the open 5 s bucket, and the
engine builds ``Candle``/``CandleUpdate`` without calling the dataclasses. On random tick
streams (in and out of order, repeats, late, bad times and prices, future ticks, per-trade
sizes, volume going backwards, session edges, day changes, a resumed day volume, restarts
from collected states mid-stream) both engines must give the same verdict for every tick,
the same collected updates in the same order (compared by ``repr``, so an int where a float
was, or ``-0.0`` for ``0.0``, is a difference), the same states, counters and open candles.
"""

from __future__ import annotations

import dataclasses
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.core import engine as fast
from market.core.timeframes import CODES
from market.core.types import Candle, CandleUpdate, Tick
from market.vendors.fyers.messages import exchange_of

from tests.core import reference_engine as reference
from tests.core.helpers import BOOK, DAY1, TF, ist, utc

SYMBOLS = ("NSE:AAA-EQ", "NSE:IDX-INDEX", "DEMO:BTC", "DEMO:TRADES", "NSE:NOPE-EQ")
REGISTERED = SYMBOLS[:4]  # the last one is unknown to the engines
START = {
    "NSE:AAA-EQ": ist(*DAY1, 9, 14, 50),       # pre-open ticks, then the open
    "NSE:IDX-INDEX": ist(*DAY1, 15, 29, 40),   # runs into the close
    "DEMO:BTC": utc(*DAY1, 23, 59, 30),        # crosses 00:00 UTC
    "DEMO:TRADES": utc(*DAY1, 12, 0, 0),
    "NSE:NOPE-EQ": ist(*DAY1, 10, 0, 0),
}

SETTINGS = settings(
    max_examples=120, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

forward = st.sampled_from([0, 0, 0.25, 0.5, 1, 1, 1, 2, 3, 4.5, 5, 7, 13, 59, 61, 300, 907])
backward = st.sampled_from([0.5, 1, 2, 3, 4.5, 5, 6, 11, 60])
jump = st.sampled_from([3600, 6 * 3600, 12 * 3600, 18 * 3600, 86400])
step = st.tuples(
    st.integers(0, len(SYMBOLS) - 1),
    st.sampled_from(["next"] * 10 + ["back"] * 2 + ["repeat"] * 2
                    + ["jump", "bad_time", "bad_price", "future", "restart", "collect", "states"]),
    forward, backward, jump,
    st.integers(1, 8),           # price: a small set, so ties at high/low/open/close
    st.integers(-40, 120),       # change of the cumulative volume (may go backwards)
    st.booleans(),               # int exchange times (as the Fyers parser keeps them) or float
    st.sampled_from([None, 0, 1, 2.5, -0.0]),  # a per-trade size (DEMO:TRADES); 2.5: no volume
    st.sampled_from([60, 60, 299, 300, 301, 302, 303, 304]),  # how far the wall clock lags the tick
)
stored_sets = st.sets(st.sampled_from([c for c in CODES if c != "5s"]), max_size=6).map(
    lambda extra: ("5s", *sorted(extra, key=lambda c: TF(c)))
)
seeds = st.dictionaries(st.sampled_from(["NSE:AAA-EQ", "DEMO:BTC"]), st.integers(0, 3000), max_size=2)
BAD_TIMES = [float("nan"), 0.0, -5.0, 1e10, float("inf"), 1_700_000_000_000.0]
BAD_PRICES = [0.0, -1.0, float("nan"), float("inf")]


class Pair:
    """The engine under test and the reference, fed the same input."""

    def __init__(self, stored, seeds_, max_ahead):
        self.stored, self.seeds, self.max_ahead = stored, seeds_, max_ahead
        self.now = [START["NSE:AAA-EQ"]]
        self.fast = self._fresh(fast.CandleEngine)
        self.ref = self._fresh(reference.CandleEngine)
        for e in (self.fast, self.ref):
            for s, seed in seeds_.items():
                e.resume(s, {}, day_volume=seed)
        self.states: dict[str, str] = {}

    def _fresh(self, cls):
        e = cls([TF(c) for c in self.stored], BOOK, max_ahead=self.max_ahead, clock=lambda: self.now[0])
        for s in REGISTERED:
            e.register(s, exchange_of(s))
        return e

    def add(self, tick):
        got, want = self.fast.add(tick), self.ref.add(tick)
        assert got == want, (tick, got, want)

    def collect(self, with_states):
        assert self.fast.accepted == self.ref.accepted
        assert self.fast.rejected == self.ref.rejected
        if not with_states:
            got, want = self.fast.collect(), self.ref.collect()
            assert repr(got) == repr(want)
            return
        s_got: dict = {}
        s_want: dict = {}
        got, want = self.fast.collect(s_got), self.ref.collect(s_want)
        assert repr(got) == repr(want)
        assert json.dumps(s_got, sort_keys=True) == json.dumps(s_want, sort_keys=True)
        self.states.update({s: json.dumps(v) for s, v in s_got.items()})

    def restart(self):
        """Both engines are thrown away; fresh ones continue from the stored states."""
        self.collect(True)
        self.fast = self._fresh(fast.CandleEngine)
        self.ref = self._fresh(reference.CandleEngine)
        for e in (self.fast, self.ref):
            for s, raw in self.states.items():
                assert e.restore(s, json.loads(raw))
            for s, seed in self.seeds.items():
                if s not in self.states:
                    e.resume(s, {}, day_volume=seed)

    def check(self):
        assert self.fast.accepted == self.ref.accepted
        assert self.fast.rejected == self.ref.rejected
        for s in REGISTERED:
            for code in self.stored:
                assert repr(self.fast.current(s, TF(code))) == repr(self.ref.current(s, TF(code)))


def run(steps, stored, seeds_, max_ahead):
    pair = Pair(stored, seeds_, max_ahead)
    t = dict(START)
    vol = {s: 1000 for s in SYMBOLS}
    last: dict[str, Tick] = {}
    for sym_i, kind, fwd, back, jmp, price, dvol, int_time, size, lag in steps:
        s = SYMBOLS[sym_i]
        if kind == "restart":
            pair.restart()
            continue
        if kind in ("collect", "states"):
            pair.collect(kind == "states")
            continue
        if kind == "repeat" and s in last:
            prev = last[s]
            tick = Tick(prev.symbol, prev.time + (fwd if prev.day_volume is not None else 0),
                        prev.price, prev.day_volume, prev.last_traded_time, prev.size)
        else:
            if kind == "back":
                t[s] -= back
            elif kind == "jump":
                t[s] += jmp
                vol[s] = 0 if dvol % 2 else vol[s]
            else:
                t[s] += fwd
            when = int(t[s]) if int_time else t[s]
            p = float(price)
            if kind == "bad_time":
                when = BAD_TIMES[price % len(BAD_TIMES)]
            elif kind == "bad_price":
                p = BAD_PRICES[price % len(BAD_PRICES)]
            elif kind == "future":
                when = t[s] + 400 + fwd
            if s.endswith("-INDEX") or (size == 2.5 and s != "DEMO:TRADES"):  # a print without volume
                tick = Tick(s, when, p)
            elif s == "DEMO:TRADES":
                tick = Tick(s, when, p, None, None, size)
            else:
                vol[s] = max(0, vol[s] + dvol)
                v = vol[s] if int_time else float(vol[s])
                tick = Tick(s, when, p, v, when if dvol % 3 else None)
        last[s] = tick
        # Not monotonic, unlike a real clock: a tick inside the open bucket can then be
        # ahead of a stale horizon, which the fast path must check as the full one does.
        pair.now[0] = t[s] - lag
        pair.add(tick)
    pair.collect(True)
    pair.check()


@SETTINGS
@given(steps=st.lists(step, min_size=20, max_size=300), stored=stored_sets, raw_seeds=seeds,
       max_ahead=st.sampled_from([None, 300.0]))
def test_the_fast_paths_match_the_reference_engine_tick_for_tick(steps, stored, raw_seeds, max_ahead):
    day = {s: BOOK.for_exchange(exchange_of(s)).day_of(START[s]).label for s in raw_seeds}
    seeds_ = {s: (day[s], float(v)) for s, v in raw_seeds.items()}
    run(steps, stored, seeds_, max_ahead)


def test_a_long_stream_inside_the_session_matches_the_reference():
    """The shape of the benchmark: many ticks per bucket, so nearly all take the fast path."""
    steps = []
    for i in range(3000):
        steps.append((i % 3, "next" if i % 17 else "back", [0, 0.5, 1, 2][i % 4], 1, 3600,
                      1 + (i * 7919) % 8, (i * 31) % 50 - 5, bool(i % 2), [None, 1, 0][i % 3], 60))
        if i % 250 == 249:
            steps.append((0, "states" if i % 500 else "restart", 0, 0, 0, 1, 0, False, None, 60))
    run(steps, ("5s", "1m", "5m", "15m", "1h", "1d"), {}, 300.0)


def test_the_slot_stores_build_the_same_objects_as_the_constructors():
    """The engine fills these dataclasses slot by slot: it must know every field."""
    assert [f.name for f in dataclasses.fields(Candle)] == [
        "time", "open", "high", "low", "close", "volume", "ticks"]
    assert [f.name for f in dataclasses.fields(CandleUpdate)] == ["symbol", "timeframe", "candle", "final"]
    for cls in (Candle, CandleUpdate, Tick):
        assert not hasattr(cls, "__post_init__")
    e = fast.CandleEngine([TF("5s"), TF("1m")], BOOK)
    e.register("DEMO:BTC", "DEMO")
    t0 = START["DEMO:BTC"]
    e.add(Tick("DEMO:BTC", t0, 10.0, None, None, 2.0))
    e.add(Tick("DEMO:BTC", t0 + 6, 11.0, None, None, 3.0))
    assert e.collect() == [
        CandleUpdate("DEMO:BTC", "5s", Candle(int(t0), 10.0, 10.0, 10.0, 10.0, 2.0, 1), True),
        CandleUpdate("DEMO:BTC", "5s", Candle(int(t0) + 5, 11.0, 11.0, 11.0, 11.0, 3.0, 1), False),
        CandleUpdate("DEMO:BTC", "1m", Candle(int(t0) - 30, 10.0, 11.0, 10.0, 11.0, 5.0, 2), False),
    ]


def _both(max_ahead=None, now=None):
    clock = (lambda: now[0]) if now is not None else (lambda: 4_000_000_000.0)
    engines = []
    for cls in (fast.CandleEngine, reference.CandleEngine):
        e = cls([TF(c) for c in ("5s", "1m", "1d")], BOOK, max_ahead=max_ahead, clock=clock)
        for s in REGISTERED:
            e.register(s, exchange_of(s))
        engines.append(e)
    return engines


def _same(engines, ticks):
    verdicts = [[e.add(tk) for tk in ticks] for e in engines]
    assert verdicts[0] == verdicts[1]
    states = [{}, {}]
    assert repr(engines[0].collect(states[0])) == repr(engines[1].collect(states[1]))
    assert json.dumps(states[0], sort_keys=True) == json.dumps(states[1], sort_keys=True)
    return verdicts[0]


def test_a_tick_inside_the_open_bucket_beyond_a_stale_horizon_is_future_on_the_fast_path_too():
    t1 = START["DEMO:BTC"]
    now = [t1 - 299.0]  # the horizon becomes t1 + 1
    verdicts = _same(_both(max_ahead=300.0, now=now),
                     [Tick("DEMO:BTC", t1, 5.0, 10.0, t1), Tick("DEMO:BTC", t1 + 2, 6.0, 11.0, t1 + 2)])
    assert [v and v.value for v in verdicts] == [None, "future"]


def test_a_day_opened_by_a_print_without_volume_starts_its_volume_on_the_fast_path_too():
    t1 = ist(*DAY1, 10, 0, 0)
    t2 = t1 + 86400  # the next day, same time
    s = "NSE:AAA-EQ"
    verdicts = _same(_both(), [
        Tick(s, t1, 5.0, 1000.0, t1), Tick(s, t1 + 1, 5.5, 1500.0, t1 + 1),
        Tick(s, t2, 6.0), Tick(s, t2 + 1, 6.5, 40.0, t2 + 1), Tick(s, t2 + 2, 6.0, 70.0, t2 + 2),
    ])
    assert verdicts == [None] * 5


def test_a_clock_going_back_shuts_the_fast_paths_opened_under_the_later_horizon():
    t1 = START["DEMO:BTC"]
    now = [t1]
    engines = _both(max_ahead=300.0, now=now)
    assert _same(engines, [Tick("DEMO:BTC", t1, 5.0, 10.0, t1)]) == [None]  # horizon t1 + 300
    now[0] = t1 - 1000  # e.g. the wall clock stepped back
    verdicts = _same(engines, [Tick("DEMO:TRADES", t1 + 400, 5.0, None, None, 1.0),  # horizon t1 - 700
                               Tick("DEMO:BTC", t1 + 1, 6.0, 11.0, t1 + 1)])
    assert [v and v.value for v in verdicts] == ["future", "future"]
