"""The candle engine against the contract, one test (or a few) per contract line a–k."""

from __future__ import annotations

import pytest

from market.vendors.fyers import messages as fyers_messages
from market.core.derive import aggregate
from market.core.engine import CandleEngine
from market.core.timeframes import BASE
from market.core.types import Candle, Reject, Tick

from tests.core.helpers import (
    BOOK, C, CRYPTO, DAY1, DAY2, EQ, IDX, NSE, RTC, STORED, TF, eq, ist, ix, latest,
    make_engine, series, t1, t2, utc,
)


def collect_all(engine, ticks):
    results = [engine.add(t) for t in ticks]
    return results, engine.collect()


# -- a. exchange time, epoch seconds, bucket start ------------------------------------
def test_buckets_by_exchange_time_not_arrival_time():
    now = [t1(12, 0)]  # the wall clock is far past the exchange times
    e = make_engine(max_ahead=300, now=now)
    # Exchange times inside 09:20:05-09:20:10 arrive one by one while the clock advances.
    for k, (t, p) in enumerate([(t1(9, 20, 5), 10), (t1(9, 20, 9.9), 11), (t1(9, 20, 6), 9)]):
        now[0] += 60 * k
        assert e.add(ix(t, p)) is None
    c = e.current(IDX, BASE)
    assert c == C(t1(9, 20, 5), 10, 11, 9, 11, 0, 3)
    assert type(c.time) is int
    assert e.current(IDX, TF("1m")).time == int(t1(9, 20))
    assert e.current(IDX, TF("1d")).time == int(utc(*DAY1))


# -- b. intraday anchoring at the session open --------------------------------------
def _nse_full_day_engine():
    e = make_engine()
    ticks = []
    t, k = t1(9, 15), 0
    while t < t1(15, 30):
        ticks.append(ix(t, 100 + (k % 7)))
        t += 97  # does not divide any bucket, so every bucket sees varying ticks
        k += 1
    ticks.append(ix(t1(15, 29, 59), 50))
    for tick in ticks:
        assert e.add(tick) is None
    ups = e.collect()
    return e, ticks, ups


def _direct(ticks, tf, session):
    """Straight from the ticks (ascending exchange time), no engine."""
    out: dict[int, list] = {}
    for tk in ticks:
        day = session.day_of(tk.time)
        if not day.contains(tk.time):
            continue
        out.setdefault(day.bucket_start(tf, tk.time), []).append(tk)
    candles = []
    for start in sorted(out):
        ts = sorted(out[start], key=lambda x: x.time)  # stable: arrival breaks ties
        ps = [x.price for x in ts]
        candles.append(Candle(start, ps[0], max(ps), min(ps), ps[-1], 0.0, len(ps)))
    return candles


def test_nse_stored_intraday_buckets_anchor_at_0915():
    e, ticks, ups = _nse_full_day_engine()
    one_h = series(ups, IDX, "1h")
    assert [c.time for c in one_h] == [int(t1(h, 15)) for h in range(9, 16)]  # ... 14:15, 15:15
    assert [c.time for c in series(ups, IDX, "15m")][:3] == [int(t1(9, 15)), int(t1(9, 30)), int(t1(9, 45))]
    assert series(ups, IDX, "15m")[-1].time == int(t1(15, 15))
    for code in ("5s", "1m", "5m", "15m", "1h", "1d"):
        assert series(ups, IDX, code) == _direct(ticks, TF(code), NSE), code


def test_nse_1h_last_bar_is_the_1515_stub_ending_at_close():
    e, ticks, ups = _nse_full_day_engine()
    stub = series(ups, IDX, "1h")[-1]
    assert stub.time == int(t1(15, 15))
    in_stub = [tk for tk in ticks if t1(15, 15) <= tk.time < t1(15, 30)]
    assert stub.ticks == len(in_stub)
    assert stub.close == 50  # the 15:29:59 tick is the last one of the day


def test_nse_derived_30m_2h_4h_anchor_at_0915_and_equal_direct_aggregation():
    e, ticks, ups = _nse_full_day_engine()
    expected_starts = {
        "30m": [t1(9, 15) + 1800 * k for k in range(13)],  # ... 15:15 stub
        "2h": [t1(9, 15), t1(11, 15), t1(13, 15), t1(15, 15)],
        "4h": [t1(9, 15), t1(13, 15)],
    }
    sources = {"30m": ("5s", "1m", "5m", "15m"), "2h": ("5s", "1m", "5m", "15m", "1h"),
               "4h": ("5s", "1m", "5m", "15m", "1h")}
    for target, bases in sources.items():
        direct = _direct(ticks, TF(target), NSE)
        assert [c.time for c in direct] == [int(s) for s in expected_starts[target]]
        for base in bases:
            derived = list(aggregate(series(ups, IDX, base), TF(target), NSE))
            assert derived == direct, (target, base)


