"""Heikin-Ashi (issue 12): market.core.heikin_ashi against an independent calculation, and
a bar's value independent of the window it is computed in (the anchor is fixed)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from market.core.heikin_ashi import fold, heikin_ashi, heikin_ashi_page, step
from market.core.types import Candle


def reference(rows: list[tuple[float, float, float, float]]) -> list[tuple[Fraction, ...]]:
    """HA by the textbook definition in exact rationals, by index, no shared code."""
    out: list[tuple[Fraction, ...]] = []
    for i, (o, h, l, c) in enumerate(rows):
        o_, h_, l_, c_ = map(Fraction, (o, h, l, c))
        ha_close = (o_ + h_ + l_ + c_) / 4
        ha_open = (o_ + c_) / 2 if i == 0 else (out[i - 1][0] + out[i - 1][3]) / 2
        out.append((ha_open, max(h_, ha_open, ha_close), min(l_, ha_open, ha_close), ha_close))
    return out


@st.composite
def bars(draw, min_size=1, max_size=60):
    n = draw(st.integers(min_size, max_size))
    price = st.floats(1, 10_000, allow_nan=False, allow_infinity=False)
    out = []
    for i in range(n):
        o, c, a, b = (draw(price) for _ in range(4))
        out.append(Candle(1_700_000_000 + 60 * i, o, max(o, c, a, b), min(o, c, a, b), c, float(i), i))
    return out


@given(bars())
def test_equals_the_textbook_definition(candles):
    got = list(heikin_ashi(candles))
    want = reference([(b.open, b.high, b.low, b.close) for b in candles])
    for g, w, b in zip(got, want, candles, strict=True):
        assert (g.time, g.volume, g.ticks) == (b.time, b.volume, b.ticks)
        for value, exact in zip((g.open, g.high, g.low, g.close), w):
            assert abs(value - float(exact)) <= 1e-9 * float(exact)
        assert g.low <= min(g.open, g.close) <= max(g.open, g.close) <= g.high


@given(bars(min_size=2), st.data())
def test_two_windows_give_identical_values_for_the_bars_they_share(candles, data):
    """Bit for bit: page [a, b) and page [c, d) with every bar before each as the warm-up."""
    n = len(candles)
    a = data.draw(st.integers(0, n - 1))
    c = data.draw(st.integers(0, n - 1))
    b = data.draw(st.integers(a + 1, n))
    d = data.draw(st.integers(c + 1, n))
    def warm(bars):
        return fold((x.open, x.high, x.low, x.close) for x in bars)

    one = {h.time: h for h in heikin_ashi_page(warm(candles[:a]), candles[a:b])}
    two = {h.time: h for h in heikin_ashi_page(warm(candles[:c]), candles[c:d])}
    whole = {h.time: h for h in heikin_ashi(candles)}
    for t in one.keys() & two.keys():
        assert one[t] == two[t] == whole[t]
    assert len(one) == b - a and len(two) == d - c


def test_the_anchor_is_seeded_from_its_own_open_and_close():
    bar = Candle(0, 10.0, 14.0, 8.0, 12.0, 5.0, 3)
    assert step(None, bar) == Candle(0, 11.0, 14.0, 8.0, 11.0, 5.0, 3)
    nxt = Candle(60, 12.0, 13.0, 11.0, 11.0, 1.0, 1)
    # open (11 + 11) / 2 = 11, close (12 + 13 + 11 + 11) / 4 = 11.75
    assert step(step(None, bar), nxt) == Candle(60, 11.0, 13.0, 11.0, 11.75, 1.0, 1)


def test_an_empty_page_is_empty():
    assert heikin_ashi_page(None, []) == [] and fold([]) is None
    assert list(heikin_ashi([])) == []


@given(bars())
def test_fold_carries_what_the_next_bar_needs(candles):
    last = list(heikin_ashi(candles))[-1]
    assert fold((b.open, b.high, b.low, b.close) for b in candles) == (last.open, last.close)
