"""In a real browser against a real server with public access off: sign in through the
login page, watch the chart and the pulse go live, lose the session, and see each page
show a sign-in link instead of reconnecting for ever. Also: no CSP violation on any page.

Starts ``runfeed --serve`` (embedded: SQLite, in-process layer, the simulated feed) with
``TICKCHART_PUBLIC_ACCESS=0``. Needs Debian's chromium (see tests/e2e/test_chart_browser.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from tests.e2e.test_chart_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, _stop, need_chromium
from tests.servers import free_port

pytestmark = pytest.mark.e2e

PASSWORD = "a-long-test-password-9431"
# After the handshake is refused (HTTP 403) Chromium logs the failed connection: expected.
EXPECTED_CONSOLE = re.compile(r"WebSocket connection to .* failed")
# Function predicates: Playwright evaluates them once; a string predicate is re-evaluated
# with eval(), which the pages' CSP (rightly) forbids.
LIVE = "() => document.body.dataset.status === 'live'"
# Lets the test drop the page's socket the way a network hiccup would.
TRACK_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    need_chromium()
    tmp = tmp_path_factory.mktemp("access-browser")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TICKCHART_DB_PATH=str(tmp / "db.sqlite3"), DJANGO_DEBUG="1", TICKCHART_PUBLIC_ACCESS="0",
               TICKCHART_SIM_BACKFILL_HOURS="0.05", PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    f"from django.contrib.auth.models import User; User.objects.create_user('viewer', password='{PASSWORD}')"],
                   cwd=ROOT, env=env, check=True, timeout=60)
    port = free_port()
    log = open(tmp / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "manage.py", "runfeed", "--serve", "--no-migrate", "--port", str(port),
                             "--host", "127.0.0.1"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp / "server.log").read_text()
            try:
                with urllib.request.urlopen(base + "/api/symbols", timeout=2):
                    break
            except urllib.error.HTTPError as exc:  # 401: up, and refusing anonymous callers
                if exc.code == 401:
                    break
                raise
            except OSError:
                assert time.monotonic() < deadline, (tmp / "server.log").read_text()
                time.sleep(0.2)
        yield base
    finally:
        _stop(proc)
        log.close()


def _sign_in(page, base: str) -> None:
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def _lose_the_session_and_the_socket(page) -> None:
    page.context.clear_cookies()
    page.evaluate("window.__sockets.forEach((s) => s.close())")


def test_pages_show_a_sign_in_link_when_the_socket_is_refused(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_init_script(TRACK_SOCKETS)
            page = context.new_page()
            page.set_default_timeout(20_000)
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: console.append(f"page error: {exc}"))

            # Anonymous: the chart sends us to the login page, which brings us back.
            page.goto(server + "/")
            _sign_in(page, server)
            page.wait_for_url(server + "/")
            page.wait_for_function(LIVE)

            # Under the real CSP: theme, chart type, timeframe and search restyle the page
            # through the CSSOM only (a blocked inline style would be a console error).
            page.click("#theme-toggle")
            page.click("button[data-type=area]")
            page.select_option("#tf-select", "5m")
            page.wait_for_function("() => window.tickchart.tf === '5m' && window.tickchart.candleCount > 0")
            page.fill("#symbol-search", "demo")
            page.wait_for_function("() => document.querySelectorAll('#search-results [role=option]').length > 0")
            page.keyboard.press("Escape")
            page.wait_for_function(LIVE)

            # The session ends (signed out elsewhere, expired): the next handshake is refused.
            here = page.evaluate("() => location.pathname + location.search")
            _lose_the_session_and_the_socket(page)
            link = page.locator("#sign-in")
            expect(link).to_be_visible()
            expect(page.locator("#status")).to_have_text("signed out")
            assert link.get_attribute("href") == "/accounts/login/?next=" + quote(here, safe="")
            attempts = page.evaluate("window.__sockets.length")
            page.wait_for_timeout(3000)  # the backoff would have retried several times by now
            assert page.evaluate("window.__sockets.length") == attempts, "kept reconnecting"

            # The link signs in again and returns to the chart, live.
            link.click()
            _sign_in(page, server)
            page.wait_for_url(server + here)
            page.wait_for_function(LIVE)

            # The pulse page does the same.
            page.goto(server + "/pulse/")
            page.wait_for_function(LIVE)
            _lose_the_session_and_the_socket(page)
            expect(page.locator("#sign-in")).to_be_visible()
            assert page.locator("#sign-in").get_attribute("href") == "/accounts/login/?next=%2Fpulse%2F"

            unexpected = [line for line in console if not EXPECTED_CONSOLE.search(line)]
            assert unexpected == [], unexpected  # notably no "Content Security Policy" refusals
            assert any(EXPECTED_CONSOLE.search(line) for line in console), "the refused handshake was not seen"
        finally:
            browser.close()
