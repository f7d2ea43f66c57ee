"""Chart layouts (issue 12): what a valid layout is, framework-free.

A layout is a name and a spec::

    {"grid": 1 | 2 | 4 | 6, "theme": "dark" | "light",
     "charts": [{"symbol", "tf", "type": one of TYPES, "studies": [keys],
                 "drawings_visible": bool, "link_group": "A" | "B" | "C" | null,
                 "scale": "normal" | "log" | "percent", "compare": [tickers]}, ...]}

with exactly ``grid`` charts. ``compare`` are the other symbols overlaid on the chart (on
a percent scale from the first visible bar), at most ``MAX_COMPARE``, distinct and not the
chart's own symbol. ``scale`` and ``compare`` are left out at their defaults (``normal``,
none), so a layout saved before they existed reads back as it was written. Study keys are normalised as the API does (``ema`` ->
``ema:20``). Whether a symbol exists is the edge's question (the database); here it only
has to look like a ticker. Each ``LayoutError`` starts with the field it is about
(``spec.charts[2].tf: …``).
"""

from __future__ import annotations

import re
from typing import Any

from market.core.studies import StudyError, parse_studies
from market.core.timeframes import CODES

GRIDS = (1, 2, 4, 6)
TYPES = ("candles", "hollow", "bars", "heikin_ashi", "line", "area", "baseline")
SCALES = ("normal", "log", "percent")
MAX_COMPARE = 4
THEMES = ("dark", "light")
LINK_GROUPS = ("A", "B", "C")
MAX_NAME = 80
MAX_PER_USER = 100
SPEC_FIELDS = {"grid", "charts", "theme"}
CHART_FIELDS = {"symbol", "tf", "type", "studies", "drawings_visible", "link_group", "scale", "compare"}
_TICKER = re.compile(r"[\x21-\x7e]{1,64}")  # as market.web.validation.is_ticker


class LayoutError(ValueError):
    """A bad layout; the message names the field (``spec.grid: …``)."""


def parse_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise LayoutError("name: must be a non-empty string")
    name = " ".join(name.split())
    if len(name) > MAX_NAME or not name.isprintable():
        raise LayoutError(f"name: at most {MAX_NAME} printable characters")
    return name


def _chart(chart: object, where: str) -> dict[str, Any]:
    if not isinstance(chart, dict):
        raise LayoutError(f"{where}: must be an object {{{', '.join(sorted(CHART_FIELDS))}}}")
    unknown = sorted(set(chart) - CHART_FIELDS)
    if unknown:
        raise LayoutError(f"{where}.{unknown[0]}: unknown field (fields: {', '.join(sorted(CHART_FIELDS))})")
    symbol = chart.get("symbol")
    if not isinstance(symbol, str) or not _TICKER.fullmatch(symbol):
        raise LayoutError(f"{where}.symbol: must be a ticker such as NSE:SBIN-EQ")
    tf = chart.get("tf", "1m")
    if tf not in CODES:
        raise LayoutError(f"{where}.tf: must be one of {' '.join(CODES)}")
    kind = chart.get("type", "candles")
    if kind not in TYPES:
        raise LayoutError(f"{where}.type: must be one of {', '.join(TYPES)}")
    studies = chart.get("studies", [])
    if not isinstance(studies, list) or not all(isinstance(s, str) for s in studies):
        raise LayoutError(f'{where}.studies: must be a list of study keys such as ["ema:20", "rsi:14"]')
    try:
        keys = [s.key for s in parse_studies(studies)]
    except StudyError as exc:
        raise LayoutError(f"{where}.studies: {exc}") from None
    visible = chart.get("drawings_visible", True)
    if not isinstance(visible, bool):
        raise LayoutError(f"{where}.drawings_visible: must be true or false")
    group = chart.get("link_group")
    if group is not None and group not in LINK_GROUPS:
        raise LayoutError(f"{where}.link_group: must be null or one of {', '.join(LINK_GROUPS)}")
    scale = chart.get("scale", "normal")
    if scale not in SCALES:
        raise LayoutError(f"{where}.scale: must be one of {', '.join(SCALES)}")
    compare = chart.get("compare", [])
    if not isinstance(compare, list) or not all(isinstance(t, str) and _TICKER.fullmatch(t) for t in compare):
        raise LayoutError(f'{where}.compare: must be a list of tickers such as ["NSE:TCS-EQ"]')
    if len(set(compare)) != len(compare) or symbol in compare:
        raise LayoutError(f"{where}.compare: each symbol once, and not the chart's own ({symbol})")
    if len(compare) > MAX_COMPARE:
        raise LayoutError(f"{where}.compare: at most {MAX_COMPARE} symbols")
    out: dict[str, Any] = {"symbol": symbol, "tf": tf, "type": kind, "studies": keys,
                           "drawings_visible": visible, "link_group": group}
    if scale != "normal":
        out["scale"] = scale
    if compare:
        out["compare"] = compare
    return out


def parse_spec(spec: object) -> dict[str, Any]:
    """The spec, checked and normalised (defaults filled in, study keys in full)."""
    if not isinstance(spec, dict):
        raise LayoutError("spec: must be an object {grid, charts, theme}")
    unknown = sorted(set(spec) - SPEC_FIELDS)
    if unknown:
        raise LayoutError(f"spec.{unknown[0]}: unknown field (fields: charts, grid, theme)")
    grid = spec.get("grid")
    if isinstance(grid, bool) or grid not in GRIDS:
        raise LayoutError(f"spec.grid: must be one of {', '.join(map(str, GRIDS))}")
    charts = spec.get("charts")
    if not isinstance(charts, list) or len(charts) != grid:
        raise LayoutError(f"spec.charts: must be a list of {grid} chart{'s' if grid > 1 else ''} (one per grid cell)")
    theme = spec.get("theme", "dark")
    if theme not in THEMES:
        raise LayoutError(f"spec.theme: must be one of {', '.join(THEMES)}")
    return {"grid": grid, "theme": theme, "charts": [_chart(c, f"spec.charts[{i}]") for i, c in enumerate(charts)]}


def symbols_of(spec: dict[str, Any]) -> list[str]:
    """The distinct tickers a (parsed) spec charts or compares, in order."""
    return list(dict.fromkeys(t for c in spec["charts"] for t in [c["symbol"], *c.get("compare", ())]))
