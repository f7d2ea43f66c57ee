"""Chart drawings (issue 12): what a valid drawing is, framework-free.

A drawing is anchored at points ``{"time": epoch seconds UTC (exchange time), "price"}``,
not at bar indexes, so one drawn on 5m shows at the same place on 1h or 1d. ``hline``,
``hray`` and ``text`` take one point; ``trend``, ``ray``, ``rect`` and ``fib`` take two.
The style is ``{"color": "#rrggbb", "width": 1-4, "text": up to 500 characters}``; a
missing key takes its default. Each ``DrawingError`` starts with the field it is about.
"""

from __future__ import annotations

import math
import re
from typing import Any

POINTS = {"hline": 1, "hray": 1, "text": 1, "trend": 2, "ray": 2, "rect": 2, "fib": 2}
KINDS = tuple(POINTS)
FIB_LEVELS = (0.0, 0.236, 0.382, 0.5, 0.618, 0.786, 1.0)
DEFAULT_STYLE: dict[str, Any] = {"color": "#2962ff", "width": 2, "text": ""}
MAX_TEXT = 500
MAX_WIDTH = 4
MAX_PER_SYMBOL = 500  # per user and symbol
MAX_TIME = 9_999_999_999
MAX_PRICE = 1e15
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


class DrawingError(ValueError):
    """A bad drawing; the message names the field (``points[1].time: …``)."""


def parse_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in POINTS:
        raise DrawingError(f"kind: must be one of {', '.join(KINDS)}")
    return kind


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DrawingError(f"{where}: must be a finite number")
    return float(value)


def parse_points(kind: str, points: object) -> list[dict[str, float]]:
    """The points, checked for ``kind``: as many as it takes, each a time and a price."""
    want = POINTS[kind]
    if not isinstance(points, list) or len(points) != want:
        raise DrawingError(f"points: {kind} takes {want} point{'s' if want > 1 else ''} "
                           '[{"time": epoch seconds, "price": number}]')
    out = []
    for i, point in enumerate(points):
        if not isinstance(point, dict) or set(point) != {"time", "price"}:
            raise DrawingError(f'points[{i}]: must be {{"time": epoch seconds, "price": number}}')
        t = _number(point["time"], f"points[{i}].time")
        if not 0 <= t <= MAX_TIME:
            raise DrawingError(f"points[{i}].time: must be epoch seconds between 0 and {MAX_TIME}")
        price = _number(point["price"], f"points[{i}].price")
        if abs(price) > MAX_PRICE:
            raise DrawingError(f"points[{i}].price: out of range")
        out.append({"time": int(t) if t == int(t) else t, "price": price})
    return out


def parse_style(kind: str, style: object, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``style`` over ``base`` (the defaults, or the drawing's current style for a PATCH)."""
    if style is None:
        style = {}
    if not isinstance(style, dict):
        raise DrawingError("style: must be an object {color, width, text}")
    unknown = sorted(set(style) - set(DEFAULT_STYLE))
    if unknown:
        raise DrawingError(f"style.{unknown[0]}: unknown (style takes color, width, text)")
    out = {**DEFAULT_STYLE, **(base or {}), **style}
    if not isinstance(out["color"], str) or not _COLOR.fullmatch(out["color"]):
        raise DrawingError('style.color: must be "#rrggbb"')
    width = out["width"]
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise DrawingError(f"style.width: must be an integer from 1 to {MAX_WIDTH}")
    if not isinstance(out["text"], str) or len(out["text"]) > MAX_TEXT:
        raise DrawingError(f"style.text: must be a string of at most {MAX_TEXT} characters")
    if kind == "text" and not out["text"].strip():
        raise DrawingError("style.text: a text note needs text")
    out["color"] = out["color"].lower()
    return out


# ---------------------------------------------------------------- lines alerts follow (issue 13)

#: The kinds that are a line an alert can compare with (``"right": "drawing:<id>"``).
LINE_KINDS = ("hline", "hray", "trend", "ray")


def line_error(kind: str, points: list[dict[str, float]]) -> str | None:
    """Why a drawing cannot be an alert's line (None: it can)."""
    if kind not in LINE_KINDS:
        return f"a {kind} drawing has no line (alerts follow {', '.join(LINE_KINDS)})"
    if kind in ("trend", "ray") and points[0]["time"] == points[1]["time"]:
        return f"a vertical {kind} has no price at a time"
    return None


def line_price(kind: str, points: list[dict[str, float]], time: float) -> float | None:
    """The price of line drawing ``kind`` at exchange time ``time``; None where it is not
    drawn. ``hline``: its price at any time; ``hray``: its price from its point on;
    ``trend``: linear between its two points, inside their span only; ``ray``: from its
    first point through its second and on beyond it."""
    first = points[0]
    if kind == "hline":
        return first["price"]
    if kind == "hray":
        return first["price"] if time >= first["time"] else None
    if kind not in ("trend", "ray"):
        return None
    second = points[1]
    t0, t1 = first["time"], second["time"]
    if t0 == t1:
        return None
    if kind == "trend" and not min(t0, t1) <= time <= max(t0, t1):
        return None
    if kind == "ray" and (time - t0) * (t1 - t0) < 0:
        return None  # behind its first point
    return first["price"] + (second["price"] - first["price"]) * (time - t0) / (t1 - t0)
