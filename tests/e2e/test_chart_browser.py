"""The chart page in a real browser against the real server.

Starts ``manage.py runfeed --serve`` (embedded mode: SQLite in a temporary directory, the
in-process channel layer, the simulated feed) after replaying two synthetic NSE sessions
into the same database (``runfeed --source replay``), and drives headless Chromium
through it with Playwright: history renders, the socket goes live and moves the last bar,
timeframe and chart-type switches, search by keyboard, scroll-back, range buttons, the
watchlist, reload, a server restart, IST labels in a browser set to Los Angeles, the
phone layout, and the themes. Every test also asserts that nothing was logged as a
console error and that every request went to the server (no third-party requests).

Needs Debian's ``chromium`` at /usr/bin/chromium (``apt-get install -y chromium``; another
path through TICKCHART_CHROMIUM): skipped without it, failed without it under CI=true.
Screenshots go to tests/e2e/screenshots/ (ignored by git); with
TICKCHART_UPDATE_DOCS_SCREENSHOT=1 they are also copied to docs/ (screenshot.png dark,
screenshot-light.png, screenshot-phone.png).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from tests.servers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
MODULES = ROOT / "static" / "market" / "js"  # the chart page's ES modules (entry: main.js)
DOCS = ROOT / "docs"
CHROMIUM = os.environ.get("TICKCHART_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT = 60.0
LIVE_UPDATE_TIMEOUT_MS = 15_000
IN_CI = os.environ.get("CI", "").lower() == "true"
IST = ZoneInfo("Asia/Kolkata")
NSE_SYMBOL = "NSE:SYM0000-EQ"
NSE_DATES = (dt.date(2026, 11, 19), dt.date(2026, 11, 20))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def need_chromium() -> None:
    """Checked before a server starts: skip on a laptop without Chromium, fail in CI."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module", autouse=True)
def _need_chromium() -> None:
    need_chromium()


