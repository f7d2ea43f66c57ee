"""/pulse/ in headless Chromium against real processes: ``runfeed --serve`` (simulated feed)
and ``runpulse`` meeting on Redis, as in production. Checks that the server-computed pulse
renders grouped and sortable, the correlation card fills in, nothing is logged as a
console error and nothing is fetched from another origin.

Needs Redis (the two processes meet there) and Chromium (skipped without them, failed
under CI=true).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, need_service
from tests.e2e.test_chart_browser import CHROMIUM, CHROMIUM_ARGS, _stop, need_chromium
from tests.servers import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    need_chromium()
    redis_url = REDIS_URL
    need_service("Redis", redis_url, 6379)
    tmp = tmp_path_factory.mktemp("pulse-e2e")
    port = free_port()
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update({"TICKCHART_DB_PATH": str(tmp / "db.sqlite3"), "REDIS_URL": redis_url,
                "TICKCHART_CHANNEL_PREFIX": f"pulse-e2e-{port}", "TICKCHART_SIM_BACKFILL_HOURS": "1",
                "DJANGO_DEBUG": "1", "PYTHONUNBUFFERED": "1"})
    log = open(tmp / "server.log", "ab")
    feed = subprocess.Popen([sys.executable, "manage.py", "runfeed", "--serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/pulse/", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if feed.poll() is not None or time.monotonic() > deadline:
            _stop(feed)
            pytest.fail((tmp / "server.log").read_text()[-3000:])
        time.sleep(0.3)
    pulse = subprocess.Popen([sys.executable, "manage.py", "runpulse"], cwd=ROOT, env=env,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield base
    finally:
        _stop(pulse)
        _stop(feed)
        log.close()


def test_pulse_page_shows_grouped_sortable_movers_and_the_correlation_card(servers):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 800})
        errors: list[str] = []
        foreign: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:")) else None)
        try:
            page.goto(servers + "/pulse/")
            page.wait_for_selector(".movers-table tbody tr", timeout=20_000)
            groups = page.eval_on_selector_all(".mover-group", "els => els.map(e => e.dataset.assetClass)")
            assert groups == ["equity", "index"]  # the demo's classes, in the configured order
            assert page.locator(".mover-group[data-asset-class=equity] tbody tr").count() == 3
            page.click(".mover-group[data-asset-class=equity] th[data-key=symbol]")
            header = page.locator(".mover-group[data-asset-class=equity] th[data-key=symbol]")
            assert header.get_attribute("aria-sort") == "ascending"
            names = page.eval_on_selector_all(".mover-group[data-asset-class=equity] tbody td:first-child",
                                              "els => els.map(e => e.textContent)")
            assert names == ["DEMO:ALPHA", "DEMO:BETA", "DEMO:GAMMA"]
            page.click(".mover-group[data-asset-class=equity] th[data-key=symbol]")
            names = page.eval_on_selector_all(".mover-group[data-asset-class=equity] tbody td:first-child",
                                              "els => els.map(e => e.textContent)")
            assert names == ["DEMO:GAMMA", "DEMO:BETA", "DEMO:ALPHA"]
            page.wait_for_selector("#corr-body tr", timeout=10_000)
            assert "vs DEMO:ALPHA" in page.inner_text("#corr-meta")
            assert page.inner_text("#pulse-status") == "live"
        finally:
            browser.close()
    assert errors == []
    assert foreign == []
