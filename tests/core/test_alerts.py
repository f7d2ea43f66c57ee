"""Alert conditions: parsing and the issue-13 semantics."""

import json

import pytest
from hypothesis import given, strategies as hs

from market.core import studies as st
from market.core.alerts import AlertError, Evaluator, event_id, parse_condition
from market.core.sessions import Session
from market.core.types import Candle

UTC = Session()


def cond(**kw):
    base = dict(alert="7", symbol="DEMO:ALPHA", tf="1m", left="price", op="crosses_above", right=100)
    base.update(kw)
    return parse_condition(**base)


def candles(closes, step=60):
    return [Candle(i * step, c, c + 1, c - 1, c, 10.0 * (i + 1), 1) for i, c in enumerate(closes)]


@pytest.mark.parametrize("kw, msg", [
    (dict(op="bogus"), "op:"), (dict(trigger="x"), "trigger:"), (dict(tf="7m"), "tf:"),
    (dict(left=5), "left:"), (dict(left="nope:3"), "left:"), (dict(left="macd"), "several outputs"),
    (dict(left="macd.foo"), "no output"), (dict(right="price"), "right:"), (dict(right="ema:20"), "price alert"),
    (dict(trigger="once_per_bar_close"), "trigger:"), (dict(op="moves_up_pct", left="close", right="ema"), "percentage"),
    (dict(op="moves_up_pct"), "op:"), (dict(bars=0), "bars:"), (dict(symbol=""), "symbol:"),
    (dict(expires="x"), "expires:"), (dict(right=float("nan")), "finite"), (dict(left=True), "left:"),
])
def test_bad_definitions_name_the_field(kw, msg):
    with pytest.raises(AlertError, match=msg):
        cond(**kw)


def test_keys_are_normalised():
    c = cond(left="MACD:12:26:9.hist", right="ema", op="crosses", trigger="once_per_bar_close")
    assert c.left.key == "macd:12:26:9.hist" and c.left.output == "hist"
    assert c.right.key == "ema:20" and c.right.output == "value"
    assert cond(right="101.5").right.number == 101.5


def test_price_cross_first_tick_only_arms():
    e = Evaluator(cond())
    assert e.tick(1, 105, 0) is None          # first tick arms, even above
    assert e.tick(2, 99, 0) is None
    ev = e.tick(3, 100, 0)                    # >= X fires
    assert ev is not None and ev.id == event_id("7", 3) == "7@3" and ev.value == 100
    assert e.done and e.tick(4, 90, 0) is None and e.tick(5, 120, 0) is None


def test_price_cross_needs_previous_below():
    e = Evaluator(cond(trigger="once_per_bar"))
    for t, p in enumerate([100, 101, 100, 102]):
        assert e.tick(t, p, 0) is None        # never strictly below before
    assert e.tick(10, 99.9, 0) is None
    assert e.tick(11, 100.1, 0).id == "7@11"
    assert e.tick(12, 99, 0) is None
    assert e.tick(13, 101, 0) is None         # same bar: once per bar
    assert e.tick(70, 99, 60) is None
    assert e.tick(71, 101, 60).id == "7@71"   # new bar


def test_crosses_below_and_either():
    e = Evaluator(cond(op="crosses_below", trigger="once_per_bar"))
    out = [e.tick(t, p, t) for t, p in enumerate([101, 100, 99, 101, 100])]
    assert [x.id if x else None for x in out] == [None, "7@1", None, None, "7@4"]  # <= X from > X
    e = Evaluator(cond(op="crosses", trigger="once_per_bar"))
    out = [e.tick(t, p, t) for t, p in enumerate([99, 100, 101, 99, 99])]
    assert [x.id if x else None for x in out] == [None, "7@1", None, "7@3", None]


def test_above_is_a_level_and_fires_on_first_tick():
    e = Evaluator(cond(op="above", trigger="once_per_bar"))
    assert e.tick(1, 101, 0).id == "7@1"
    assert e.tick(2, 102, 0) is None
    assert e.tick(61, 102, 60).id == "7@61"


