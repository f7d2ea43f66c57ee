"""A dependency-free SVG line chart for benchmark figures (README pictures).

Log-scaled y axis, one polyline per series, points labelled; nothing else. Kept tiny on
purpose: benchmarks must run with the project's own requirements.
"""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

Series = tuple[str, str, Sequence[tuple[float, float]]]  # (label, colour, [(x, y), ...])

W, H, LEFT, RIGHT, TOP, BOTTOM = 720, 400, 70, 180, 40, 50


def line_chart(title: str, x_label: str, y_label: str, series: Sequence[Series],
               hline: tuple[float, str] | None = None) -> str:
    xs = sorted({x for _, _, pts in series for x, _ in pts})
    ys = [y for _, _, pts in series for _, y in pts if y > 0]
    lo = 10 ** math.floor(math.log10(min(ys)))
    hi = 10 ** math.ceil(math.log10(max(ys)))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (xs.index(x) / max(1, len(xs) - 1)) * plot_w  # categorical x

    def py(y: float) -> float:
        return TOP + plot_h * (1 - (math.log10(max(y, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="#fff"/>',
           f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>']
    decade = lo
    while decade <= hi:
        y = py(decade)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{decade:g}</text>')
        decade *= 10
    if hline is not None:
        y = py(hline[0])
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#2a2" '
                   'stroke-dasharray="6 4"/>')
        out.append(f'<text x="{LEFT + 4}" y="{y - 4:.1f}" fill="#2a2">{escape(hline[1])}</text>')
    for x in xs:
        out.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{H - 10}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
               f'{escape(y_label)}</text>')
    for i, (label, colour, pts) in enumerate(series):
        pts = sorted(pts)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
            anchor = "end" if x == xs[-1] else "start"
            dx = -6 if x == xs[-1] else 6
            out.append(f'<text x="{px(x) + dx:.1f}" y="{py(y) - 5:.1f}" fill="{colour}" '
                       f'text-anchor="{anchor}">{y:.0f}</text>')
        out.extend(_legend(i, label, colour))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def time_chart(title: str, x_label: str, y_label: str, series: Sequence[Series],
               band: tuple[float, float, str] | None = None, y_range: tuple[float, float] | None = None) -> str:
    """Linear axes for a quantity over time (a soak's RSS): one unlabelled polyline per series,
    ``band`` a shaded ``(low, high, label)`` range (e.g. ±10 % around the start)."""
    xs = [x for _, _, pts in series for x, _ in pts]
    ys = [y for _, _, pts in series for _, y in pts] + ([band[0], band[1]] if band else [])
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    step = 10 ** math.floor(math.log10(max(1e-9, max(ys)) / 2))
    lo, hi = y_range or (0.0, math.ceil(max(ys) * 1.1 / step) * step)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h * (1 - (y - lo) / (hi - lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="#fff"/>',
           f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>']
    for y in _nice_ticks(lo, hi):
        out.append(f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{LEFT + plot_w}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in _nice_ticks(x0, x1):
        out.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{x:g}</text>')
    if band is not None:
        out.append(f'<rect x="{LEFT}" y="{py(band[1]):.1f}" width="{plot_w}" height="{py(band[0]) - py(band[1]):.1f}" '
                   'fill="#2a2" fill-opacity="0.08"/>')
        out.append(f'<text x="{LEFT + 4}" y="{py(band[1]) - 4:.1f}" fill="#2a2">{escape(band[2])}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{H - 10}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
               f'{escape(y_label)}</text>')
    for i, (label, colour, pts) in enumerate(series):
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(pts))
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.extend(_legend(i, label, colour))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice_ticks(lo: float, hi: float, about: int = 5) -> list[float]:
    """Round values from ``lo`` to ``hi``, about ``about`` steps of 1, 2 or 5 x 10^k apart."""
    raw = (hi - lo) / about
    base = 10 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + k * step, 10) for k in range(int((hi - first) / step + 1e-9) + 1)]


def _legend(i: int, label: str, colour: str) -> list[str]:
    """The ``i``-th legend entry, right of the plot: a line of the series' colour, its label."""
    ly = TOP + 10 + i * 20
    return [f'<line x1="{W - RIGHT + 15}" y1="{ly}" x2="{W - RIGHT + 40}" y2="{ly}" stroke="{colour}" '
            'stroke-width="2"/>', f'<text x="{W - RIGHT + 46}" y="{ly + 4}">{escape(label)}</text>']
