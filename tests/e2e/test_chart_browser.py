"""The chart page in a real browser against the real server.

Starts ``manage.py runfeed --serve`` (embedded mode: SQLite in a temporary directory, the
in-process channel layer, the simulated feed) and drives headless Chromium through it with
Playwright: history renders, the socket goes live, live updates move the last bar, the
timeframe switches without a reload, a reload keeps the candles, and nothing is logged as
a console error.

Needs Debian's ``chromium`` at /usr/bin/chromium (``apt-get install -y chromium``; another
path through TICKCHART_CHROMIUM): skipped without it, failed without it under CI=true.
Screenshots go to tests/e2e/screenshots/ (ignored by git); with
TICKCHART_UPDATE_DOCS_SCREENSHOT=1 the main one is also copied to docs/screenshot.png.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
DOCS_SCREENSHOT = ROOT / "docs" / "screenshot.png"
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _need_chromium() -> None:
    """Checked before the server starts: skip on a laptop without Chromium, fail in CI."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """Base URL of a fresh ``runfeed --serve`` on a free loopback port."""
    tmp = tmp_path_factory.mktemp("e2e-server")
    port = _free_port()
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update({
        "TICKCHART_DB_PATH": str(tmp / "db.sqlite3"),
        "TICKCHART_SIM_RATE": "5",
        "DJANGO_DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
    })
    log_path = tmp / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runfeed", "--serve", "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def server_log() -> str:
        log.flush()
        return log_path.read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode} before answering:\n{server_log()}")
            try:
                with urllib.request.urlopen(base + "/", timeout=2) as response:
                    if response.status == 200:
                        break
            except urllib.error.HTTPError as exc:
                pytest.fail(f"server answered / with HTTP {exc.code}:\n{server_log()}")
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer within {SERVER_START_TIMEOUT:.0f} s:\n{server_log()}")
            time.sleep(0.25)
        yield base
    finally:
        _stop(proc)
        log.close()


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
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []

    def on_console(msg) -> None:
        if msg.type == "error":
            problems.append(f"console.{msg.type}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.problems = problems  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def _state(page) -> dict:
    return page.evaluate("JSON.parse(JSON.stringify(window.tickchart || null))")


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


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    return path


def test_chart_renders_goes_live_switches_timeframe_and_reloads(server, page):
    page.goto(server + "/")

    # History from the page itself, before any socket traffic.
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 0")
    assert page.locator("#chart canvas").count() > 0
    state = _state(page)
    assert state["symbol"] and state["tf"]
    first = state["lastCandle"]
    assert {"time", "open", "high", "low", "close", "volume"} <= set(first)
    body = sorted((first["open"], first["close"]))
    assert first["low"] <= body[0] <= body[1] <= first["high"]

    # Accessible controls.
    assert page.get_by_label("Symbol").count() == 1
    assert page.get_by_label("Timeframe").count() == 1
    assert page.get_by_role("status").count() == 1

    # The socket goes live and live candles move the last bar.
    _wait_live(page)
    assert page.get_by_role("status").inner_text().strip().lower() == "live"
    _wait_last_bar_changes(page, state["tf"])
    count_before_switch = _state(page)["candleCount"]
    assert count_before_switch > 0
    page.mouse.move(760, 380)  # crosshair + legend for the screenshot
    main_shot = _screenshot(page, "chart.png")
    if os.environ.get("TICKCHART_UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(main_shot, DOCS_SCREENSHOT)

    # Switch the timeframe in place: no navigation, URL updated, new history, still live.
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Timeframe").select_option("5s")
    page.wait_for_function("window.tickchart.tf === '5s' && window.tickchart.candleCount > 0")
    assert page.evaluate("window.__sameDocument === true"), "switching the timeframe reloaded the page"
    assert "tf=5s" in page.url
    page.wait_for_function("document.body.dataset.status === 'live'")
    _wait_last_bar_changes(page, "5s")
    last = _state(page)["lastCandle"]
    assert last["time"] % 5 == 0
    page.mouse.move(5, 5)
    _screenshot(page, "chart-5s.png")

    # Reload keeps the timeframe (from the URL) and the candles.
    page.reload()
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 0")
    assert _state(page)["tf"] == "5s"
    assert page.get_by_label("Timeframe").input_value() == "5s"
    _wait_live(page)
    reloaded = _state(page)["lastCandle"]
    assert reloaded["time"] >= last["time"]
    _wait_last_bar_changes(page, "5s after reload")

    assert page.problems == [], "\n".join(page.problems)


def test_symbol_select_navigates(server, page):
    page.goto(server + "/")
    _wait_live(page)
    config = json.loads(page.locator("#chart-config").text_content())
    others = [s["ticker"] for s in config["symbols"] if s["ticker"] != config["symbol"]]
    if not others:
        pytest.skip("the simulated feed has a single symbol")
    target = others[0]
    with page.expect_navigation():
        page.get_by_label("Symbol").select_option(target)
    _wait_live(page)
    state = _state(page)
    assert state["symbol"] == target
    assert state["tf"] == config["tf"]
    assert "/chart/" in page.url and f"tf={config['tf']}" in page.url
    assert page.get_by_label("Symbol").input_value() == target
    _wait_last_bar_changes(page, target)
    assert page.problems == [], "\n".join(page.problems)
