"""Alerts on the chart page, in a real browser against the real server (issue 13).

Starts ``runfeed --serve`` (embedded: SQLite, the in-process layer, the simulated feed,
which evaluates the alerts in its writer). A signed-in user creates "price crosses <last
price>" from the page's dialog; the simulated ticks cross it, runfeed stores the event and
publishes it on the user channel, and both of the user's tabs show a toast, list the event
and see the alert become done; pause and delete from one tab show in the other. A visitor
sees a sign-in hint instead. Needs Debian's chromium (see tests/e2e/test_chart_browser.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e.test_chart_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, SCREENSHOTS, _stop, need_chromium
from tests.servers import free_port

pytestmark = pytest.mark.e2e

PASSWORD = "a-long-test-password-9431"
LIVE = "() => document.body !== null && document.body.dataset.status === 'live'"
READY = "() => window.tickchart && window.tickchart.alertsReady === true"
SYMBOL = "DEMO:ALPHA"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    need_chromium()
    tmp = tmp_path_factory.mktemp("alerts-browser")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TICKCHART_DB_PATH=str(tmp / "db.sqlite3"), DJANGO_DEBUG="1", TICKCHART_PUBLIC_ACCESS="1",
               TICKCHART_SIM_BACKFILL_HOURS="0.05", TICKCHART_SIM_RATE="8", PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    f"from django.contrib.auth.models import User; User.objects.create_user('ada', password='{PASSWORD}')"],
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
            except (OSError, urllib.error.HTTPError):
                assert time.monotonic() < deadline, (tmp / "server.log").read_text()
                time.sleep(0.2)
        yield base
    finally:
        _stop(proc)
        log.close()


def _page(context, errors):
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    return page


def _chart(page, base):
    page.goto(f"{base}/chart/{SYMBOL}/?tf=1m")
    page.wait_for_function(LIVE)
    page.wait_for_function(READY)


def _rows(page):
    return page.evaluate("() => [...document.querySelectorAll('#alerts-list li[data-alert-id]')]"
                         ".map((li) => [Number(li.dataset.alertId), li.dataset.status])")


def test_an_alert_set_on_the_page_fires_a_toast_in_every_tab_of_its_owner(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        errors: list[str] = []
        try:
            # A visitor (public access): the chart, and a hint instead of the alert controls.
            visitor = _page(browser.new_context(), errors)
            _chart(visitor, server)
            expect(visitor.locator("#alerts-hint")).to_be_visible()
            expect(visitor.locator("#alert-add")).to_be_hidden()

            context = browser.new_context(viewport={"width": 1280, "height": 800})
            first = _page(context, errors)
            first.goto(f"{server}/accounts/login/?next=/chart/{SYMBOL}/%3Ftf%3D1m")
            first.fill("input[name=username]", "ada")
            first.fill("input[name=password]", PASSWORD)
            first.click("button[type=submit]")
            first.wait_for_url(f"{server}/chart/{SYMBOL}/?tf=1m")
            first.wait_for_function(LIVE)
            first.wait_for_function(READY)
            second = _page(context, errors)
            _chart(second, server)
            expect(first.locator("#alerts-hint")).to_be_hidden()
            assert _rows(first) == [] and _rows(second) == []

            # "+ Alert" opens the dialog prefilled with the last price: "price crosses <it>".
            first.click("#alert-add")
            dialog = first.locator("#alert-dialog")
            expect(dialog).to_be_visible()
            prefilled = float(first.input_value("#alert-form input[name=right]"))
            last = first.evaluate("() => window.tickchart.lastCandle.close")
            assert abs(prefilled - last) < max(1.0, abs(last) * 0.01)
            assert first.input_value("#alert-form select[name=op]") == "crosses"
            first.fill("#alert-form input[name=message]", "e2e crossing")
            first.click("#alert-form button[type=submit]")
            expect(dialog).to_be_hidden()
            first.wait_for_function("() => document.querySelectorAll('#alerts-list li[data-alert-id]').length === 1")
            [(alert_id, status)] = _rows(first)
            assert status == "active"
            assert first.evaluate("() => window.tickchart.alertLines()") == [prefilled]
            # the other tab heard it over its socket
            second.wait_for_function("() => document.querySelectorAll('#alerts-list li[data-alert-id]').length === 1")
            assert second.evaluate("() => window.tickchart.alertLines()") == [prefilled]

            # The simulated ticks cross it: a toast in both tabs, the event listed, the alert done.
            for page in (first, second):
                toast = page.locator(".toast[role=alert]", has_text="e2e crossing")
                expect(toast).to_be_visible(timeout=90_000)
                page.wait_for_function(
                    f"() => document.querySelector('#alerts-list li[data-alert-id=\"{alert_id}\"]')"
                    ".dataset.status === 'done'", timeout=30_000)
                expect(page.locator("#alert-events li")).to_have_count(1)
                assert page.evaluate("() => window.tickchart.alertLines()") == []
            SCREENSHOTS.mkdir(exist_ok=True)
            first.screenshot(path=str(SCREENSHOTS / "alerts.png"))
            events = first.evaluate(f"() => fetch('/api/alerts/{alert_id}/events').then((r) => r.json())")
            assert [e["message"] for e in events["events"]] == ["e2e crossing"]
            assert first.locator("#alert-events li").get_attribute("data-event-id") == events["events"][0]["id"]

            # Pause and delete in one tab show in the other.
            second.click("#alert-add")
            second.fill("#alert-form input[name=right]", str(round(prefilled * 10, 2)))  # far away: never fires
            second.click("#alert-form button[type=submit]")
            first.wait_for_function("() => document.querySelectorAll('#alerts-list li[data-alert-id]').length === 2")
            new_id = max(i for i, _ in _rows(first))
            first.click(f"#alerts-list li[data-alert-id='{new_id}'] button:has-text('Pause')")
            second.wait_for_function(
                f"() => document.querySelector('#alerts-list li[data-alert-id=\"{new_id}\"]').dataset.status === 'paused'")
            second.click(f"#alerts-list li[data-alert-id='{new_id}'] button:has-text('Delete')")
            first.wait_for_function("() => document.querySelectorAll('#alerts-list li[data-alert-id]').length === 1")

            # Right-click on the chart opens the dialog with the price under the pointer.
            box = first.locator("#chart").bounding_box()
            first.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.3, button="right")
            expect(dialog).to_be_visible()
            assert float(first.input_value("#alert-form input[name=right]")) > 0
            first.click("#alert-cancel")
            expect(dialog).to_be_hidden()
            # "+ Alert" takes the price the crosshair was last on
            first.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2)
            first.click("#alert-add")
            hovered = float(first.input_value("#alert-form input[name=right]"))
            first.click("#alert-cancel")
            first.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.5)
            first.click("#alert-add")
            assert float(first.input_value("#alert-form input[name=right]")) < hovered  # lower on screen: lower price
            first.click("#alert-cancel")

            # The sound toggle is off by default and kept.
            assert first.is_checked("#alert-sound") is False
            first.check("#alert-sound")
            assert first.evaluate("() => localStorage.getItem('tickchart.alertSound')") == "1"
            second.reload()
            second.wait_for_function(READY)
            assert second.is_checked("#alert-sound") is True
        finally:
            browser.close()
    assert errors == []
