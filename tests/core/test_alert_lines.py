"""Drawn-line alerts (issue 13): a line's price at a time, and evaluators that follow it."""

import pytest

from market.core.alerts import AlertError, Evaluator, parse_condition
from market.core.drawings import line_error, line_price
from market.core.sessions import Session
from market.core.types import Candle

TREND = [{"time": 1000, "price": 100.0}, {"time": 2000, "price": 200.0}]


@pytest.mark.parametrize("kind, points, t, want", [
    ("hline", [{"time": 1000, "price": 50.0}], 0, 50.0),
    ("hline", [{"time": 1000, "price": 50.0}], 10**9, 50.0),
    ("hray", [{"time": 1000, "price": 50.0}], 999, None),
    ("hray", [{"time": 1000, "price": 50.0}], 1000, 50.0),
    ("trend", TREND, 1000, 100.0),
    ("trend", TREND, 1250, 125.0),
    ("trend", TREND, 2000, 200.0),
    ("trend", TREND, 999, None),          # a segment: only within its span
    ("trend", TREND, 2001, None),
    ("trend", TREND[::-1], 1500, 150.0),  # drawn right to left: the same segment
    ("ray", TREND, 3000, 300.0),          # a ray goes on beyond its second point
    ("ray", TREND, 999, None),            # but not behind its first
    ("ray", TREND[::-1], 500, 50.0),      # drawn leftwards, it extends to the left
    ("ray", TREND[::-1], 2001, None),
    ("trend", [{"time": 5, "price": 1.0}, {"time": 5, "price": 2.0}], 5, None),  # vertical
])
def test_line_price(kind, points, t, want):
    assert line_price(kind, points, t) == pytest.approx(want) if want is not None else line_price(kind, points, t) is None


@pytest.mark.parametrize("kind", ["text", "rect", "fib"])
def test_tools_without_a_line_are_refused(kind):
    assert "has no line" in line_error(kind, [{"time": 1, "price": 1.0}] * 2)


def test_a_vertical_trend_is_refused_and_lines_are_accepted():
    assert "vertical" in line_error("trend", [{"time": 5, "price": 1.0}, {"time": 5, "price": 2.0}])
    assert line_error("ray", TREND) is None and line_error("hline", TREND[:1]) is None


def cond(**kw):
    base = dict(alert="7", symbol="DEMO:ALPHA", tf="1m", left="price", op="crosses_above", right="drawing:12")
    return parse_condition(**(base | kw))


@pytest.mark.parametrize("kw, msg", [
    (dict(right="drawing:x"), "drawing:<its id>"), (dict(right="drawing:0"), "drawing:<its id>"),
    (dict(left="drawing:3", right=1), "left: a drawing may only be on the right"),
    (dict(left="close", op="moves_up_pct"), "percentage"),
])
def test_bad_drawing_operands(kw, msg):
    with pytest.raises(AlertError, match=msg):
        cond(**kw)


def test_the_key_is_normalised():
    c = cond(right=" Drawing:012 ")
    assert (c.right.kind, c.right.key, c.right.drawing) == ("drawing", "drawing:12", 12)


def test_a_price_alert_crosses_a_sloped_line_at_the_tick_that_reaches_it():
    ev = Evaluator(cond(), {})
    ev.line = ("trend", TREND)  # 100 at t=1000 rising 0.1 a second
    fired = [e.id for t, p in [(1000, 90.0), (1100, 109.0), (1200, 119.9), (1300, 130.0), (1400, 150.0)]
             if (e := ev.tick(t, p, t // 60 * 60))]
    assert fired == ["7@1300"]  # 130 >= 130 at t=1300; below the line before
    # a flat price is crossed by a falling line without the price moving
    down = Evaluator(cond(op="crosses_above"), {})
    down.line = ("trend", [{"time": 0, "price": 110.0}, {"time": 100, "price": 90.0}])
    assert [e.time for t in (0, 40, 50, 60) if (e := down.tick(t, 100.0, t // 60 * 60))] == [50]


def test_outside_the_line_nothing_fires_and_a_moved_line_is_followed():
    ev = Evaluator(cond(), {})
    ev.line = ("trend", TREND)
    assert ev.tick(500, 90.0, 480) is None and ev.tick(600, 500.0, 600) is None  # before the segment
    assert ev.tick(1000, 90.0, 960) is None
    ev.line = ("hline", [{"time": 0, "price": 95.0}])  # moved: now a flat 95
    assert ev.tick(1010, 96.0, 960).other == 95.0


def test_a_bar_alert_compares_each_bar_with_the_line_at_its_time():
    c = cond(left="close", trigger="once_per_bar_close")
    ev = Evaluator(c, {})
    ev.line = ("ray", [{"time": 0, "price": 100.0}, {"time": 60, "price": 101.0}])  # +1 a bar
    closes = [99.0, 100.5, 101.5, 103.5, 103.0]  # line: 100 101 102 103 104
    bars = [Candle(i * 60, x, x, x, x, 1.0, 1) for i, x in enumerate(closes)]
    fired = [e.time for i in range(1, len(bars) + 1) if (e := ev.bar(bars[:i], session=Session()))]
    assert fired == [180]
    assert ev.state["t"] == 240


def test_catch_up_on_a_stored_candle_detects_only_sure_crosses():
    def fresh(op="crosses_above", prev=None):
        ev = Evaluator(cond(op=op, right=100, trigger="once_per_bar"), {} if prev is None else {"prev": prev})
        return ev

    def c(o, h, low, close, t=5):
        return Candle(t, o, h, low, close, 0.0, 3)

    assert fresh(prev=99.0).catch_up(c(99.5, 100.5, 99.0, 99.8), 0).value == 100.5  # from below, high reaches it
    assert fresh(prev=101.0).catch_up(c(101, 102, 99, 100.5), 0) is not None        # dips below, closes back above
    assert fresh(prev=101.0).catch_up(c(101, 102, 99, 99.5), 0) is None             # order unknown: not sure
    assert fresh(prev=101.0).catch_up(c(101, 102, 100.5, 101), 0) is None           # never below
    assert fresh("crosses_below", 101.0).catch_up(c(101, 101, 99.9, 100), 0).value == 99.9
    assert fresh("above", 50.0).catch_up(c(99, 100.1, 99, 99), 0) is not None
    ev = fresh(prev=99.0)
    ev.catch_up(c(99, 101, 99, 101, t=5), 0)
    assert ev.state == {"prev": 101, "t": 5, "fired_bar": 0}
    assert ev.catch_up(c(99, 101, 98, 101, t=10), 0) is None  # once per bar
    # the first candle with no price before it arms from its own open
    assert fresh().catch_up(c(99, 100, 99, 100), 0) is not None
