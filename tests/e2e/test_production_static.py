"""The chart page as production serves it: DJANGO_DEBUG=0, static files from
``collectstatic`` (whitenoise reads STATIC_ROOT; no finders), under the real
Content-Security-Policy (no ``bypass_csp``). The page's code is native ES modules
(static/market/js/) importing each other by relative path, so every one of them must be
collected, served with a JavaScript MIME type and allowed by ``script-src 'self'``.

Starts ``manage.py runfeed --serve`` (SQLite in a temporary directory, the simulated feed)
with public read access, so no sign-in is needed. Needs Debian's chromium, like
tests/e2e/test_chart_browser.py.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.e2e.test_chart_browser import (CHROMIUM, CHROMIUM_ARGS, MODULES, ROOT, _stop, need_chromium,
                                          assert_all_modules_loaded, watch_modules)
from tests.servers import free_port

pytestmark = pytest.mark.e2e
LIVE = "() => document.body.dataset.status === 'live' && window.tickchart.candleCount > 0"


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    need_chromium()
    tmp = tmp_path_factory.mktemp("production-static")
    static_root = tmp / "staticfiles"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith(("PYTEST", "TICKCHART_"))}
    env.update(DJANGO_DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1",
               SECURE_COOKIES="0", STATIC_ROOT=str(static_root), TICKCHART_DB_PATH=str(tmp / "db.sqlite3"),
               TICKCHART_PUBLIC_ACCESS="1", TICKCHART_SIM_BACKFILL_HOURS="0.05", PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=120)
    port = free_port()
    log_path = tmp / "server.log"
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "manage.py", "runfeed", "--serve", "--port", str(port),
                             "--host", "127.0.0.1"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(base + "/", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        yield base, port, static_root
    finally:
        _stop(proc)
        log.close()


def test_collected_modules_load_under_the_real_csp(production):
    from playwright.sync_api import sync_playwright

    base, port, static_root = production
    collected_root = static_root / "market" / "js"
    collected = sorted(p.relative_to(collected_root).as_posix() for p in collected_root.rglob("*.js"))
    assert collected == sorted(p.relative_to(MODULES).as_posix() for p in MODULES.rglob("*.js"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(20_000)
            problems: list[str] = []
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            seen = watch_modules(page)
            response = page.goto(base + "/")
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert problems == [], "\n".join(problems)  # a CSP refusal is logged as a console error
            assert_all_modules_loaded(seen)
            page.wait_for_function(LIVE)  # a function predicate: a string one needs eval()
            assert problems == [], "\n".join(problems)
        finally:
            browser.close()


def test_layout_page_loads_its_modules_under_the_real_csp(production):
    """The layout page (issue 12): its own entry module and what it imports, four panes live."""
    from playwright.sync_api import sync_playwright

    base, port, static_root = production
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(20_000)
            problems: list[str] = []
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            seen = watch_modules(page)
            response = page.goto(base + "/layout/")
            assert "script-src 'self'" in response.headers["content-security-policy"]
            page.wait_for_function("() => document.body.dataset.status === 'live' && window.tickchart.panes.length === 4"
                                   " && window.tickchart.panes.every(p => p && p.candleCount > 0)")
            assert_all_modules_loaded(seen, "layout/index.js")
            assert problems == [], "\n".join(problems)
        finally:
            browser.close()