def test_round_the_clock_buckets_anchor_at_midnight_utc():
    e = make_engine()
    t = utc(*DAY1, 5, 7, 3)
    assert e.add(Tick(CRYPTO, t, 10.0, 100.0, t)) is None
    assert e.current(CRYPTO, TF("1h")).time == int(utc(*DAY1, 5))
    assert e.current(CRYPTO, TF("15m")).time == int(utc(*DAY1, 5, 0))
    assert e.current(CRYPTO, TF("5m")).time == int(utc(*DAY1, 5, 5))
    ups = e.collect()
    four_h = list(aggregate(series(ups, CRYPTO, "1h"), TF("4h"), RTC))
    assert four_h[0].time == int(utc(*DAY1, 4))


# -- c. daily candle time ------------------------------------------------------------
def test_daily_candle_time_is_midnight_utc_of_the_exchange_local_trading_date():
    e = make_engine()
    e.add(ix(t1(9, 15), 10))  # 03:45 UTC on the same date
    assert e.current(IDX, TF("1d")).time == int(utc(*DAY1))
    e.add(ix(t2(9, 30), 11))
    assert e.current(IDX, TF("1d")).time == int(utc(*DAY2))
    ups = e.collect()
    days = [u for u in ups if u.timeframe == "1d"]
    assert [(u.candle.time, u.final) for u in days] == [(int(utc(*DAY1)), True), (int(utc(*DAY2)), False)]


# -- d. out of session -----------------------------------------------------------------
def test_ticks_outside_the_session_are_not_aggregated_and_are_counted():
    e = make_engine()
    assert e.add(ix(t1(9, 14, 59), 10)) is Reject.OUT_OF_SESSION  # pre-open
    assert e.add(ix(t1(9, 15), 11)) is None                       # the open is in session
    assert e.add(ix(t1(15, 29, 59), 12)) is None                  # last second is in
    assert e.add(ix(t1(15, 30), 13)) is Reject.OUT_OF_SESSION      # [open, close)
    assert e.add(ix(t1(20, 0), 14)) is Reject.OUT_OF_SESSION       # evening, same date
    assert e.add(ix(t2(2, 0), 15)) is Reject.OUT_OF_SESSION        # next date, before open
    assert e.rejected == {"out_of_session": 4}
    assert e.accepted == 2
    ups = e.collect()
    assert series(ups, IDX, "1d") == [C(utc(*DAY1), 11, 12, 11, 12, 0, 2)]
    assert {c.close for c in latest(ups).values()} <= {11.0, 12.0}


def test_pre_open_tick_arriving_after_the_open_counts_as_out_of_session_not_late():
    e = make_engine()
    assert e.add(ix(t1(9, 20), 11)) is None
    assert e.add(ix(t1(9, 14, 59), 10)) is Reject.OUT_OF_SESSION  # both late and pre-open
    assert e.add(ix(t1(9, 19, 0), 10)) is Reject.LATE
    assert e.rejected == {"out_of_session": 1, "late": 1}


def test_round_the_clock_exchange_has_no_out_of_session_ticks():
    e = make_engine()
    for t in (utc(*DAY1, 0, 0), utc(*DAY1, 23, 59, 59), utc(*DAY2, 0, 0)):
        assert e.add(Tick(CRYPTO, t, 5.0)) is None
    assert e.rejected == {}


# -- e. late and future ------------------------------------------------------------------
def test_late_tick_before_open_5s_bucket_is_dropped_and_counted():
    e = make_engine()
    assert e.add(ix(t1(10, 0, 7), 100)) is None
    assert e.add(ix(t1(10, 0, 12), 101)) is None     # opens 10:00:10, closes 10:00:05
    assert e.add(ix(t1(10, 0, 9), 999)) is Reject.LATE
    assert e.add(ix(t1(9, 59, 0), 999)) is Reject.LATE
    assert e.rejected == {"late": 2}
    ups = e.collect()
    closed = [u for u in ups if u.timeframe == "5s" and u.final]
    assert [u.candle for u in closed] == [C(t1(10, 0, 5), 100, 100, 100, 100, 0, 1)]
    assert all(c.high < 999 for c in latest(ups).values())  # never reopened, never merged


