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
    # Drawn, and on the server its create answered (a number for an id; in this browser, a string).
    page.wait_for_function("""n => window.tickchart.drawings.length === n + 1 && (window.tickchart.drawingsMode === 'local'
                               || window.tickchart.drawings.every(d => typeof d.id === 'number'))""", arg=count)
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


def _press(page, x: float, y: float) -> None:
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.up()


def _drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    for k in range(1, 9):
        page.mouse.move(start[0] + (end[0] - start[0]) * k / 8, start[1] + (end[1] - start[1]) * k / 8)
    page.mouse.up()


def test_select_drag_anchor_colour_and_delete_are_saved(server, browser, users):
    context, page = _new_page(browser, server)
    try:
        _sign_in(page, server, users[1])
        left, _ = _visible(page)
        mid, ppx = _mid_price(page), _price_per_pixel(page)
        a, b = (left + 10, mid + 30 * ppx), (left + 30, mid - 30 * ppx)
        before = _saved(page)
        d = _draw(page, "trend", [a, b])
        _wait_saved(page, before)
        page.keyboard.press("Escape")  # deselects
        assert page.get_attribute("#draw-bar", "data-selected") == ""
        # Click on the line's middle: selected.
        x, y = _at(page, left + 20, mid)
        _press(page, x, y)
        assert page.get_attribute("#draw-bar", "data-selected") == str(d["id"])
        assert page.locator("#draw-delete").is_enabled()
        # Drag it 5 bars right and 20 px down: both points move by that, and it is saved.
        view_before = page.evaluate("window.tickchart.chart.timeScale().getVisibleLogicalRange()")
        before = _saved(page)
        x2, y2 = _at(page, left + 25, mid - 20 * ppx)
        _drag(page, (x, y), (x2, y2))
        _wait_saved(page, before)
        assert page.evaluate("window.tickchart.chart.timeScale().getVisibleLogicalRange()") == view_before  # no pan
        moved = page.evaluate("window.tickchart.drawings")[-1]
        _check_points(page, moved, [(a[0] + 5, a[1] - 20 * ppx), (b[0] + 5, b[1] - 20 * ppx)])
        assert _server_drawings(page)[-1]["points"] == moved["points"]
        # Drag the second anchor alone.
        before = _saved(page)
        end = (left + 40, mid + 50 * ppx)
        _drag(page, _at(page, b[0] + 5, b[1] - 20 * ppx), _at(page, *end))
        _wait_saved(page, before)
        anchored = page.evaluate("window.tickchart.drawings")[-1]
        assert anchored["points"][0] == moved["points"][0]
        _check_points(page, anchored, [(a[0] + 5, a[1] - 20 * ppx), end])
        # Recolour the selected drawing.
        before = _saved(page)
        page.evaluate("""() => { const c = document.getElementById('draw-color'); c.value = '#e91e63';
                                 c.dispatchEvent(new Event('input', {bubbles: true})); }""")
        _wait_saved(page, before)
        assert _server_drawings(page)[-1]["style"]["color"] == "#e91e63"
        # Delete with the key; then one more by the button.
        before = _saved(page)
        page.keyboard.press("Delete")
        _wait_saved(page, before)
        assert _server_drawings(page) == [] and page.evaluate("window.tickchart.drawings") == []
        _draw(page, "hline", [(left + 5, mid)])
        assert page.get_attribute("#draw-bar", "data-selected") == str(page.evaluate("window.tickchart.drawings[0].id")), \
            page.evaluate("window.tickchart.drawings")
        before = _saved(page)
        page.click("#draw-delete")
        _wait_saved(page, before)
        assert _server_drawings(page) == []
        _clean(page)
    finally:
        context.close()


