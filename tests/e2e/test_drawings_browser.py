"""Drawings (issue 12) on the chart page, in headless Chromium against the real server.

Each of the seven tools is drawn with the mouse and its stored points are the time and
price that were under the mouse; a drawing is selected by clicking it, dragged (whole, or
by one anchor), recoloured and deleted, and every change is saved on the server; the
magnet snaps to a bar's high or low; drawings survive a reload and show at the same time
and price on another timeframe; two browser contexts of one user see each other's
drawings live (the ``drawing`` socket frame); a visitor's drawings stay in localStorage.

Server, browser and page fixtures: tests/e2e/test_chart_browser.py (embedded mode). With
TICKCHART_UPDATE_DOCS_SCREENSHOT=1 the screenshot test also writes docs/img/chart-drawings.png.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.e2e.test_chart_browser import (  # noqa: F401  (fixtures)
    DOCS,
    ROOT,
    SCREENSHOTS,
    _clean,
    _need_chromium,
    _new_page,
    browser,
    page,
    server,
)

pytestmark = pytest.mark.e2e

SYMBOL = "DEMO:ALPHA"
TF = "1m"
PASSWORD = "a-long-drawing-password-5521"
USERS = ("drawer1", "drawer2", "drawer3", "drawer4", "drawer5", "drawer6")


@pytest.fixture(scope="module")
def users(server):
    """Users made in the server's database (the same SQLite file), once per module."""
    code = ("from django.contrib.auth import get_user_model\n"
            f"for name in {USERS!r}: get_user_model().objects.create_user(name, password={PASSWORD!r})\n")
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=server.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return list(USERS)


def _sign_in(page, server, user: str) -> None:
    page.goto(server.base + f"/accounts/login/?next=/chart/{SYMBOL}/%3Ftf%3D{TF}")
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    _ready(page)


def _open(page, server, tf: str = TF) -> None:
    page.goto(server.base + f"/chart/{SYMBOL}/?tf={tf}")
    _ready(page)


def _ready(page) -> None:
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 0 && window.tickchart.drawingsLoaded")
    _freeze(page)


def _freeze(page) -> None:
    """Keep the view still while the feed runs: new bars do not shift it, new prices do not rescale it."""
    page.evaluate("""() => {
        const t = window.tickchart;
        t.chart.timeScale().applyOptions({ shiftVisibleRangeOnNewBar: false });
        t.series().priceScale().applyOptions({ autoScale: false });
    }""")
    page.wait_for_timeout(100)


def _bars(page) -> list[dict]:
    return page.evaluate("window.tickchart.chart ? window.tickchart.series().data().map(b => ({time: b.time, "
                         "open: b.open, high: b.high, low: b.low, close: b.close})) : []")


def _at(page, index: int, price: float) -> tuple[float, float]:
    """Page coordinates of bar ``index``'s centre at ``price``."""
    box = page.locator("#chart").bounding_box()
    x, y = page.evaluate("""([i, p]) => [window.tickchart.chart.timeScale().logicalToCoordinate(i),
                                         window.tickchart.series().priceToCoordinate(p)]""", [index, price])
    return box["x"] + x, box["y"] + y


def _price_per_pixel(page) -> float:
    return abs(page.evaluate("(() => { const s = window.tickchart.series(); "
                             "return s.coordinateToPrice(100) - s.coordinateToPrice(101); })()"))


def _visible(page) -> tuple[int, int]:
    r = page.evaluate("window.tickchart.chart.timeScale().getVisibleLogicalRange()")
    n = len(_bars(page))
    return max(0, int(r["from"]) + 2), min(n - 1, int(r["to"]) - 2)


def _mid_price(page) -> float:
    return page.evaluate("window.tickchart.series().coordinateToPrice(200)")


def _saved(page) -> int:
    return page.evaluate("window.tickchart.drawingsSaved")


def _wait_saved(page, before: int) -> None:
    page.wait_for_function("n => window.tickchart.drawingsSaved > n", arg=before)


def _server_drawings(page) -> list[dict]:
    return page.evaluate("""s => fetch('/api/drawings?symbol=' + encodeURIComponent(s), {credentials: 'same-origin'})
                            .then(r => r.json()).then(b => b.drawings)""", SYMBOL)


def _draw(page, kind: str, points: list[tuple[int, float]]) -> dict:
    """Draw ``kind`` by clicking at (bar index, price) points; the new drawing as the page lists it."""
    count = len(page.evaluate("window.tickchart.drawings"))
    page.click(f'[data-draw-tool="{kind}"]')
    assert page.get_attribute("#draw-bar", "data-tool") == kind
    for i, price in points:
        x, y = _at(page, i, price)
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.up()
    page.wait_for_function("n => window.tickchart.drawings.length === n + 1", arg=count)
    assert page.get_attribute("#draw-bar", "data-tool") == ""
    return page.evaluate("window.tickchart.drawings")[-1]


def _check_points(page, drawing: dict, points: list[tuple[int, float]]) -> None:
    bars = _bars(page)
    tol = 1.5 * _price_per_pixel(page)
    assert len(drawing["points"]) == len(points)
    for got, (i, price) in zip(drawing["points"], points):
        assert bars[i]["time"] <= got["time"] < bars[i]["time"] + 60, (got, bars[i])
        assert got["price"] == pytest.approx(price, abs=tol)


SHAPES = {  # bar offsets from the left of the view and price offsets (in pixels at 1 px = ppx)
    "hline": [(10, 0)], "hray": [(12, 20)], "text": [(14, -30)],
    "trend": [(5, 40), (25, -40)], "ray": [(8, -60), (20, -80)],
    "rect": [(30, 60), (40, 20)], "fib": [(45, -50), (55, 50)],
}


def test_each_tool_draws_by_mouse_at_the_time_and_price_under_it(server, browser, users):
    context, page = _new_page(browser, server)
    try:
        _sign_in(page, server, users[0])
        assert page.get_attribute("#draw-bar", "data-mode") == "server"
        assert page.locator("#draw-note").is_hidden()
        left, right = _visible(page)
        assert right - left > 60
        mid, ppx = _mid_price(page), _price_per_pixel(page)
        made = {}
        for kind, shape in SHAPES.items():
            points = [(left + di, mid + dp * ppx) for di, dp in shape]
            before = _saved(page)
            if kind == "text":
                page.click('[data-draw-tool="text"]')
                page.fill("#draw-text", "Breakout here")
                page.click('[data-draw-tool="text"]')  # off again: _draw turns it on
            d = _draw(page, kind, points)
            _wait_saved(page, before)
            _check_points(page, d, points)
            made[kind] = d
        stored = {d["kind"]: d for d in _server_drawings(page)}
        assert sorted(stored) == sorted(SHAPES)
        for kind, d in made.items():
            mine = page.evaluate("window.tickchart.drawings").copy()
            assert stored[kind]["points"] == next(x for x in mine if x["kind"] == kind)["points"]
        assert stored["text"]["style"]["text"] == "Breakout here"
        assert all(isinstance(d["id"], int) for d in page.evaluate("window.tickchart.drawings"))
        _clean(page)
    finally:
        context.close()