def test_tick_older_than_last_tick_but_inside_the_open_5s_bucket_is_accepted():
    e = make_engine()
    assert e.add(ix(t1(10, 0, 9), 100)) is None
    assert e.add(ix(t1(10, 0, 5), 90)) is None
    assert e.current(IDX, BASE) == C(t1(10, 0, 5), 90, 100, 90, 100, 0, 2)


def test_tick_more_than_max_ahead_of_the_wall_clock_is_rejected_as_future():
    now = [t1(10, 0)]
    e = make_engine(max_ahead=300, now=now)
    assert e.add(ix(now[0] + 300, 10)) is None          # exactly 5 minutes ahead: allowed
    assert e.add(ix(now[0] + 300.5, 11)) is Reject.FUTURE
    assert e.add(ix(now[0] + 3600, 12)) is Reject.FUTURE
    assert e.rejected == {"future": 2}
    now[0] += 3600
    assert e.add(ix(t1(11, 0), 12)) is None             # fine once the clock caught up


def test_without_max_ahead_future_ticks_are_not_rejected():
    e = make_engine()  # replay/back-fill sources
    assert e.add(ix(t1(10, 0), 10)) is None
    assert e.rejected == {}


# -- f. ordering inside a bucket -----------------------------------------------------------
def test_open_and_close_follow_exchange_time_then_arrival_inside_a_bucket():
    e = make_engine()
    ticks = [
        ix(t1(10, 0, 7), 50),    # arrives first, but not the earliest
        ix(t1(10, 0, 6), 40),    # earliest exchange time -> open
        ix(t1(10, 0, 6), 41),    # same time, later arrival: not the open
        ix(t1(10, 0, 9), 70),    # latest exchange time ...
        ix(t1(10, 0, 9), 65),    # ... same time, later arrival -> close
        ix(t1(10, 0, 8), 99),    # high, arrives last but not the close
        ix(t1(10, 0, 8), 30),    # low
    ]
    for tk in ticks:
        assert e.add(tk) is None
    assert e.current(IDX, BASE) == C(t1(10, 0, 5), 40, 99, 30, 65, 0, 7)
    assert e.current(IDX, TF("1m")) == C(t1(10, 0), 40, 99, 30, 65, 0, 7)


# -- g. volume ------------------------------------------------------------------------------
def test_volume_is_the_sum_of_rises_of_the_cumulative_day_volume():
    e = make_engine()
    assert e.add(eq(t1(10, 0, 1), 10, 5000)) is None   # baseline: adds 0
    assert e.add(eq(t1(10, 0, 2), 10, 5100)) is None   # +100
    assert e.add(eq(t1(10, 0, 3), 11, 5100, ltt=t1(10, 0, 3))) is None  # +0
    assert e.add(eq(t1(10, 0, 6), 11, 5350)) is None   # +250, next 5 s bucket
    assert e.add(eq(t1(10, 1, 0), 12, 5400)) is None   # +50, next minute
    ups = e.collect()
    assert [c.volume for c in series(ups, EQ, "5s")] == [100, 250, 50]
    assert [c.volume for c in series(ups, EQ, "1m")] == [350, 50]
    assert series(ups, EQ, "1d")[0].volume == 400


def test_cumulative_volume_below_the_running_maximum_adds_zero_and_keeps_the_maximum():
    e = make_engine()
    e.add(eq(t1(10, 0, 1), 10, 1000))
    e.add(eq(t1(10, 0, 2), 10, 1200))   # +200
    e.add(eq(t1(10, 0, 3), 10, 900))    # backwards: +0, max stays 1200
    e.add(eq(t1(10, 0, 4), 10, 1100))   # still below 1200: +0
    e.add(eq(t1(10, 0, 6), 10, 1250))   # +50 over 1200
    ups = e.collect()
    assert [c.volume for c in series(ups, EQ, "5s")] == [200, 50]
    assert [c.ticks for c in series(ups, EQ, "5s")] == [4, 1]