def test_magnet_snaps_to_the_bars_high_and_low_and_escape_cancels(server, browser, users):
    context, page = _new_page(browser, server)
    try:
        _sign_in(page, server, users[2])
        left, right = _visible(page)
        bars = _bars(page)
        i = max(range(left + 5, left + 40), key=lambda k: bars[k]["high"] - bars[k]["low"])
        ppx = _price_per_pixel(page)
        page.keyboard.press("Alt+M")
        assert page.get_attribute("#draw-bar", "data-magnet") == "on"
        page.keyboard.press("Alt+H")
        assert page.get_attribute("#draw-bar", "data-tool") == "hline"
        page.keyboard.press("Escape")  # cancels the tool
        assert page.get_attribute("#draw-bar", "data-tool") == ""
        assert page.evaluate("window.tickchart.drawings") == []
        high = _draw(page, "hline", [(i, bars[i]["high"] + 3 * ppx)])
        assert high["points"][0]["price"] == bars[i]["high"]
        low = _draw(page, "trend", [(i, bars[i]["low"] - 3 * ppx), (i + 3, bars[i + 3]["high"] + 2 * ppx)])
        assert low["points"][0]["price"] == bars[i]["low"]
        assert low["points"][1]["price"] == bars[i + 3]["high"]
        page.keyboard.press("Alt+M")
        assert page.get_attribute("#draw-bar", "data-magnet") == "off"
        free = _draw(page, "hline", [(i, bars[i]["high"] + 3 * ppx)])
        assert free["points"][0]["price"] == pytest.approx(bars[i]["high"] + 3 * ppx, abs=1.5 * ppx)
        assert free["points"][0]["price"] != bars[i]["high"]
        page.keyboard.press("Alt+T")  # a shortcut starts a tool; Escape mid-way drops its first point
        _press(page, *_at(page, left + 3, bars[left + 3]["close"]))
        page.keyboard.press("Escape")
        assert page.get_attribute("#draw-bar", "data-tool") == ""
        assert len(page.evaluate("window.tickchart.drawings")) == 3
        _clean(page)
    finally:
        context.close()


def _pixels(page, drawing_id) -> list[dict]:
    return page.evaluate("id => window.tickchart.drawingPixels(id)", drawing_id)