class Server:
    """``runfeed --serve`` on a fixed loopback port and database; can be killed and restarted."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.pop("DATABASE_URL", None)
        self.env.pop("REDIS_URL", None)
        self.env.update({
            "TICKCHART_DB_PATH": str(tmp / "db.sqlite3"),
            "TICKCHART_SIM_RATE": "5",
            "DJANGO_DEBUG": "1",
            "PYTHONUNBUFFERED": "1",
        })
        self.log_path = tmp / "server.log"
        self.log = open(self.log_path, "ab")
        self.proc: subprocess.Popen | None = None
        self.tmp = tmp

    def server_log(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def replay_nse(self) -> None:
        """Two NSE sessions (Fyers-shaped messages) into the same database, before serving."""
        from market.vendors.fyers.recording import fyers_session

        path = self.tmp / "nse.jsonl"
        with open(path, "w") as out:
            for seed, date in enumerate(NSE_DATES, start=1):
                for msg in fyers_session(symbols=2, messages=4000, date=date, rate=0.1, indices=0, seed=seed):
                    out.write(json.dumps(msg) + "\n")
        done = subprocess.run(
            [sys.executable, "manage.py", "runfeed", "--source", "replay", "--file", str(path), "--speed", "0"],
            cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            timeout=120,
        )
        assert done.returncode == 0, self.server_log()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runfeed", "--serve", "--port", str(self.port), "--host", "127.0.0.1"],
            cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode} before answering:\n{self.server_log()}")
            try:
                with urllib.request.urlopen(self.base + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                pytest.fail(f"server answered / with HTTP {exc.code}:\n{self.server_log()}")
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer within {SERVER_START_TIMEOUT:.0f} s:\n{self.server_log()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = Server(tmp_path_factory.mktemp("e2e-server"))
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


def _new_page(browser, server, **context_args):
    # Playwright re-evaluates string predicates with eval(), which the pages' CSP forbids;
    # tests/security/test_access_browser.py drives the pages under the real policy.
    args = {"viewport": {"width": 1280, "height": 800}, "color_scheme": "dark", "bypass_csp": True}
    args.update(context_args)
    context = browser.new_context(**args)
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    foreign: list[str] = []
    origins = (server.base + "/", f"ws://127.0.0.1:{server.port}/")

    def on_console(msg) -> None:
        if msg.type == "error":
            problems.append(f"console.{msg.type}: {msg.text}")

    def on_request(url: str) -> None:
        if not url.startswith(origins) and not url.startswith(("data:", "blob:", "about:")):
            foreign.append(url)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("request", lambda req: on_request(req.url))
    page.on("websocket", lambda ws: on_request(ws.url))
    page.problems = problems  # type: ignore[attr-defined]
    page.foreign = foreign  # type: ignore[attr-defined]
    return context, page


@pytest.fixture
def page(browser, server):
    context, page = _new_page(browser, server)
    try:
        yield page
    finally:
        context.close()


def _clean(page, allow: str | None = None) -> None:
    """No console errors (except those matching ``allow``) and no third-party requests."""
    problems = [p for p in page.problems if not (allow and re.search(allow, p))]
    assert problems == [], "\n".join(problems)
    assert page.foreign == [], f"requests left the server: {page.foreign}"


def _state(page) -> dict:
    return page.evaluate(
        "JSON.parse(JSON.stringify(window.tickchart ? Object.assign({}, window.tickchart, {chart: null}) : null))"
    )


def _wait_live(page) -> None:
    page.wait_for_function(
        "document.body.dataset.status === 'live' && window.tickchart && window.tickchart.candleCount > 0"
    )


def _wait_last_bar_changes(page, what: str) -> None:
    before = json.dumps(_state(page)["lastCandle"])
    try:
        page.wait_for_function(
            "before => JSON.stringify(window.tickchart.lastCandle) !== before",
            arg=before,
            timeout=LIVE_UPDATE_TIMEOUT_MS,
        )
    except Exception as exc:  # playwright's TimeoutError
        pytest.fail(f"{what}: the last bar did not change within {LIVE_UPDATE_TIMEOUT_MS} ms ({exc})")


def _screenshot(page, name: str, docs_name: str | None = None) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    if docs_name and os.environ.get("TICKCHART_UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / docs_name)
    return path


def _times(page) -> list[int]:
    return page.evaluate("window.tickchart.times()")


def watch_modules(page) -> dict[str, tuple[int, str]]:
    """Filled in as the page loads: {path under static/market/js/: (HTTP status, content type)}
    of every /static/market/js/**.js response, and (0, error) for a request that failed outright."""
    seen: dict[str, tuple[int, str]] = {}

    def name(url: str) -> str | None:
        path = urlsplit(url).path
        return path[len("/static/market/js/"):] if path.startswith("/static/market/js/") else None

    def on_response(response) -> None:
        if (n := name(response.url)) is not None:
            seen[n] = (response.status, response.headers.get("content-type", ""))

    def on_failed(request) -> None:
        if (n := name(request.url)) is not None:
            seen[n] = (0, request.failure or "failed")

    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    return seen


ENTRIES = ("main.js", "layout/index.js")  # the chart page's and the layout page's (issue 12)
_IMPORT = re.compile(r"""^\s*import\s[^'"]*?from\s+['"](\.{1,2}/[^'"]+)['"]""", re.M)


def modules_of(entry: str) -> list[str]:
    """``entry`` and every module it imports, directly or not (paths under static/market/js/)."""
    found, todo = set(), [entry]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        base = (MODULES / name).parent
        for rel in _IMPORT.findall((MODULES / name).read_text()):
            todo.append((base / rel).resolve().relative_to(MODULES.resolve()).as_posix())
    return sorted(found)


def test_every_module_belongs_to_a_page():
    """No module on disk is left out of both pages' import graphs (an orphan would go untested)."""
    on_disk = sorted(p.relative_to(MODULES).as_posix() for p in MODULES.rglob("*.js"))
    assert sorted(set(modules_of("main.js")) | set(modules_of("layout/index.js"))) == on_disk
    assert not any(n.startswith("layout/") for n in modules_of("main.js"))


def assert_all_modules_loaded(seen: dict[str, tuple[int, str]], entry: str = "main.js") -> None:
    """Every module of the page (``entry`` and what it imports, directly or not) was
    requested, answered 200 with a JavaScript MIME type (browsers refuse a module served
    otherwise), and no other."""
    expected = modules_of(entry)
    assert entry in expected and len(expected) > 1
    assert sorted(seen) == expected, f"requested {sorted(seen)}, expected {expected}"
    bad = {n: s for n, s in seen.items() if s[0] != 200 or "javascript" not in s[1]}
    assert bad == {}, f"modules that did not load: {bad}"


def test_chart_renders_goes_live_and_switches_timeframe_and_type(server, page):
    page.goto(server.base + "/")

    # History from the page itself, before any socket traffic.
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 0")
    assert page.locator("#chart canvas").count() > 0
    state = _state(page)
    assert state["symbol"] == "DEMO:ALPHA" and state["tf"] == "1m"
    first = state["lastCandle"]
    assert {"time", "open", "high", "low", "close", "volume"} <= set(first)
    body = sorted((first["open"], first["close"]))
    assert first["low"] <= body[0] <= body[1] <= first["high"]

    # Accessible controls.
    assert page.get_by_role("combobox", name="Search symbols").count() == 1
    assert page.get_by_label("Timeframe").count() == 1
    assert page.get_by_role("group", name="Chart type").count() == 1
    assert page.get_by_role("button", name="Show 5 days").count() == 1
    assert page.get_by_role("status").count() == 1
    assert page.get_by_role("complementary", name="Watchlist").is_visible()

    # The socket goes live, the feed reports a heartbeat, and live candles move the last bar.
    _wait_live(page)
    page.wait_for_function("window.tickchart.feed && window.tickchart.feed.state === 'live'")
    assert page.get_by_role("status").inner_text().strip().lower() == "live"
    _wait_last_bar_changes(page, "1m")
    assert re.fullmatch(r"closes in \d+:\d\d", page.locator("#countdown").inner_text().strip())
    page.mouse.move(760, 380)  # crosshair + legend for the screenshot
    page.wait_for_function("window.tickchart.hoverTime !== null")
    hovered = _state(page)["hoverTime"]
    legend_time = page.locator('#legend [data-field="time"]').inner_text()
    expected = dt.datetime.fromtimestamp(hovered, dt.UTC).strftime("%H:%M")
    assert legend_time.endswith(expected), (legend_time, expected)  # DEMO trades in UTC
    _screenshot(page, "chart.png", "screenshot.png")

    # Line and area follow the direction; back to candles. The last bar stays live.
    page.get_by_role("button", name="Area", exact=True).click()
    assert _state(page)["seriesType"] == "area"
    assert page.get_by_role("button", name="Area", exact=True).get_attribute("aria-pressed") == "true"
    assert page.locator("#chart").get_attribute("data-direction") in ("up", "down")
    page.get_by_role("button", name="Line", exact=True).click()
    assert _state(page)["seriesType"] == "line"
    page.get_by_role("button", name="Candles", exact=True).click()
    assert _state(page)["seriesType"] == "candles"

    # Switch the timeframe in place: no navigation, URL updated, new history, still live.
    page.evaluate("window.__sameDocument = true")
    for tf in ("5s", "3m", "5s"):
        page.get_by_label("Timeframe").select_option(tf)
        page.wait_for_function("tf => window.tickchart.tf === tf && window.tickchart.candleCount > 0", arg=tf)
        assert f"tf={tf}" in page.url
    assert page.evaluate("window.__sameDocument === true"), "switching the timeframe reloaded the page"
    page.wait_for_function("document.body.dataset.status === 'live'")
    _wait_last_bar_changes(page, "5s")
    times = _times(page)
    assert all(t % 5 == 0 for t in times) and times == sorted(set(times))
    _clean(page)


def test_every_chart_module_loads_without_an_error(server, page):
    """The page is native ES modules (static/market/js/, no build step): one that fails to
    load, link (a missing export) or run stops the whole graph, so the chart never starts."""
    seen = watch_modules(page)
    page.goto(server.base + "/")  # returns after the load event: the module graph has run by then
    assert page.problems == [], "\n".join(page.problems)
    assert_all_modules_loaded(seen)
    _wait_live(page)
    assert page.evaluate("document.querySelector('script[type=module]').src").endswith("/static/market/js/main.js")
    for name in ("setCandles", "loadOlder", "series", "times"):
        assert page.evaluate("n => typeof window.tickchart[n]", name) == "function", name
    _clean(page)


def test_scroll_back_loads_older_pages_without_jumps_and_range_buttons(server, page):
    page.goto(server.base + "/chart/DEMO:BETA/?tf=5s")
    _wait_live(page)
    state = _state(page)
    # The page carries the newest 1000 of ~2160; a live bar may open before we look.
    assert 1000 <= state["candleCount"] <= 1002, state["candleCount"]
    count_before = state["candleCount"]
    first_before = state["firstTime"]
    # Scroll left towards the edge; note what is in view before the older page arrives
    # (the page's request is held back until then).
    held: list = []
    page.route("**/api/candles?*", lambda route: held.append(route))
    page.evaluate("window.tickchart.chart.timeScale().scrollToPosition(-800, false)")
    page.wait_for_function("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    deadline = time.monotonic() + 5
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "no older page was requested near the left edge"
    before = page.evaluate("window.tickchart.chart.timeScale().getVisibleRange()")
    assert page.evaluate("window.tickchart.chart.timeScale().getVisibleLogicalRange().from") > 0
    assert _state(page)["olderLoads"] == 0
    held[0].continue_()
    page.unroute("**/api/candles?*")
    page.wait_for_function("window.tickchart.olderLoads >= 1")
    page.wait_for_timeout(200)
    after = page.evaluate("window.tickchart.chart.timeScale().getVisibleRange()")
    state = _state(page)
    assert state["firstTime"] < first_before and state["candleCount"] > count_before
    assert after["from"] == before["from"], "the visible range jumped when older candles arrived"
    times = _times(page)
    assert times == sorted(set(times))
    # Same candles as the API returns for that window: nothing missing at the seam.
    api = server.api(f"/api/candles?symbol=DEMO:BETA&tf=5s&from={times[0]}&to={first_before}&limit=10000")
    assert [c["time"] for c in api["candles"]] == [t for t in times if t <= first_before]

    # Three hours of history: "1D" loads everything there is; the longer ranges could show
    # no more, so they are disabled (tests/e2e/test_rough_edges_browser.py).
    assert page.get_by_role("button", name="Show all history").is_disabled()
    page.get_by_role("button", name="Show 1 day").click()
    page.wait_for_function("window.tickchart.range === '1D'")
    total = len(server.api("/api/candles?symbol=DEMO:BETA&tf=5s&limit=10000")["candles"])
    assert _state(page)["candleCount"] >= total - 5
    _clean(page)


def test_search_by_keyboard_and_select(server, page):
    page.goto(server.base + "/?tf=5m")
    _wait_live(page)
    box = page.get_by_role("combobox", name="Search symbols")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "symbol-search"
    page.keyboard.type("gmma")  # fuzzy: a subsequence of GAMMA
    options = page.get_by_role("option")
    options.first.wait_for()
    assert options.first.inner_text().startswith("DEMO:GAMMA")
    assert box.get_attribute("aria-expanded") == "true"
    box.fill("")
    box.type("demo")
    page.wait_for_function("document.querySelectorAll('#search-results [role=option]').length === 4")
    names = [o.inner_text().split("\n")[0].split()[0] for o in options.all()]
    box.press("ArrowDown")
    box.press("ArrowDown")
    box.press("ArrowUp")
    box.press("ArrowDown")
    target = names[2]
    assert page.locator("#search-results [aria-selected=true]").inner_text().startswith(target)
    assert box.get_attribute("aria-activedescendant") == "search-opt-2"
    with page.expect_navigation():
        box.press("Enter")
    _wait_live(page)
    state = _state(page)
    assert state["symbol"] == target and state["tf"] == "5m"
    assert f"/chart/{target}/" in page.url and "tf=5m" in page.url
    _wait_last_bar_changes(page, target)
    _clean(page)


def test_watchlist_theme_type_and_reload_keep_everything(server, page):
    page.goto(server.base + "/chart/DEMO:GAMMA/?tf=15s")
    _wait_live(page)
    rows = page.locator("#watch-rows tr")
    rows.first.wait_for()
    # Default watchlist: the active symbols, with live last / change / % vs previous close.
    page.wait_for_function(
        "[...document.querySelectorAll('#watch-rows td[data-field=last]')].every(td => td.textContent !== '—')"
    )
    tickers = [r.get_attribute("data-ticker") for r in rows.all()]
    assert "DEMO:ALPHA" in tickers and NSE_SYMBOL in tickers
    nse_row = page.locator(f'#watch-rows tr[data-ticker="{NSE_SYMBOL}"]')
    # Previous close is the 19 Nov close; the change is against it.
    days = server.api(f"/api/candles?symbol={NSE_SYMBOL}&tf=1d")["candles"]
    assert len(days) == 2
    expected = days[1]["close"] - days[0]["close"]
    assert float(nse_row.locator("td[data-field=change]").inner_text()) == pytest.approx(expected, abs=0.01)
    pct = nse_row.locator("td[data-field=pct]").inner_text()
    assert re.fullmatch(r"[+-]\d+\.\d\d%", pct), pct
    assert float(pct[:-1]) == pytest.approx(expected / days[0]["close"] * 100, abs=0.006)
    # The row of a simulated symbol updates live.
    alpha = page.locator('#watch-rows tr[data-ticker="DEMO:ALPHA"] td[data-field=last]')
    before = alpha.inner_text()
    page.wait_for_function(
        "before => document.querySelector('#watch-rows tr[data-ticker=\"DEMO:ALPHA\"] td[data-field=last]')"
        ".textContent !== before", arg=before, timeout=LIVE_UPDATE_TIMEOUT_MS,
    )
    # Remove one, switch theme and chart type, then reload: all of it is kept.
    page.get_by_role("button", name="Remove DEMO:BETA from watchlist").click()
    page.get_by_role("button", name="Switch to light theme").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.get_by_role("button", name="Area", exact=True).click()
    _screenshot(page, "chart-light.png", "screenshot-light.png")
    last = _state(page)["lastCandle"]
    page.reload()
    _wait_live(page)
    state = _state(page)
    assert (state["symbol"], state["tf"], state["seriesType"]) == ("DEMO:GAMMA", "15s", "area")
    assert page.get_by_label("Timeframe").input_value() == "15s"
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert [r.get_attribute("data-ticker") for r in rows.all()] == [t for t in tickers if t != "DEMO:BETA"]
    assert state["lastCandle"]["time"] >= last["time"]
    _wait_last_bar_changes(page, "15s after reload")
    # Add the current symbol back from another chart; click a row to chart it.
    page.get_by_role("button", name="Switch to dark theme").click()
    page.get_by_role("button", name="Candles", exact=True).click()
    with page.expect_navigation():
        page.get_by_role("link", name="Chart DEMO:ALPHA").click()
    _wait_live(page)
    assert _state(page)["symbol"] == "DEMO:ALPHA" and "tf=15s" in page.url
    _clean(page)


def test_exchange_local_time_with_browser_in_los_angeles(server, browser):
    context, page = _new_page(browser, server, timezone_id="America/Los_Angeles")
    try:
        assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/Los_Angeles"
        page.goto(server.base + f"/chart/{NSE_SYMBOL}/?tf=1m")
        page.wait_for_function("window.tickchart && window.tickchart.candleCount > 100")
        assert "Asia/Kolkata" in page.locator(".tz").inner_text()
        # Axis labels: times of day within the NSE session in IST (LA would be 19:45-02:00).
        labels = _state(page)["tickLabels"]
        clock = [label for label in labels if re.fullmatch(r"\d\d:\d\d", label)]
        assert clock, labels
        assert all("09:15" <= label <= "15:30" for label in clock), clock
        # Crosshair / legend label of a hovered bar: its IST wall time.
        for x in (200, 500, 800):
            page.mouse.move(x, 400)
            page.wait_for_function("window.tickchart.hoverTime !== null")
            hovered = _state(page)["hoverTime"]
            text = page.locator('#legend [data-field="time"]').inner_text()
            local = dt.datetime.fromtimestamp(hovered, IST)
            assert text == local.strftime("%a %d %b %Y %H:%M"), (text, local)
            assert "09:15" <= local.strftime("%H:%M") < "15:30"
        # Daily bars carry their trading date, whatever the browser's zone.
        page.get_by_label("Timeframe").select_option("1d")
        page.wait_for_function("window.tickchart.tf === '1d' && window.tickchart.candleCount === 2")
        page.mouse.move(5, 5)
        page.wait_for_function("window.tickchart.hoverTime === null")
        assert page.locator('#legend [data-field="time"]').inner_text() == "Fri 20 Nov 2026"
        # The market is shut outside 09:15-15:30 IST on weekdays.
        now = dt.datetime.now(IST)
        open_now = now.weekday() < 5 and "09:15" <= now.strftime("%H:%M") < "15:30"
        if not open_now:
            page.wait_for_function("document.body.dataset.status === 'market_closed'")
            assert page.get_by_role("status").inner_text().strip().lower() == "market closed"
            assert page.locator("#countdown").inner_text() == "market closed"
        _screenshot(page, "chart-ist.png")
        _clean(page)
    finally:
        context.close()


def test_phone_layout(server, browser):
    context, page = _new_page(
        browser, server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
    )
    try:
        page.goto(server.base + "/")
        _wait_live(page)
        chart_box = page.locator("#chart").bounding_box()
        assert chart_box["width"] >= 385, chart_box
        watchlist = page.get_by_role("complementary", name="Watchlist")
        assert not watchlist.is_visible()
        toggle = page.get_by_role("button", name="Toggle watchlist")
        assert toggle.get_attribute("aria-expanded") == "false"
        _screenshot(page, "chart-phone.png", "screenshot-phone.png")
        toggle.click()
        assert watchlist.is_visible() and toggle.get_attribute("aria-expanded") == "true"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        _clean(page)
    finally:
        context.close()


def test_server_restart_resumes_the_stream(server, page):
    page.goto(server.base + "/?tf=5s")
    _wait_live(page)
    _wait_last_bar_changes(page, "5s before the restart")
    mark = _state(page)["lastCandle"]["time"]
    server.stop()
    page.wait_for_function("document.body.dataset.status === 'reconnecting'")
    assert page.get_by_role("status").inner_text().strip().lower() == "reconnecting"
    time.sleep(3)
    server.start()
    _wait_live(page)
    _wait_last_bar_changes(page, "5s after the restart")
    page.wait_for_function("mark => window.tickchart.lastCandle.time > mark + 10", arg=mark, timeout=20_000)
    # Resumed with `since`: the page has exactly the stored candles since before the stop.
    times = [t for t in _times(page) if t >= mark]
    last = times[-1]
    stored = server.api(f"/api/candles?symbol=DEMO:ALPHA&tf=5s&from={mark}&to={last - 5}&limit=10000")
    assert [c["time"] for c in stored["candles"]] == [t for t in times if t <= last - 5]
    _clean(page, allow=r"WebSocket connection to .* failed")


def test_revised_candle_replaces_shown_bar_and_feed_status_shows(server, page):
    """Frames injected into the real socket (Playwright's WebSocket routing; the rest is
    forwarded to the server): a revision of an older bar, then feed states."""
    routes: list = []

    def handler(ws) -> None:
        ws.connect_to_server()
        routes.append(ws)

    page.route_web_socket(re.compile(r".*/ws/market/$"), handler)
    page.goto(server.base + "/chart/DEMO:GAMMA/?tf=1m")
    _wait_live(page)
    assert routes, "the page did not open its socket"
    times = _times(page)
    old = times[-10]
    bar = page.evaluate("t => window.tickchart.series().data().find(d => d.time === t)", old)
    revised = {"time": old, "open": bar["open"], "high": bar["high"] + 5, "low": bar["low"],
               "close": bar["high"] + 4, "volume": 123456, "ticks": 99}
    routes[0].send(json.dumps({"type": "candle", "symbol": "DEMO:GAMMA", "tf": "1m", "candle": revised}))
    page.wait_for_function("window.tickchart.revisions >= 1")
    shown = page.evaluate("t => window.tickchart.series().data().find(d => d.time === t)", old)
    assert (shown["high"], shown["close"]) == (revised["high"], revised["close"])
    assert _times(page)[: len(times)] == times, "a revision must not add or move bars"
    # Hovering the revised bar shows it in the legend.
    # (re-applied on each poll: a live update arriving in between may move the crosshair)
    page.wait_for_function(
        "t => { window.tickchart.chart.setCrosshairPosition(0, t, window.tickchart.series());"
        " return window.tickchart.hoverTime === t; }",
        arg=old, polling=200,
    )
    volume = page.locator('#legend [data-field="volume"]').inner_text()
    assert volume == "123.46K", volume

    for state, text in (("stale", "stale"), ("token_expired", "token expired"), ("reconnecting", "reconnecting"),
                        ("live", "live")):
        routes[0].send(json.dumps({"type": "status", "source": "simulated", "state": state, "detail": "test",
                                   "heartbeat": time.time()}))
        page.wait_for_function("s => document.body.dataset.status === s", arg=state)
        assert page.get_by_role("status").inner_text().strip().lower() == text
    _clean(page)


def test_stale_when_the_feed_heartbeat_stops(server, page):
    """The server's status frames are held back after the first live one: no new heartbeat for
    more than 15 s (on the page's clock) turns the badge to stale."""
    seen: list[str] = []

    def handler(ws) -> None:
        upstream = ws.connect_to_server()

        def from_server(message) -> None:
            if isinstance(message, str) and '"type":"status"' in message.replace(" ", ""):
                if any('"live"' in m for m in seen):
                    return  # the heartbeat stops once the page has heard the feed live
                seen.append(message)
            ws.send(message)

        upstream.on_message(from_server)

    page.clock.install()
    page.route_web_socket(re.compile(r".*/ws/market/$"), handler)
    page.goto(server.base + "/")
    _wait_live(page)
    page.wait_for_function("window.tickchart.feed !== null")
    page.clock.fast_forward(10_000)
    page.wait_for_timeout(300)
    assert page.evaluate("document.body.dataset.status") == "live"
    page.clock.fast_forward(6_000)
    page.wait_for_function("document.body.dataset.status === 'stale'")
    assert page.get_by_role("status").inner_text().strip().lower() == "stale"
    _clean(page)
