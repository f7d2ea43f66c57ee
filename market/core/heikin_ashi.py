"""Heikin-Ashi candles (issue 12), computed on the server so every chart shows the same.

HA close = (o + h + l + c) / 4; HA open = (previous HA open + previous HA close) / 2,
seeded at the anchor bar as (o + c) / 2; HA high = max(h, HA open, HA close); HA low =
min(l, HA open, HA close). Volume and ticks are the bar's own.

The anchor is the FIRST STORED BAR of the symbol and timeframe: HA open is a running
average back to it, so a bar's value is fixed by the bars from the anchor up to it, never
by the page a client asked for (``market.selectors.candle_heikin_ashi`` reads that
warm-up). Pruning old history moves the anchor (as it does for OBV and Supertrend).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from market.core.types import Candle


def step(prev: Candle | None, bar: Candle) -> Candle:
    """The HA candle of ``bar`` after the HA candle ``prev`` (None: ``bar`` is the anchor).

    static/market/js/heikin_ashi.js repeats this, in the same order of operations, for the
    live bar, so a live bar equals what this module gives once it is stored."""
    close = (bar.open + bar.high + bar.low + bar.close) / 4
    open_ = (bar.open + bar.close) / 2 if prev is None else (prev.open + prev.close) / 2
    return Candle(bar.time, open_, max(bar.high, open_, close), min(bar.low, open_, close),
                  close, bar.volume, bar.ticks)


def heikin_ashi(bars: Iterable[Candle], prev: Candle | None = None) -> Iterator[Candle]:
    """HA candles of ascending ``bars``; the first is the anchor unless ``prev`` (the HA
    candle before them) is given."""
    for bar in bars:
        prev = step(prev, bar)
        yield prev


def fold(rows: Iterable[tuple[float, float, float, float]]) -> tuple[float, float] | None:
    """(HA open, HA close) after ascending ``(open, high, low, close)`` rows from the anchor
    (None: no rows). Only these two carry on to the next bar, so a warm-up of many stored
    bars is read as plain tuples, with ``step``'s arithmetic in the same order."""
    ha_open: float | None = None
    ha_close = 0.0
    for o, h, l, c in rows:
        ha_open = (o + c) / 2 if ha_open is None else (ha_open + ha_close) / 2
        ha_close = (o + h + l + c) / 4
    return None if ha_open is None else (ha_open, ha_close)


def heikin_ashi_page(warm: tuple[float, float] | None, page: Iterable[Candle]) -> list[Candle]:
    """HA candles of ``page`` (ascending) after ``warm``: ``fold`` of every bar from the
    anchor up to the page (None: the page starts at the anchor)."""
    prev = None if warm is None else Candle(0, warm[0], warm[0], warm[0], warm[1], 0.0, 0)
    return list(heikin_ashi(page, prev))
