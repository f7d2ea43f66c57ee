""""Alert on this line" (issue 13) in headless Chromium against the real server: a selected
trend line gets an alert that follows it (``right: drawing:<id>``); a tool with no line
cannot; deleting the line disables the alert and the panel says why (the ``alert`` frame).

Server, browser and page fixtures: tests/e2e/test_chart_browser.py (embedded mode).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.test_chart_browser import _clean, _new_page, browser, server  # noqa: F401  (fixtures)
from tests.e2e.test_drawings_browser import ROOT, _at, _draw, _mid_price, _press, _price_per_pixel, _ready, _saved, \
    _visible, _wait_saved, SYMBOL, TF

pytestmark = pytest.mark.e2e
PASSWORD = "a-long-line-alert-password-7731"
USER = "liner1"


@pytest.fixture(scope="module")
def user(server):
    code = ("from django.contrib.auth import get_user_model\n"
            f"get_user_model().objects.create_user({USER!r}, password={PASSWORD!r})\n")
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=server.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return USER


def _alerts(page) -> list[dict]:
    return page.evaluate("() => fetch('/api/alerts', {credentials: 'same-origin'}).then(r => r.json()).then(b => b.alerts)")


def test_alert_on_a_selected_line_follows_it_and_is_disabled_when_it_goes(server, browser, user):
    context, page = _new_page(browser, server)
    try:
        page.goto(server.base + f"/accounts/login/?next=/chart/{SYMBOL}/%3Ftf%3D{TF}")
        page.fill('input[name="username"]', user)
        page.fill('input[name="password"]', PASSWORD)
        page.click('button[type="submit"]')
        _ready(page)
        page.wait_for_function("() => window.tickchart.alertsReady === true")
        left, _ = _visible(page)
        mid, ppx = _mid_price(page), _price_per_pixel(page)
        assert page.locator("#draw-alert").is_visible() and page.locator("#draw-alert").is_disabled()
        # A rectangle selected: no line to alert on.
        before = _saved(page)
        rect = _draw(page, "rect", [(left + 40, mid + 60 * ppx), (left + 50, mid + 30 * ppx)])
        _wait_saved(page, before)
        assert page.get_attribute("#draw-bar", "data-selected") in ("", str(rect["id"]))
        page.keyboard.press("Escape")
        _press(page, *_at(page, left + 45, mid + 60 * ppx))  # its top edge: selects it
        assert page.get_attribute("#draw-bar", "data-selected") == str(rect["id"])
        assert page.locator("#draw-alert").is_disabled()
        # A trend line selected: "Alert on this line".
        before = _saved(page)
        d = _draw(page, "trend", [(left + 10, mid + 30 * ppx), (left + 30, mid - 30 * ppx)])
        _wait_saved(page, before)
        page.keyboard.press("Escape")
        _press(page, *_at(page, left + 20, mid))
        assert page.get_attribute("#draw-bar", "data-selected") == str(d["id"])
        assert page.locator("#draw-alert").is_enabled()
        page.click("#draw-alert")
        page.wait_for_selector("#alert-dialog[open]")
        field = page.locator('#alert-form input[name="right"]')
        assert field.input_value() == f"the trend line #{d['id']}" and field.get_attribute("readonly") is not None
        page.fill('#alert-form input[name="message"]', "touches the trend")
        page.click('#alert-form button[type="submit"]')
        page.wait_for_selector("#alert-dialog[open]", state="detached")
        [a] = _alerts(page)
        assert (a["right"], a["left"], a["op"], a["status"]) == (f"drawing:{d['id']}", "price", "crosses", "active")
        row = f"#alerts-list li[data-alert-id='{a['id']}']"
        page.wait_for_selector(row)
        assert f"line #{d['id']}" in page.locator(row).inner_text()
        # Delete the line: the alert is disabled, and the panel hears it and says why.
        page.keyboard.press("Delete")
        page.wait_for_function(f"() => document.querySelector(\"{row}\").dataset.status === 'disabled'")
        assert f"its drawing {d['id']} was deleted" in page.locator(row).inner_text()
        [a] = _alerts(page)
        assert (a["status"], a["reason"]) == ("disabled", f"its drawing {d['id']} was deleted")
        _clean(page)
    finally:
        context.close()