def test_paused_is_the_callers_and_expiry_stops():
    e = Evaluator(cond(expires=10))
    e.tick(1, 90, 0)
    assert e.tick(10, 110, 0) is None


def test_state_round_trips_through_json():
    c = cond(trigger="once_per_bar")
    a = Evaluator(c)
    a.tick(1, 90, 0)
    b = Evaluator(c, json.loads(json.dumps(a.state)))
    assert b.tick(2, 110, 0).id == a.tick(2, 110, 0).id


@given(hs.lists(hs.floats(90, 110, allow_nan=False), min_size=1, max_size=60))
def test_price_cross_matches_naive(prices):
    e = Evaluator(cond(trigger="once_per_bar", tf="5s"))
    fired = [t for t, p in enumerate(prices) if e.tick(t, p, t)]
    expect = [t for t in range(1, len(prices)) if prices[t - 1] < 100 <= prices[t]]
    assert fired == expect


def test_bar_close_compares_closed_bar_with_previous():
    e = Evaluator(cond(left="close", trigger="once_per_bar_close"))
    bars = candles([98, 99, 101, 102, 99, 100])
    out = [e.bar(bars[: i + 1], session=UTC) for i in range(len(bars))]
    assert [x.id if x else None for x in out] == [None, None, "7@120", None, None, "7@300"]
    assert Evaluator(cond(left="close", trigger="once_per_bar_close")).bar(bars[:3], session=UTC, final=False) is None


def test_study_cross_uses_studies_compute():
    closes = [100 + (i % 7) - (i % 3) * 2 + i * 0.1 for i in range(80)]
    bars = candles(closes)
    c = cond(left="close", op="crosses", right="ema:5", trigger="once_per_bar_close")
    e = Evaluator(c)
    fired = [bars[i].time for i in range(len(bars)) if e.bar(bars[: i + 1], session=UTC)]
    ema = [r["value"] for r in st.compute([st.parse_study("ema:5")], bars, tf=c.tf, session=UTC)["ema:5"]]
    expect = [bars[i].time for i in range(1, len(bars)) if ema[i - 1] is not None and (
        (closes[i - 1] < ema[i - 1] and closes[i] >= ema[i]) or (closes[i - 1] > ema[i - 1] and closes[i] <= ema[i]))]
    assert fired == expect and fired


def test_macd_hist_output():
    bars = candles([100 + (i % 11) * 1.5 for i in range(120)])
    e = Evaluator(cond(left="macd.hist", op="crosses_above", right=0, trigger="once_per_bar_close"))
    fired = [i for i in range(len(bars)) if e.bar(bars[: i + 1], session=UTC)]
    h = [r["hist"] for r in st.compute([st.parse_study("macd")], bars, tf=e.condition.tf, session=UTC)["macd:12:26:9"]]
    assert fired == [i for i in range(1, len(h)) if h[i - 1] is not None and h[i - 1] < 0 <= h[i]]


def test_moves_pct_over_n_bars():
    bars = candles([100, 101, 103, 104, 100])
    e = Evaluator(cond(left="close", op="moves_up_pct", right=3, bars=2, trigger="once_per_bar_close"))
    out = [e.bar(bars[: i + 1], session=UTC) for i in range(len(bars))]
    assert [x.id if x else None for x in out] == [None, None, "7@120", None, None]  # 104/101 is 2.97 %
    e = Evaluator(cond(left="close", op="moves_down_pct", right=3, bars=1, trigger="once"))
    out = [e.bar(bars[: i + 1], session=UTC) for i in range(len(bars))]
    assert [x.id if x else None for x in out] == [None, None, None, None, "7@240"]


def test_once_per_bar_on_live_bar():
    e = Evaluator(cond(left="close", op="above", right=100, trigger="once_per_bar"))
    b = candles([99, 101])
    assert e.bar(b, session=UTC, final=False).id == "7@60"
    assert e.bar(b, session=UTC, final=False) is None
