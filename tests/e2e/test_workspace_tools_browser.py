"""The chart tools (issue 12) in headless Chromium against the real server: every chart
type renders (Heikin-Ashi with the API's values), compare adds a series on the percent
scale, log scale toggles, session breaks sit at the session starts, go to date scrolls
there, typing `5` Enter switches to 5m, full screen, the CSV export holds the visible
candles and the PNG export is a PNG; on the chart page and on a layout's panes, whose
type, scale and compare symbols are kept in the layout. No console errors; accessible
names on every new control.

Server, browser and page fixtures: tests/e2e/test_chart_browser.py (embedded mode; two
replayed NSE sessions, 19 and 20 Nov 2026, beside the DEMO market).
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.test_chart_browser import (  # noqa: F401  (fixtures)
    NSE_DATES,
    NSE_SYMBOL,
    _clean,
    _need_chromium,
    _screenshot,
    _new_page,
    _wait_live,
    browser,
    page,
    server,
)
from tests.e2e.test_layouts_browser import _ready, _visitor_layout, chart

pytestmark = pytest.mark.e2e

IST = ZoneInfo("Asia/Kolkata")
# lightweight-charts' series type per chart type
SERIES = {"candles": "Candlestick", "hollow": "Candlestick", "bars": "Bar", "heikin_ashi": "Candlestick",
          "line": "Line", "area": "Area", "baseline": "Baseline"}
BUTTONS = {"candles": "Candles", "hollow": "Hollow candles", "bars": "Bars (OHLC)", "heikin_ashi": "Heikin-Ashi",
           "line": "Line", "area": "Area", "baseline": "Baseline"}
PRICE_MODE = {"normal": 0, "log": 1, "percent": 2}  # lightweight-charts' PriceScaleMode


def _frames(page, n: int = 2) -> None:
    page.evaluate("n => new Promise(r => { const f = k => k ? requestAnimationFrame(() => f(k - 1)) : r(); f(n); })", n)


def _mode(page, expr: str = "window.tickchart.chart") -> int:
    return page.evaluate(f"{expr}.priceScale('right', 0).options().mode")


def _nse_ready(page, server, tf: str) -> None:
    page.goto(server.base + f"/chart/{NSE_SYMBOL}/?tf={tf}")
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 0 && window.tickchart.sessionBreaks")


def test_each_chart_type_renders_and_heikin_ashi_values_are_the_apis(server, page):
    page.goto(server.base + "/chart/DEMO:ALPHA/?tf=1m")
    _wait_live(page)
    group = page.get_by_role("group", name="Chart type")
    shots: dict[str, bytes] = {}
    for kind, name in BUTTONS.items():
        group.get_by_role("button", name=name, exact=True).click()
        page.wait_for_function("k => window.tickchart.seriesType === k", arg=kind)
        if kind == "heikin_ashi":
            page.wait_for_function("window.tickchart.haLoads > 0")
        _frames(page)
        got = page.evaluate("""() => { const s = window.tickchart.series();
            return {type: s.seriesType(), n: s.data().length, bars: window.tickchart.candleCount,
                    up: s.options().upColor}; }""")
        assert got["type"] == SERIES[kind] and got["n"] == got["bars"] > 0, (kind, got)
        assert group.get_by_role("button", name=name, exact=True).get_attribute("aria-pressed") == "true"
        if kind == "hollow":
            assert got["up"] == "rgba(0, 0, 0, 0)"  # up bodies are hollow
        if kind == "heikin_ashi":
            # What the series draws equals the API's HA candles (the newest, live bar aside).
            shown = page.evaluate("""() => window.tickchart.series().data().map(d => ({time: d.time,
                open: d.open, high: d.high, low: d.low, close: d.close}))""")
            body = server.api(f"/api/candles?symbol=DEMO:ALPHA&tf=1m&type=heikin_ashi&from={shown[0]['time']}"
                              f"&limit={len(shown) + 5}")
            assert body["type"] == "heikin_ashi"
            api = {c["time"]: c for c in body["candles"]}
            closed = shown[:-1]
            assert len(closed) > 50
            for row in closed:
                want = api[row["time"]]
                assert row == {k: want[k] for k in ("time", "open", "high", "low", "close")}, row
            real = server.api(f"/api/candles?symbol=DEMO:ALPHA&tf=1m&from={shown[0]['time']}&limit=5")["candles"]
            assert real[1]["open"] != shown[1]["open"]  # not the real candles
        shots[kind] = page.locator("#chart").screenshot()
    assert len(set(shots.values())) == len(BUTTONS), "two chart types drew the same picture"
    # The live bar keeps moving under Heikin-Ashi, stepped from the server's values.
    group.get_by_role("button", name="Heikin-Ashi", exact=True).click()
    page.wait_for_function("window.tickchart.seriesType === 'heikin_ashi'")
    before = page.evaluate("JSON.stringify(window.tickchart.series().data().slice(-1)[0])")
    page.wait_for_function("b => JSON.stringify(window.tickchart.series().data().slice(-1)[0]) !== b", arg=before,
                           timeout=15_000)
    last = page.evaluate("""() => { const d = window.tickchart.series().data(); const n = d.length;
        return {prev: d[n - 2], bar: window.tickchart.lastCandle, ha: d[n - 1]}; }""")
    bar, prev, ha = last["bar"], last["prev"], last["ha"]
    if bar["time"] == ha["time"]:
        assert ha["open"] == (prev["open"] + prev["close"]) / 2
        assert ha["close"] == (bar["open"] + bar["high"] + bar["low"] + bar["close"]) / 4
    _clean(page)


def test_compare_adds_a_series_on_percent_scale_and_log_scale_toggles(server, page):
    page.goto(server.base + "/chart/DEMO:ALPHA/?tf=1m")
    _wait_live(page)
    assert _mode(page) == PRICE_MODE["normal"]
    box = page.get_by_label("Compare symbols (comma-separated tickers)")
    box.fill("demo:beta")
    box.press("Enter")
    page.wait_for_function("window.tickchart.compare.length === 1 && window.tickchart.compare[0].points > 0")
    state = page.evaluate("window.tickchart.compare")
    assert state[0]["symbol"] == "DEMO:BETA" and state[0]["error"] is None
    assert page.evaluate("window.tickchart.chart.panes()[0].getSeries().length") == 2
    assert _mode(page) == PRICE_MODE["percent"]
    assert page.get_by_label("Price scale").input_value() == "percent"
    # The compare line's points are DEMO:BETA's closes at the chart's own bar times.
    points = page.evaluate("window.tickchart.chart.panes()[0].getSeries()[1].data()")
    beta = {c["time"]: c["close"] for c in server.api(
        f"/api/candles?symbol=DEMO:BETA&tf=1m&from={points[0]['time']}&limit={len(points) + 5}")["candles"]}
    times = set(page.evaluate("window.tickchart.times()"))
    assert all(p["time"] in times and p["value"] == beta[p["time"]] for p in points[:-1])

    # Live on the page's socket: the line moves with DEMO:BETA's candles, no more reads.
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if "/api/candles" in r.url and "BETA" in r.url else None)
    page.wait_for_function("window.tickchart.compare[0].live === true")
    before = page.evaluate("JSON.stringify(window.tickchart.chart.panes()[0].getSeries()[1].data().slice(-1)[0])")
    page.wait_for_function("""b => JSON.stringify(window.tickchart.chart.panes()[0].getSeries()[1].data()
        .slice(-1)[0]) !== b""", arg=before, timeout=20_000)
    last = page.evaluate("window.tickchart.chart.panes()[0].getSeries()[1].data().slice(-1)[0]")
    assert last["time"] in set(page.evaluate("window.tickchart.times()"))
    assert reads == [], reads

    page.get_by_label("Price scale").select_option("log")
    assert _mode(page) == PRICE_MODE["log"] and page.evaluate("window.tickchart.scale") == "log"
    page.locator("#chart").click()
    page.keyboard.press("Alt+L")  # log off again
    assert _mode(page) == PRICE_MODE["normal"]
    page.keyboard.press("Alt+P")
    assert _mode(page) == PRICE_MODE["percent"]
    box.fill("")
    box.press("Enter")
    page.wait_for_function("window.tickchart.compare.length === 0")
    assert page.evaluate("window.tickchart.chart.panes()[0].getSeries().length") == 1
    # A symbol that is not there says so.
    box.fill("NOPE:NOTHING")
    box.press("Enter")
    page.wait_for_function("window.tickchart.compare.length === 1 && window.tickchart.compare[0].error !== null")
    assert "unknown symbol" in page.evaluate("window.tickchart.compare[0].error")
    _clean(page, allow="404")


def test_session_breaks_are_drawn_at_session_starts(server, page):
    _nse_ready(page, server, "5m")
    bars = server.api(f"/api/candles?symbol={NSE_SYMBOL}&tf=5m&limit=10000")["candles"]
    # The server's sessions: NSE trading days are IST dates, 09:15-15:30.
    from market.conf import market

    session = market().sessions.for_exchange("NSE")
    days = [session.day_of(c["time"]).label for c in bars]
    want = [c["time"] for i, c in enumerate(bars) if i and days[i] != days[i - 1]]
    assert len(want) == len(NSE_DATES) - 1
    for t in want:
        day = session.day_of(t)
        assert day.open <= t < day.close and dt.datetime.fromtimestamp(t, IST).date() in NSE_DATES
    _frames(page)
    state = page.evaluate("({breaks: window.tickchart.sessionBreaks, drawn: window.tickchart.breaksDrawn})")
    assert state["breaks"] == want and state["drawn"] == len(want)
    button = page.get_by_role("button", name="Session breaks")
    assert button.get_attribute("aria-pressed") == "true"
    with_breaks = page.locator("#chart").screenshot()
    button.click()
    _frames(page)
    assert page.evaluate("window.tickchart.sessionBreaks") == [] and button.get_attribute("aria-pressed") == "false"
    assert page.locator("#chart").screenshot() != with_breaks  # the line was on the canvas
    page.locator("#chart").click()
    page.keyboard.press("Alt+B")
    page.wait_for_function("window.tickchart.sessionBreaks.length === 1")
    # None on daily bars: every bar is a session.
    _nse_ready(page, server, "1d")
    assert page.evaluate("window.tickchart.sessionBreaks") == []
    _clean(page)


def test_go_to_date_then_csv_and_png_exports(server, page):
    _nse_ready(page, server, "1m")
    first_day = NSE_DATES[0]
    target = int(dt.datetime(first_day.year, first_day.month, first_day.day, 10, 0, tzinfo=IST).timestamp())
    assert target not in page.evaluate("window.tickchart.visibleTimes()")  # the newest bars are in view
    page.get_by_role("button", name="Go to date").click()
    page.get_by_label("Date to go to (exchange time)").fill(first_day.isoformat())
    page.get_by_label("Time to go to (exchange time)").fill("10:00")
    page.get_by_role("button", name="Go", exact=True).click()
    page.wait_for_function("window.tickchart.wentTo !== undefined")
    _frames(page)
    bars = server.api(f"/api/candles?symbol={NSE_SYMBOL}&tf=1m&to={target}&limit=1")["candles"]
    assert page.evaluate("window.tickchart.wentTo") == bars[-1]["time"]
    visible = page.evaluate("window.tickchart.visibleTimes()")
    assert visible[0] < bars[-1]["time"] < visible[-1]

    # CSV: exactly the candles in view, as the API has them.
    with page.expect_download() as info:
        page.get_by_role("button", name="Export visible candles as CSV").click()
    download = info.value
    assert download.suggested_filename == "NSE-SYM0000-EQ_1m.csv"
    lines = open(download.path()).read().splitlines()
    assert lines[0] == "time,local_time,open,high,low,close,volume"
    api = {c["time"]: c for c in server.api(
        f"/api/candles?symbol={NSE_SYMBOL}&tf=1m&from={visible[0]}&to={visible[-1]}&limit=10000")["candles"]}
    rows = [line.split(",") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == visible == sorted(api)
    for r in rows:
        c = api[int(r[0])]
        assert r[1] == dt.datetime.fromtimestamp(c["time"], IST).strftime("%Y-%m-%d %H:%M:%S")
        assert [float(x) for x in r[2:]] == [c[k] for k in ("open", "high", "low", "close", "volume")]

    # PNG: a real PNG of the chart's size.
    with page.expect_download() as info:
        page.get_by_role("button", name="Export chart as PNG").click()
    data = open(info.value.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    exported = page.evaluate("window.tickchart.exported")
    assert (width, height) == (exported["width"], exported["height"]) and width > 300 and height > 200
    _clean(page)


def test_typing_a_timeframe_and_enter_switches_to_it_and_full_screen(server, page):
    page.goto(server.base + "/chart/DEMO:ALPHA/?tf=1m")
    _wait_live(page)
    page.locator("#chart").click()
    page.keyboard.type("5")
    assert page.get_by_role("status", name="Typed shortcut").inner_text() == "5"
    page.keyboard.press("Enter")
    page.wait_for_function("window.tickchart.tf === '5m' && window.tickchart.candleCount > 0")
    assert page.locator("#tf-select").input_value() == "5m" and page.url.endswith("tf=5m")
    page.keyboard.type("1h")
    page.keyboard.press("Enter")
    page.wait_for_function("window.tickchart.tf === '1h'")
    page.keyboard.type("7")
    _screenshot(page, "chart-tools.png")
    page.keyboard.press("Enter")
    assert "not a timeframe" in page.get_by_role("status", name="Typed shortcut").inner_text()
    assert page.evaluate("window.tickchart.tf") == "1h"

    full = page.get_by_role("button", name="Full screen")
    full.click()
    page.wait_for_function("window.tickchart.fullscreen === true")
    assert full.get_attribute("aria-pressed") == "true"
    assert page.evaluate("document.fullscreenElement === document.querySelector('.chart-wrap') || "
                         "document.querySelector('.chart-wrap').classList.contains('is-fullscreen')")
    _frames(page)
    box = page.locator("#chart").bounding_box()
    assert box["height"] > 600  # the chart took the screen
    page.keyboard.press("Alt+Z")  # the toolbar is under the full-screen chart: its shortcut leaves
    page.wait_for_function("window.tickchart.fullscreen === false")
    assert full.get_attribute("aria-pressed") == "false"
    _clean(page)


def test_layout_panes_have_the_tools_and_keep_type_scale_and_compare(server, browser):
    context, page = _new_page(browser, server)
    try:
        spec = {"grid": 2, "theme": "dark", "charts": [
            chart("DEMO:ALPHA", "1m", type="heikin_ashi", scale="log", compare=[]),
            chart("DEMO:GAMMA", "1m", type="baseline", compare=["DEMO:BETA"], scale="percent")]}
        _visitor_layout(page, server, spec)
        page.wait_for_function("""() => { const p = window.tickchart.panes;
            return p[0].haLoads > 0 && p[1].compare.length === 1 && p[1].compare[0].points > 0; }""")
        panes = page.evaluate("""() => window.tickchart.panes.map(p => ({type: p.seriesType, scale: p.scale,
            compare: p.compare.map(c => c.symbol), series: p.chart.panes()[0].getSeries().length,
            mode: p.chart.priceScale('right', 0).options().mode}))""")
        assert panes == [
            {"type": "heikin_ashi", "scale": "log", "compare": [], "series": 1, "mode": PRICE_MODE["log"]},
            {"type": "baseline", "scale": "percent", "compare": ["DEMO:BETA"], "series": 2,
             "mode": PRICE_MODE["percent"]}]
        for n in (1, 2):
            for name in ("Go to date", "Session breaks", "Full screen", "Export visible candles as CSV",
                         "Export chart as PNG"):
                assert page.get_by_role("button", name=f"{name} of chart {n}").count() == 1
            assert page.get_by_label(f"Price scale of chart {n}").count() == 1
            assert page.get_by_label(f"Compare symbols of chart {n} (comma-separated tickers)").count() == 1
        assert page.get_by_label("Chart type of chart 1").input_value() == "heikin_ashi"

        # Changes through the controls are kept in the layout.
        page.get_by_label("Price scale of chart 1").select_option("percent")
        page.get_by_label("Chart type of chart 1").select_option("bars")
        box = page.get_by_label("Compare symbols of chart 1 (comma-separated tickers)")
        box.fill("DEMO:BETA, DEMO:GAMMA")
        box.press("Enter")
        page.wait_for_function("window.tickchart.panes[0].compare.length === 2")
        kept = json.loads(page.evaluate("localStorage.getItem('tickchart.layout')"))
        assert kept["charts"][0]["type"] == "bars" and kept["charts"][0]["scale"] == "percent"
        assert kept["charts"][0]["compare"] == ["DEMO:BETA", "DEMO:GAMMA"]

        # The keyboard acts on the pane last pointed at: `5` Enter on chart 2.
        page.locator('[data-pane="1"] .pane-chart').click()
        page.keyboard.type("5")
        page.keyboard.press("Enter")
        page.wait_for_function("window.tickchart.panes[1] && window.tickchart.panes[1].tf === '5m' && "
                               "window.tickchart.panes[1].candleCount > 0")
        assert page.evaluate("window.tickchart.panes[0].tf") == "1m"
        _ready(page, 2)
        # The rebuilt pane kept its type, scale and compare symbols, and one set of tools.
        page.wait_for_function("window.tickchart.panes[1].compare.length === 1")
        assert page.evaluate("window.tickchart.panes[1].seriesType") == "baseline"
        assert page.get_by_role("button", name="Go to date of chart 2").count() == 1
        page.reload()
        _ready(page, 2)
        page.wait_for_function("window.tickchart.panes[0].compare.length === 2")
        assert page.evaluate("[window.tickchart.panes[0].seriesType, window.tickchart.panes[0].scale]") == [
            "bars", "percent"]
        _clean(page)
    finally:
        context.close()
