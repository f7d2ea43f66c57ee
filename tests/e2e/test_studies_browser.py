"""Studies (issue 11) on the chart page, in headless Chromium against the real server.

The Indicators menu adds a study (an oscillator gets a pane of its own), ``?studies=``
opens the page with them, localStorage keeps them per symbol, the study legend shows the
API's value for the candle under the crosshair, editing a parameter changes the key, a bad
key in the URL is ignored with a visible note, and scroll-back extends the studies. The
values come over HTTP (``/api/candles?studies=``), so these pass with or without the
socket's studies. Timing is in bench/chart_studies.py, not here.

Server, browser and page fixtures: tests/e2e/test_chart_browser.py (embedded mode).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.test_chart_browser import (  # noqa: F401  (fixtures)
    SCREENSHOTS,
    _clean,
    _need_chromium,
    browser,
    page,
    server,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "DEMO:ALPHA"
TF = "1m"


def _open(page, server, query: str = "") -> None:
    page.goto(server.base + f"/chart/{SYMBOL}/?tf={TF}{query}")
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 0")


def _panes(page) -> int:
    return page.evaluate("window.tickchart.chart.panes().length")


def _overlay_value(page, t: int):
    """The first overlay's value at bar ``t`` on the price pane ('missing' without a point)."""
    return page.evaluate("""t => {
        const s = window.tickchart.chart.panes()[0].getSeries()
            .filter(x => x !== window.tickchart.series());
        const d = s[0].data().find(p => p.time === t);
        return d ? (d.value === undefined ? null : d.value) : 'missing';
    }""", t)


def _wait_loaded(page, n: int = 1) -> None:
    page.wait_for_function("n => (window.tickchart.studiesLoaded || 0) >= n", arg=n)


def test_menu_adds_a_study_in_its_own_pane_and_removes_it(server, page):
    _open(page, server)
    assert _panes(page) == 2  # price and volume
    page.click("#indicators-toggle")
    page.click('[data-add-study="rsi"]')
    _wait_loaded(page)
    assert page.evaluate("window.tickchart.studies") == ["rsi:14"]
    assert _panes(page) == 3
    assert "studies=rsi:14" in page.url
    page.click('[data-add-study="ema"]')  # an overlay: no new pane
    _wait_loaded(page, 2)
    assert _panes(page) == 3
    assert page.locator('#study-legend [data-study="ema:20"]').is_visible()
    page.click('[data-remove-study="rsi:14"]')
    page.wait_for_function("window.tickchart.studies.length === 1")
    assert _panes(page) == 2
    assert "studies=ema:20" in page.url
    _clean(page)


def test_url_opens_with_studies_and_localstorage_keeps_them(server, page):
    _open(page, server, "&studies=ema:20,macd,rsi:14")
    _wait_loaded(page)
    assert page.evaluate("window.tickchart.studies") == ["ema:20", "macd:12:26:9", "rsi:14"]
    assert _panes(page) == 4  # price, volume, MACD, RSI
    saved = page.evaluate("localStorage.getItem('tickchart.studies.' + window.tickchart.symbol)")
    assert saved == "ema:20,macd:12:26:9,rsi:14"
    # Without ?studies= the saved ones come back; with it, the URL wins.
    _open(page, server)
    _wait_loaded(page)
    assert page.evaluate("window.tickchart.studies") == ["ema:20", "macd:12:26:9", "rsi:14"]
    _open(page, server, "&studies=sma:5")
    _wait_loaded(page)
    assert page.evaluate("window.tickchart.studies") == ["sma:5"]
    _clean(page)