def test_survives_a_reload_and_shows_in_place_on_another_timeframe(server, browser, users):
    context, page = _new_page(browser, server)
    try:
        _sign_in(page, server, users[3])
        left, _ = _visible(page)
        mid, ppx = _mid_price(page), _price_per_pixel(page)
        before = _saved(page)
        _draw(page, "rect", [(left + 12, mid + 40 * ppx), (left + 47, mid - 40 * ppx)])
        _wait_saved(page, before)
        d = page.evaluate("window.tickchart.drawings[0]")
        page.reload()
        _ready(page)
        assert page.evaluate("window.tickchart.drawings") == [d]
        # The chart type replaces the price series: the drawing moves to the new one.
        page.click('[data-type="line"]')
        page.wait_for_function("window.tickchart.seriesType === 'line'")
        _freeze(page)
        xy = _pixels(page, d["id"])[0]
        assert xy["y"] == pytest.approx(page.evaluate("p => window.tickchart.series().priceToCoordinate(p)",
                                                      d["points"][0]["price"]), abs=1)
        _press(page, page.locator("#chart").bounding_box()["x"] + xy["x"] + 1,
               page.locator("#chart").bounding_box()["y"] + xy["y"])  # its corner: selected on the line chart
        assert page.get_attribute("#draw-bar", "data-selected") == str(d["id"])
        page.click('[data-type="candles"]')
        # On 5m, each point is inside the 5m bar that holds its time, at its price.
        page.select_option("#tf-select", "5m")
        page.wait_for_function("window.tickchart.tf === '5m' && window.tickchart.times().length > 0 && "
                               "window.tickchart.times()[1] - window.tickchart.times()[0] >= 300")
        _freeze(page)
        times = page.evaluate("window.tickchart.times()")
        for point, xy in zip(d["points"], _pixels(page, d["id"])):
            k = max(j for j, t in enumerate(times) if t <= point["time"])
            assert times[k] <= point["time"] < times[k] + 300
            centre, spacing = page.evaluate("""k => { const ts = window.tickchart.chart.timeScale();
                return [ts.logicalToCoordinate(k), ts.logicalToCoordinate(k + 1) - ts.logicalToCoordinate(k)]; }""", k)
            assert centre - spacing / 2 - 0.5 <= xy["x"] <= centre + spacing / 2 + 0.5, (
                str([xy, centre, spacing, k, len(times), point, times[:3],
                page.evaluate("k => window.tickchart.chart.timeScale().coordinateToLogical(" 
                              "window.tickchart.chart.timeScale().logicalToCoordinate(k) + 5)", k),
                page.evaluate("window.tickchart.series().data().length")]))
            assert xy["y"] == pytest.approx(page.evaluate("p => window.tickchart.series().priceToCoordinate(p)",
                                                          point["price"]), abs=1)
        # Past the last bar: one bar length per bar to the right, on 1m and then on 5m.
        page.select_option("#tf-select", "1m")
        page.wait_for_function("window.tickchart.tf === '1m' && window.tickchart.times()[1] - "
                               "window.tickchart.times()[0] < 300")
        page.evaluate("window.tickchart.chart.timeScale().scrollToPosition(20, false)")
        _freeze(page)
        n = len(page.evaluate("window.tickchart.times()"))
        last = page.evaluate("window.tickchart.times()").pop()
        ray = _draw(page, "hray", [(n - 1 + 10, d["points"][0]["price"])])
        assert 9 * 60 <= ray["points"][0]["time"] - last < 11 * 60 + 60, (ray, last)
        page.select_option("#tf-select", "5m")
        page.wait_for_function("window.tickchart.tf === '5m' && window.tickchart.times()[1] - "
                               "window.tickchart.times()[0] >= 300")
        page.evaluate("window.tickchart.chart.timeScale().scrollToPosition(10, false)")
        _freeze(page)
        times = page.evaluate("window.tickchart.times()")
        want = len(times) - 1.5 + (ray["points"][0]["time"] - times[-1]) / 300
        assert want > len(times) - 1
        x_want = page.evaluate("""l => { const ts = window.tickchart.chart.timeScale(), i = Math.floor(l);
            return ts.logicalToCoordinate(i) + (l - i) * (ts.logicalToCoordinate(i + 1) - ts.logicalToCoordinate(i)); }""", want)
        assert _pixels(page, ray["id"])[0]["x"] == pytest.approx(x_want, abs=1)
        _clean(page)
    finally:
        context.close()


def test_two_tabs_of_one_user_see_each_others_drawings_live(server, browser, users):
    ctx_a, a = _new_page(browser, server)
    ctx_b, b = _new_page(browser, server)
    try:
        _sign_in(a, server, users[4])
        _sign_in(b, server, users[4])
        b.wait_for_function("document.body.dataset.status === 'live'")
        left, _ = _visible(a)
        mid, ppx = _mid_price(a), _price_per_pixel(a)
        d = _draw(a, "hline", [(left + 10, mid)])
        b.wait_for_function("id => window.tickchart.drawings.length === 1 && window.tickchart.drawings[0].id === id",
                            arg=d["id"])
        assert b.evaluate("window.tickchart.drawings[0]") == d
        # Move it in A: B follows.
        x, y = _at(a, left + 20, mid)
        _drag(a, (x, y), (x, y + 30))
        a.wait_for_function("p => window.tickchart.drawings[0].points[0].price !== p", arg=d["points"][0]["price"])
        a.wait_for_timeout(300)
        moved = a.evaluate("window.tickchart.drawings[0]")
        b.wait_for_function("p => window.tickchart.drawings[0].points[0].price === p", arg=moved["points"][0]["price"])
        # Delete in B: A loses it.
        bx, by = _at(b, left + 20, moved["points"][0]["price"])
        _press(b, bx, by)
        assert b.get_attribute("#draw-bar", "data-selected") == str(d["id"])
        b.keyboard.press("Delete")
        a.wait_for_function("window.tickchart.drawings.length === 0")
        _clean(a)
        _clean(b)
    finally:
        ctx_a.close()
        ctx_b.close()


