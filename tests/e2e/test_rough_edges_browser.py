"""Rough edges a new user hit (issue 12), in headless Chromium against ``runfeed --serve``.

The range buttons differ (or say why not) and show which is active; time-axis labels at
the chart's edges are drawn whole; the legends stay off the price scale; one minus sign;
/pulse/ follows the theme, shows a 24-hour clock and prices to their tick size; the 404
page has the symbol search; a bad ``?tf=`` is noted and the URL corrected.

Uses the server of tests/e2e/test_chart_browser.py (embedded mode, two replayed NSE
sessions then the simulated market, three hours back-filled).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_chart_browser import (
    CHROMIUM, CHROMIUM_ARGS, NSE_SYMBOL, Server, _clean, _new_page, _state, _wait_live, need_chromium,
)

from tests.e2e.test_production_static import production  # noqa: F401 - a fixture

pytestmark = pytest.mark.e2e

MINUS = "\u2212"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    need_chromium()
    srv = Server(tmp_path_factory.mktemp("e2e-rough-edges"))
    try:
        srv.replay_nse()
        srv.start()
        yield srv
    finally:
        srv.stop()
        srv.log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    context, page = _new_page(browser, server)
    try:
        yield page
    finally:
        context.close()


def ranges(page) -> dict[str, tuple[bool, bool]]:
    """{code: (enabled, pressed)} of the range buttons."""
    return {code: (enabled, pressed == "true") for code, enabled, pressed in page.evaluate(
        "[...document.querySelectorAll('[data-range]')].map(b => "
        "[b.dataset.range, !b.disabled, b.getAttribute('aria-pressed')])")}


def visible_span(page) -> float:
    r = page.evaluate("window.tickchart.chart.timeScale().getVisibleRange()")
    return r["to"] - r["from"]


# -- item 2 -----------------------------------------------------------------------------------
def test_range_buttons_that_cannot_show_more_are_disabled_and_the_active_one_is_pressed(server, page):
    # Three hours of simulated history: only 1D can show anything the others would not.
    page.goto(server.base + "/chart/DEMO:ALPHA/?tf=1m")
    _wait_live(page)
    assert ranges(page) == {"1D": (True, False), "5D": (False, False), "1M": (False, False), "All": (False, False)}
    title = page.get_by_role("button", name="Show 5 days").get_attribute("title")
    assert re.fullmatch(r"Only \d+ h of history: 1D shows all of it", title), title
    page.get_by_role("button", name="Show 1 day").click()
    page.wait_for_function("window.tickchart.range === '1D'")
    assert ranges(page)["1D"] == (True, True)

    # Two NSE sessions a day apart: 1D and 5D show different spans; 1M and All no more than 5D.
    page.goto(server.base + f"/chart/{NSE_SYMBOL}/?tf=1m")
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 100")
    assert ranges(page) == {"1D": (True, False), "5D": (True, False), "1M": (False, False), "All": (False, False)}
    page.get_by_role("button", name="Show 1 day").click()
    page.wait_for_function("window.tickchart.range === '1D'")
    page.wait_for_timeout(300)
    one_day = visible_span(page)
    page.get_by_role("button", name="Show 5 days").click()
    page.wait_for_function("window.tickchart.range === '5D'")
    page.wait_for_timeout(300)
    five_days = visible_span(page)
    assert one_day <= 86400 + 600 and five_days > one_day + 3600, (one_day, five_days)
    assert ranges(page) == {"1D": (True, False), "5D": (True, True), "1M": (False, False), "All": (False, False)}
    # Another timeframe: nothing chosen there yet.
    page.get_by_label("Timeframe").select_option("5m")
    page.wait_for_function("(t => t.length > 10 && t[1] - t[0] === 300)(window.tickchart.times())")
    assert not any(pressed for _, pressed in ranges(page).values())
    _clean(page)


# The ink of the time axis's first and last labels against the width their text needs.
EDGE_LABELS_JS = """() => {
  const chart = document.querySelector('#chart');
  const rows = chart.querySelectorAll('table tr');
  const cell = rows[rows.length - 1].querySelectorAll('td')[1];
  const canvas = cell.querySelector('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const w = canvas.width, h = canvas.height;
  const data = ctx.getImageData(0, 0, w, h).data;
  const mid = Math.floor(h / 2) * w * 4;  // the left end of the middle row: background
  const bg = [data[mid], data[mid + 1], data[mid + 2]];
  const ink = [];
  for (let x = 0; x < w; x++) {
    let on = false;
    for (let y = 4; y < h && !on; y++) {
      const i = (y * w + x) * 4;
      on = Math.abs(data[i] - bg[0]) + Math.abs(data[i + 1] - bg[1]) + Math.abs(data[i + 2] - bg[2]) > 120;
    }
    ink.push(on);
  }
  const clusters = [];  // [start, end] of ink, gaps under 7 px (a space) joined
  for (let x = 0; x < w; x++) {
    if (!ink[x]) continue;
    const last = clusters[clusters.length - 1];
    if (last && x - last[1] < 7) last[1] = x; else clusters.push([x, x]);
  }
  const measure = document.createElement('canvas').getContext('2d');
  measure.font = "12px -apple-system, BlinkMacSystemFont, 'Trebuchet MS', Roboto, Ubuntu, sans-serif";
  const labels = [...new Set(window.tickchart.tickLabels)];
  const narrowest = Math.min(...labels.map(l => measure.measureText(l).width));
  return { width: w, clusters, narrowest, labels };
}"""


@pytest.mark.parametrize("tf", ["1d", "4h", "1h"])
def test_time_axis_labels_at_the_edges_are_drawn_whole(server, page, tf):
    page.goto(server.base + f"/chart/DEMO:ALPHA/?tf={tf}")
    _wait_live(page)
    page.wait_for_timeout(500)
    drawn = page.evaluate(EDGE_LABELS_JS)
    assert drawn["clusters"], drawn
    for start, end in (drawn["clusters"][0], drawn["clusters"][-1]):
        assert end - start + 1 >= drawn["narrowest"] - 3, f"a label is cut: {drawn}"
    _clean(page)


def wide_candles(n: int = 120, falling: bool = True) -> list[dict]:
    """Candles with wide prices (a wide price scale), the last one closing lower."""
    t0 = 1_795_000_000 - 1_795_000_000 % 60
    out = []
    for i in range(n):
        base = 1_234_567.0 + 40 * (i % 7)
        out.append({"time": t0 + 60 * i, "open": base, "high": base + 90, "low": base - 90, "close": base + 10,
                    "volume": 1000 + i})
    if falling:
        out[-1].update(open=out[-2]["close"], close=out[-2]["close"] - 120.5, low=out[-2]["close"] - 130)
    return out


@pytest.mark.parametrize("width", [700, 1280])
def test_the_legends_stay_off_the_price_scale_and_above_the_bars(server, browser, width):
    context, page = _new_page(browser, server, viewport={"width": width, "height": 700})
    try:
        page.goto(server.base + "/chart/DEMO:ALPHA/?tf=1m&studies=bb,ema:20,sma:50")
        _wait_live(page)
        page.evaluate("candles => window.tickchart.setCandles(candles)", wide_candles())
        page.wait_for_timeout(800)  # the price scale widens; the legends follow within a frame
        geometry = page.evaluate("""() => {
          const chart = document.querySelector('#chart').getBoundingClientRect();
          const scale = window.tickchart.chart.priceScale('right', 0).width();
          const boxes = ['legend', 'study-legend'].map(id => document.getElementById(id).getBoundingClientRect())
            .filter(r => r.height > 0);
          const series = window.tickchart.series();
          const highs = window.tickchart.times().length ? Math.max(...series.data().map(b => b.high)) : null;
          return { scaleLeft: chart.right - scale, right: Math.max(...boxes.map(b => b.right)),
                   bottom: Math.max(...boxes.map(b => b.bottom)), chartTop: chart.top,
                   highest: chart.top + series.priceToCoordinate(highs) };
        }""")
        assert geometry["right"] <= geometry["scaleLeft"], geometry
        assert geometry["bottom"] < geometry["highest"], geometry
        # One minus sign in the legend: the typographic one, as the price scale's.
        change = page.locator('#legend [data-field="change"]').inner_text()
        assert change.startswith(MINUS) and f"({MINUS}" in change and "-" not in change, change
        assert "-" not in page.locator("#legend").inner_text()
        _clean(page)
    finally:
        context.close()


# -- item 3 -----------------------------------------------------------------------------------
def _wait_pulse(page) -> None:
    page.wait_for_selector(".movers-table tbody tr", timeout=60_000)
    page.wait_for_function("document.getElementById('pulse-updated').textContent !== ''")


def test_pulse_follows_the_light_theme_uses_24_h_and_tick_size_decimals(server, browser):
    # The system's light scheme, as on the chart page.
    context, page = _new_page(browser, server, color_scheme="light", locale="en-US")
    try:
        page.goto(server.base + "/pulse/")
        _wait_pulse(page)
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
        # 24 h, even in a US-English browser (whose own default is 12 h).
        updated = page.locator("#pulse-updated").inner_text()
        assert re.fullmatch(r"updated \d\d:\d\d:\d\d", updated), updated
        for text in page.locator("#stress-list time").all_inner_texts():
            assert re.fullmatch(r"\d\d:\d\d:\d\d", text), text
        # DEMO:ALPHA's tick size is 0.05, DEMO:BETA's 0.1: two decimals, as on their charts.
        for ticker in ("DEMO:ALPHA", "DEMO:BETA", "DEMO:GAMMA"):
            row = page.locator(f".movers-table tbody tr:has(a:text-is('{ticker}'))")
            last = row.locator("td").nth(1).inner_text()
            assert re.fullmatch(r"\d+\.\d\d", last), (ticker, last)
        numbers = page.locator(".pulse-grid td.num").all_inner_texts()
        assert numbers and not [n for n in numbers if "-" in n], numbers
        _clean(page)
    finally:
        context.close()

    # The theme chosen on the chart page, in a dark-scheme browser.
    context, page = _new_page(browser, server, color_scheme="dark")
    try:
        page.goto(server.base + "/chart/DEMO:ALPHA/?tf=1m")
        _wait_live(page)
        page.get_by_role("button", name="Switch to light theme").click()
        page.goto(server.base + "/pulse/")
        _wait_pulse(page)
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
        _clean(page)
    finally:
        context.close()


# -- item 4 -----------------------------------------------------------------------------------
def test_unknown_symbol_is_a_404_page_with_the_search(server, page):
    response = page.goto(server.base + "/chart/NOPE/")
    assert response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "No symbol “NOPE”"
    links = page.locator(".suggestions a").all_inner_texts()
    assert {"DEMO:ALPHA", "DEMO:BETA"} <= set(links), links
    response = page.goto(server.base + "/chart/DEMO:GAMA/")
    assert response.status == 404
    assert "DEMO:GAMMA" in page.locator(".suggestions a").all_inner_texts()
    box = page.get_by_role("combobox", name="Search symbols")
    box.fill("alph")
    page.get_by_role("option").first.wait_for()
    with page.expect_navigation():
        box.press("Enter")
    _wait_live(page)
    assert _state(page)["symbol"] == "DEMO:ALPHA"
    _clean(page, allow=r"status of 404")  # Chromium logs the 404 document itself


def test_a_bad_timeframe_is_noted_and_the_url_corrected(server, page):
    page.goto(server.base + "/chart/DEMO:ALPHA/?tf=7m")
    _wait_live(page)
    note = page.locator("#tf-note")
    assert note.is_visible() and note.inner_text() == "7m is not a timeframe; showing 1m"
    assert _state(page)["tf"] == "1m"
    assert page.url.endswith("/chart/DEMO:ALPHA/?tf=1m"), page.url
    assert page.get_by_label("Timeframe").input_value() == "1m"
    _clean(page)


def test_the_404_page_works_under_the_real_csp_in_production(production, browser):
    """DJANGO_DEBUG=0, collected static files, no ``bypass_csp``: the 404 page's module and
    the search it imports load, and choosing a symbol opens its chart."""
    base, _, _ = production
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        response = page.goto(base + "/chart/DEMO:ALPH/")
        assert response.status == 404
        assert "script-src 'self'" in response.headers["content-security-policy"]
        box = page.get_by_role("combobox", name="Search symbols")
        box.fill("gamma")
        page.get_by_role("option").first.wait_for()
        with page.expect_navigation():
            box.press("Enter")
        assert page.url.endswith("/chart/DEMO:GAMMA/")
        assert [p for p in problems if "status of 404" not in p] == []
    finally:
        context.close()