def test_legend_shows_the_api_value_at_the_crosshair(server, page):
    _open(page, server, "&studies=sma:5,rsi:14")
    _wait_loaded(page)
    times = page.evaluate("window.tickchart.times()")
    body = server.api(f"/api/candles?symbol={SYMBOL}&tf={TF}&from={times[0]}&limit={len(times) + 50}"
                      "&studies=sma:5,rsi:14")
    by_time = {row["time"]: row["value"] for row in body["studies"]["rsi:14"]}
    # Hover the middle of the chart; the legend then shows that candle's values.
    box = page.locator("#chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.3)
    page.wait_for_function("window.tickchart.hoverTime !== null")
    hover = page.evaluate("window.tickchart.hoverTime")
    shown = page.evaluate("window.tickchart.studyValues")
    rsi = next(v for v in shown if v["key"] == "rsi:14")
    assert by_time[hover] is not None
    assert rsi["raw"][0] == pytest.approx(by_time[hover])
    text = page.locator('#study-legend [data-study-value="rsi:14"]').inner_text()
    assert text == f"{by_time[hover]:.2f}"
    # Away from the chart: the newest candle's (the live candle keeps moving, so its value
    # is not compared with a later API answer here).
    page.mouse.move(5, 5)
    page.wait_for_function("window.tickchart.hoverTime === null")
    assert page.evaluate("window.tickchart.studyTime === window.tickchart.lastCandle.time")
    _clean(page)


def test_editing_a_parameter_changes_the_key(server, page):
    _open(page, server, "&studies=ema:20")
    _wait_loaded(page)
    page.click("#indicators-toggle")
    field = page.locator('[data-study="ema:20"] input[data-param="period"]')
    field.fill("50")
    field.dispatch_event("change")
    page.wait_for_function("window.tickchart.studies[0] === 'ema:50'")
    _wait_loaded(page, 2)
    assert "studies=ema:50" in page.url
    assert page.locator('#study-legend [data-study="ema:50"]').inner_text().startswith("EMA 50")
    _clean(page)


def test_bad_url_key_is_ignored_with_a_note(server, page):
    # "bogus" is unknown here; "ema:5000" looks fine here but the server refuses it (400).
    _open(page, server, "&studies=bogus,rsi,ema:5000")
    page.wait_for_function("window.tickchart.studies && window.tickchart.studies.join() === 'rsi:14'")
    _wait_loaded(page)
    note = page.locator("#study-note")
    assert note.is_visible()
    assert "bogus" in note.inner_text() and "ema:5000" in note.inner_text()
    assert _panes(page) == 3
    assert page.locator('#study-legend [data-study="rsi:14"]').is_visible()
    _clean(page, allow=r"400")  # the refused request is logged by the browser


def test_scroll_back_extends_the_studies(server, page):
    page.goto(server.base + "/chart/DEMO:BETA/?tf=5s&studies=ema:20")
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 0")
    _wait_loaded(page)
    first = page.evaluate("window.tickchart.firstTime")
    loaded = page.evaluate("window.tickchart.loadOlder(500)")
    if loaded == 0:
        pytest.skip("no older history to scroll back to")
    new_first = page.evaluate("window.tickchart.firstTime")
    assert new_first < first
    # The oldest shown bars now have studies too (as the API computes them for that page).
    body = server.api(f"/api/candles?symbol=DEMO:BETA&tf=5s&to={first - 1}&limit=500&studies=ema:20")
    expected = {r["time"]: r["value"] for r in body["studies"]["ema:20"]}
    t = body["candles"][-1]["time"]
    page.evaluate("t => window.tickchart.chart.setCrosshairPosition(0, t, window.tickchart.series())", t)
    got = _overlay_value(page, t)
    assert got == pytest.approx(expected[t])
    _clean(page)


def test_screenshot_with_studies(server, page):
    _open(page, server, "&studies=ema:20,bb,rsi:14,macd")
    _wait_loaded(page)
    page.wait_for_timeout(300)
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / "chart-studies.png"
    page.screenshot(path=str(path))
    if os.environ.get("TICKCHART_UPDATE_DOCS_SCREENSHOT") == "1":
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ROOT / "docs" / "img" / "chart-studies.png")
    _clean(page)


def test_timeframe_switch_reloads_the_studies_for_the_new_bars(server, page):
    _open(page, server, "&studies=sma:5")
    _wait_loaded(page)
    page.select_option("#tf-select", "5m")
    page.wait_for_function("window.tickchart.tf === '5m'")
    _wait_loaded(page, 2)
    t = page.evaluate("window.tickchart.studyTime")
    body = server.api(f"/api/candles?symbol={SYMBOL}&tf=5m&to={t}&limit=50&studies=sma:5")
    expected = {r["time"]: r["value"] for r in body["studies"]["sma:5"]}
    times = sorted(expected)
    # A closed 5m candle (the newest still moves): the page's value equals the API's.
    closed = times[-2]
    got = page.evaluate("""t => {
        const s = window.tickchart.chart.panes()[0].getSeries()
            .filter(x => x !== window.tickchart.series());
        const d = s[0].data().find(p => p.time === t);
        return d && d.value !== undefined ? d.value : null;
    }""", closed)
    assert got == pytest.approx(expected[closed])
    assert "studies=sma:5" in page.url and "tf=5m" in page.url
    _clean(page)


def test_live_candles_from_the_socket_carry_the_api_values(server, page):
    """Candles that formed on the page from live ``candle`` frames (with their ``studies``)
    end with the value the API computes from the stored series."""
    page.goto(server.base + "/chart/DEMO:BETA/?tf=5s&studies=ema:20")
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 0")
    _wait_loaded(page)
    start = page.evaluate("window.tickchart.lastCandle.time")
    # Two newer candles: the first of them formed entirely from live frames and is closed.
    page.wait_for_function("t => window.tickchart.lastCandle.time >= t + 10", arg=start, timeout=30_000)
    t = start + 5
    got = _overlay_value(page, t)
    body = None
    for _ in range(40):  # the writer stores it within a flush or two
        body = server.api(f"/api/candles?symbol=DEMO:BETA&tf=5s&from={t}&to={t}&studies=ema:20")
        if body["candles"]:
            break
        page.wait_for_timeout(250)
    assert body and body["candles"], "the closed candle was never stored"
    expected = body["studies"]["ema:20"][0]["value"]
    assert got == pytest.approx(expected, rel=1e-6)
    _clean(page)