def test_volume_baseline_is_the_stored_day_volume_after_resume():
    e = make_engine()
    stored = C(t1(10, 0, 0), 10, 10, 10, 10, 30, 1)
    e.resume(EQ, {BASE: stored}, day_volume=(int(utc(*DAY1)), 4000))
    assert e.add(eq(t1(10, 0, 6), 10, 4150)) is None   # +150 over the stored 4000
    assert e.current(EQ, BASE).volume == 150
    # a stored volume of another day is not a baseline: the first tick's value is
    e2 = make_engine()
    e2.resume(EQ, {BASE: stored}, day_volume=(int(utc(2024, 11, 19)), 4000))
    assert e2.add(eq(t1(10, 0, 6), 10, 4150)) is None
    assert e2.current(EQ, BASE).volume == 0


def test_trading_date_change_resets_the_volume_baseline_to_zero():
    e = make_engine()
    e.add(eq(t1(10, 0, 1), 10, 90_000))
    e.add(eq(t1(15, 29, 59), 10, 95_000))
    e.add(eq(t2(9, 15, 1), 10, 1_200))   # new trading date seen live: baseline 0 -> +1200
    e.add(eq(t2(9, 15, 2), 10, 1_300))
    ups = e.collect()
    assert [c.volume for c in series(ups, EQ, "1d")] == [5_000, 1_300]


def test_round_the_clock_volume_resets_at_midnight_utc():
    e = make_engine()
    e.add(Tick(CRYPTO, utc(*DAY1, 23, 59, 58), 10.0, 500.0, None))
    e.add(Tick(CRYPTO, utc(*DAY1, 23, 59, 59), 10.5, 700.0, None))
    e.add(Tick(CRYPTO, utc(*DAY2, 0, 0, 1), 10.0, 40.0, None))
    ups = e.collect()
    assert [c.volume for c in series(ups, CRYPTO, "1d")] == [200, 40]


def test_instruments_without_volume_have_volume_zero():
    e = make_engine()
    for k in range(20):
        e.add(ix(t1(10, 0) + k, 100 + k))
    assert all(c.volume == 0 for c in latest(e.collect()).values())


# -- h. repeats --------------------------------------------------------------------------------
def test_repeated_equity_message_is_not_a_tick():
    e = make_engine()
    assert e.add(eq(t1(10, 0, 1), 10, 500, ltt=t1(10, 0, 1))) is None
    # bid/ask moved, exch_feed_time moved, trade unchanged: the SDK re-sent the state
    assert e.add(eq(t1(10, 0, 3), 10, 500, ltt=t1(10, 0, 1))) is Reject.REPEAT
    assert e.add(eq(t1(10, 0, 9), 10, 500, ltt=t1(10, 0, 1))) is Reject.REPEAT
    # a new trade at the same price and volume is a tick (its last-traded time differs)
    assert e.add(eq(t1(10, 0, 4), 10, 500, ltt=t1(10, 0, 4))) is None
    assert e.rejected == {"repeat": 2}
    assert e.current(EQ, BASE).ticks == 2


def test_repeated_index_message_is_not_a_tick():
    e = make_engine()
    assert e.add(ix(t1(10, 0, 1), 100)) is None
    assert e.add(ix(t1(10, 0, 1), 100)) is Reject.REPEAT
    assert e.add(ix(t1(10, 0, 2), 100)) is None      # same value, new exchange time: a tick
    assert e.add(ix(t1(10, 0, 2), 101)) is None      # same time, new value: a tick
    assert e.current(IDX, BASE).ticks == 3


def test_repeat_compares_with_the_last_accepted_tick_only():
    e = make_engine()
    assert e.add(ix(t1(10, 0, 7), 100)) is None
    assert e.add(ix(t1(10, 0, 12), 101)) is None
    assert e.add(ix(t1(10, 0, 7), 100)) is Reject.LATE   # equal to an older tick: late, not repeat
    assert e.add(ix(t1(10, 0, 13), 100)) is None
    assert e.rejected == {"late": 1}


# -- i. invalid input ----------------------------------------------------------------------
def _pipeline(engine, messages):
    """What a feed does: parse, count the reason of anything that is not a tick, add."""
    counts: dict[str, int] = {}
    for m in messages:
        r = fyers_messages.parse(m)
        if r is None:
            continue
        if isinstance(r, Reject):
            counts[r.value] = counts.get(r.value, 0) + 1
            continue
        if not engine.knows(r.symbol):
            engine.register(r.symbol, fyers_messages.exchange_of(r.symbol))
        engine.add(r)
    for k, v in engine.rejected.items():
        counts[k] = counts.get(k, 0) + v
    return counts