def test_a_visitor_keeps_drawings_in_this_browser(server, page):
    _open(page, server)
    assert page.get_attribute("#draw-bar", "data-mode") == "local"
    assert page.locator("#draw-note").is_visible()
    assert "Sign in" in page.locator("#draw-note").inner_text()
    for button in page.locator("#draw-bar button").all():  # every control has a name and says its key
        assert button.get_attribute("aria-label") and button.get_attribute("title")
    for kind, key in [("hline", "H"), ("hray", "J"), ("trend", "T"), ("ray", "Y"), ("rect", "R"), ("fib", "F"),
                      ("text", "N")]:
        assert f"(Alt+{key})" in page.get_attribute(f'[data-draw-tool="{kind}"]', "title")
        page.keyboard.press(f"Alt+{key}")
        assert page.get_attribute("#draw-bar", "data-tool") == kind
        assert page.get_attribute(f'[data-draw-tool="{kind}"]', "aria-pressed") == "true"
    page.keyboard.press("Escape")
    left, _ = _visible(page)
    mid = _mid_price(page)
    d = _draw(page, "fib", [(left + 5, mid), (left + 15, mid + 40 * _price_per_pixel(page))])
    saved = page.evaluate("JSON.parse(localStorage.getItem('tickchart.drawings.' + window.tickchart.symbol))")
    assert [x["points"] for x in saved] == [d["points"]]
    page.reload()
    _ready(page)
    assert page.evaluate("window.tickchart.drawings") == [d]
    page.keyboard.press("Escape")
    _press(page, *_at(page, left + 10, mid + 20 * _price_per_pixel(page)))  # inside the fib: selects it
    page.keyboard.press("Backspace")
    assert page.evaluate("localStorage.getItem('tickchart.drawings.' + window.tickchart.symbol)") == "[]"
    _clean(page)


def test_screenshot_for_the_readme(server, browser, users):
    context, page = _new_page(browser, server)
    try:
        _sign_in(page, server, users[5])
        page.evaluate("window.tickchart.chart.timeScale().applyOptions({ barSpacing: 9 })")
        page.evaluate("window.tickchart.series().priceScale().applyOptions({ autoScale: true })")
        page.wait_for_timeout(200)
        _freeze(page)
        left, right = _visible(page)
        bars = _bars(page)
        lo = min(b["low"] for b in bars[left:right])
        hi = max(b["high"] for b in bars[left:right])
        span = hi - lo
        page.keyboard.press("Alt+M")
        i_lo = min(range(left + 5, left + 60), key=lambda k: bars[k]["low"])
        i_hi = max(range(i_lo + 5, right - 10), key=lambda k: bars[k]["high"])
        _draw(page, "fib", [(i_lo, bars[i_lo]["low"]), (i_hi, bars[i_hi]["high"])])
        page.keyboard.press("Alt+M")
        _draw(page, "trend", [(left + 3, lo + 0.1 * span), (right - 5, lo + 0.55 * span)])
        _draw(page, "hline", [(left + 10, hi - 0.05 * span)])
        page.keyboard.press("Escape")  # deselect: the colour is then for the next drawings
        page.evaluate("""() => { const c = document.getElementById('draw-color'); c.value = '#ff9800';
                                 c.dispatchEvent(new Event('input', {bubbles: true})); }""")
        _draw(page, "rect", [(right - 40, hi - 0.2 * span), (right - 20, hi - 0.45 * span)])
        page.click('[data-draw-tool="text"]')
        page.fill("#draw-text", "Range to watch")
        page.click('[data-draw-tool="text"]')
        _draw(page, "text", [(right - 40, hi - 0.15 * span)])
        page.keyboard.press("Escape")
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.mouse.move(5, 5)
        page.wait_for_timeout(300)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / "chart-drawings.png"
        page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000
        if os.environ.get("TICKCHART_UPDATE_DOCS_SCREENSHOT") == "1":
            (DOCS / "img").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS / "img" / "chart-drawings.png")
        _clean(page)
    finally:
        context.close()
