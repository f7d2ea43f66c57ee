"""Markers a strategy posts onto the chart (issue 16): what a valid one is.

A marker is shown by lightweight-charts' series markers, so its shapes and positions are
that library's. ``time`` is the exchange time of what it marks (epoch seconds); on a
larger timeframe it sits on the bar containing that time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

SHAPES = ("arrowUp", "arrowDown", "circle", "square")
POSITIONS = ("aboveBar", "belowBar", "inBar", "atPriceTop", "atPriceBottom", "atPriceMiddle")
FIELDS = frozenset({"symbol", "time", "price", "shape", "color", "text", "position"})
MAX_TEXT = 80
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_MAX_EPOCH = 10**10


class MarkerError(ValueError):
    """A bad marker; the message names the field."""


@dataclass(frozen=True, slots=True)
class MarkerSpec:
    symbol: str
    time: int
    price: float | None
    shape: str
    color: str
    text: str
    position: str


def default_position(shape: str, price: float | None) -> str:
    """Where a marker sits when the poster did not say: at its price if it has one, else
    an up arrow under the bar and anything else above it."""
    if price is not None:
        return "atPriceMiddle"
    return "belowBar" if shape == "arrowUp" else "aboveBar"


def parse_marker(body: Mapping[str, Any]) -> MarkerSpec:
    """``{symbol, time, price?, shape?, color?, text?, position?}`` checked; MarkerError names
    the first bad field."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise MarkerError(f"unknown field {unknown[0]!r}")
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise MarkerError("symbol: required")
    time = body.get("time")
    if isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time) \
            or not 0 <= time < _MAX_EPOCH:
        raise MarkerError("time: epoch seconds required")
    price = body.get("price")
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))
                              or not math.isfinite(price)):
        raise MarkerError("price: must be a finite number")
    shape = body.get("shape", "circle")
    if shape not in SHAPES:
        raise MarkerError(f"shape: one of {', '.join(SHAPES)}")
    color = body.get("color", "#2962ff")
    if not isinstance(color, str) or not _COLOR.match(color):
        raise MarkerError("color: #rgb or #rrggbb")
    text = body.get("text", "")
    if not isinstance(text, str) or len(text) > MAX_TEXT or not all(ch.isprintable() for ch in text):
        raise MarkerError(f"text: at most {MAX_TEXT} printable characters")
    position = body.get("position")
    if position is None:  # absent or null: the shape's default ({} or 0 is refused, not defaulted)
        position = default_position(shape, price)
    if position not in POSITIONS:
        raise MarkerError(f"position: one of {', '.join(POSITIONS)}")
    if position.startswith("atPrice") and price is None:
        raise MarkerError(f"position: {position} needs a price")
    return MarkerSpec(symbol.strip(), int(time), None if price is None else float(price), shape, color, text, position)