def test_invalid_input_is_rejected_with_a_counted_reason_and_nothing_raises():
    t = int(t1(10, 0, 1))
    good = {"type": "sf", "symbol": EQ, "ltp": 10.5, "vol_traded_today": 100,
            "last_traded_time": t, "exch_feed_time": t}
    bad = [
        None, "sf", 42, ["sf"], {"type": ["sf"]}, {}, {"type": "zz"},          # malformed x7
        {**good, "symbol": None}, {**good, "symbol": ""},                      # no_symbol x2
        {k: v for k, v in good.items() if k != "ltp"}, {**good, "ltp": "10.5"},
        {**good, "ltp": float("nan")}, {**good, "ltp": float("inf")}, {**good, "ltp": 0},
        {**good, "ltp": -1.0}, {**good, "ltp": True},                          # bad_price x7
        {k: v for k, v in good.items() if k != "exch_feed_time"},
        {**good, "exch_feed_time": None}, {**good, "exch_feed_time": t * 1000},
        {**good, "exch_feed_time": float("nan")},                             # no_time x4
        {**good, "vol_traded_today": -2**31}, {**good, "vol_traded_today": "7"},  # bad_volume x2 (-2**31: the SDK's "no value"; other negatives are wrapped day volumes)
        {"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"},  # not data
        {"type": "dp", "symbol": EQ, "bid_price1": 10.0},
    ]
    e = make_engine(symbols=())
    counts = _pipeline(e, bad + [good])
    assert counts == {"malformed": 7, "no_symbol": 2, "bad_price": 7, "no_time": 4, "bad_volume": 2}
    assert e.accepted == 1


def test_engine_counts_unknown_symbols():
    e = make_engine(symbols=(EQ,))
    assert e.add(ix(t1(10, 0), 5, symbol="NSE:OTHER-EQ")) is Reject.UNKNOWN_SYMBOL
    assert e.rejected == {"unknown_symbol": 1}


# -- j. no filler --------------------------------------------------------------------------
def test_no_ticks_no_candle_no_flat_filler_bars():
    e = make_engine()
    e.add(ix(t1(10, 0, 1), 10))
    e.add(ix(t1(10, 7, 31), 11))   # 7.5 minutes of silence
    e.add(ix(t2(10, 0, 0), 12))    # and a night
    ups = e.collect()
    assert [c.time for c in series(ups, IDX, "5s")] == [int(t1(10, 0)), int(t1(10, 7, 30)), int(t2(10, 0))]
    assert [c.time for c in series(ups, IDX, "1m")] == [int(t1(10, 0)), int(t1(10, 7)), int(t2(10, 0))]
    assert [c.time for c in series(ups, IDX, "5m")] == [int(t1(10, 0)), int(t1(10, 5)), int(t2(10, 0))]
    assert all(c.ticks > 0 for c in latest(ups).values())
    # derived timeframes have no filler either (2m buckets: 09:59, 10:07 after the 09:15 open)
    two_m = list(aggregate(series(ups, IDX, "1m"), TF("2m"), NSE))
    assert [c.time for c in two_m] == [int(t1(9, 59)), int(t1(10, 7)), int(t2(9, 59))]


# -- k. tick counts ----------------------------------------------------------------------
def test_each_candle_carries_the_number_of_accepted_ticks():
    e = make_engine()
    e.add(ix(t1(10, 0, 1), 10))
    e.add(ix(t1(10, 0, 1), 10))        # repeat: not counted
    e.add(ix(t1(10, 0, 2), 11))
    e.add(ix(t1(10, 0, 6), 12))
    e.add(ix(t1(10, 0, 3), 13))        # late: not counted
    e.add(ix(t1(10, 1, 0), 14))
    ups = e.collect()
    assert [c.ticks for c in series(ups, IDX, "5s")] == [2, 1, 1]
    assert [c.ticks for c in series(ups, IDX, "1m")] == [3, 1]
    assert series(ups, IDX, "1d")[0].ticks == 4


# -- collect semantics -------------------------------------------------------------------
def test_collect_flags_closed_candles_final_once_and_reports_open_ones():
    e = make_engine()
    e.add(ix(t1(10, 2, 1), 10))
    first = e.collect()
    assert {(u.timeframe, u.final) for u in first} == {(tf.code, False) for tf in STORED}
    assert e.collect() == []                      # nothing changed
    e.add(ix(t1(10, 3, 1), 11))
    second = e.collect()
    finals = {(u.timeframe, u.candle.time) for u in second if u.final}
    assert finals == {("5s", int(t1(10, 2))), ("1m", int(t1(10, 2)))}
    opens = {(u.timeframe, u.candle.time) for u in second if not u.final}
    assert opens == {("5s", int(t1(10, 3))), ("1m", int(t1(10, 3))), ("5m", int(t1(10, 0))),
                     ("15m", int(t1(10, 0))), ("1h", int(t1(9, 15))), ("1d", int(utc(*DAY1)))}


def test_current_rejects_timeframes_the_engine_does_not_store():
    e = make_engine()
    with pytest.raises(ValueError):
        e.current(IDX, TF("2m"))
    assert e.current("NSE:UNKNOWN-EQ", BASE) is None
    with pytest.raises(ValueError):
        CandleEngine([TF("1m")], BOOK)


# -- resume ----------------------------------------------------------------------------------
def test_resume_treats_the_newest_stored_5s_candle_as_closed():
    e = make_engine()
    stored5 = C(t1(10, 0, 5), 10, 12, 9, 11, 0, 4)
    e.resume(IDX, {BASE: stored5})
    assert e.add(ix(t1(10, 0, 9), 50)) is Reject.LATE       # inside the stored 5 s candle
    assert e.add(ix(t1(10, 0, 4), 50)) is Reject.LATE
    assert e.add(ix(t1(10, 0, 10), 13)) is None
    assert e.current(IDX, BASE) == C(t1(10, 0, 10), 13, 13, 13, 13, 0, 1)
    ups = e.collect()
    assert all(u.candle.time != int(t1(10, 0, 5)) for u in ups if u.timeframe == "5s")


def test_resume_continues_larger_open_candles_from_their_stored_state():
    e = make_engine()
    last = {
        BASE: C(t1(10, 2, 5), 10, 12, 9, 11, 30, 4),
        TF("1m"): C(t1(10, 2), 8, 15, 7, 11, 100, 9),
        TF("5m"): C(t1(10, 0), 5, 15, 4, 11, 900, 30),
        TF("15m"): C(t1(9, 45), 5, 20, 4, 11, 2000, 80),        # 09:45-10:00: already closed
        TF("1h"): C(t1(9, 15), 1, 20, 1, 11, 5000, 200),
        TF("1d"): C(utc(*DAY1), 1, 20, 1, 11, 5000, 200),
    }
    e.resume(EQ, last, day_volume=(int(utc(*DAY1)), 5000))
    assert e.add(eq(t1(10, 2, 20), 16, 5040)) is None
    assert e.current(EQ, TF("1m")) == C(t1(10, 2), 8, 16, 7, 16, 140, 10)
    assert e.current(EQ, TF("5m")) == C(t1(10, 0), 5, 16, 4, 16, 940, 31)
    assert e.current(EQ, TF("15m")) == C(t1(10, 0), 16, 16, 16, 16, 40, 1)  # a new bucket
    assert e.current(EQ, TF("1h")) == C(t1(9, 15), 1, 20, 1, 16, 5040, 201)
    assert e.current(EQ, TF("1d")) == C(utc(*DAY1), 1, 20, 1, 16, 5040, 201)
    # crossing the minute closes the continued 1m candle with the stored part included
    assert e.add(eq(t1(10, 3, 0), 6, 5050)) is None
    finals = {u.timeframe: u.candle for u in e.collect() if u.final}
    assert finals["1m"] == C(t1(10, 2), 8, 16, 7, 16, 140, 10)
    assert "15m" not in finals  # the stale stored 09:45 candle is not re-emitted
    assert e.current(EQ, TF("5m")) == C(t1(10, 0), 5, 16, 4, 6, 950, 32)


def test_resume_on_a_later_trading_day_starts_fresh_candles():
    e = make_engine()
    last = {BASE: C(t1(15, 29, 55), 10, 10, 10, 10, 0, 1), TF("1d"): C(utc(*DAY1), 1, 20, 1, 10, 0, 99)}
    e.resume(IDX, last)
    assert e.add(ix(t2(9, 15), 7)) is None
    assert e.current(IDX, TF("1d")) == C(utc(*DAY2), 7, 7, 7, 7, 0, 1)
    finals = [u for u in e.collect() if u.final]
    assert all(u.candle.time < int(utc(*DAY2)) for u in finals)
