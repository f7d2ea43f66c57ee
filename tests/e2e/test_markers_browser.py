"""Markers (issue 16) on the chart page, in headless Chromium against the real server: a
strategy posts with a ``markers`` token and the open chart shows it live, on the bar that
contains its time, on every timeframe; a delete removes it live.

Server, browser and page fixtures: tests/e2e/test_chart_browser.py (embedded mode).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from tests.e2e.test_chart_browser import (  # noqa: F401  (fixtures)
    _clean,
    _need_chromium,
    browser,
    page,
    server,
)
from tests.servers import ROOT

pytestmark = pytest.mark.e2e
SYMBOL = "DEMO:ALPHA"


@pytest.fixture(scope="module")
def token(server) -> str:
    code = ("from django.contrib.auth.models import User; from market import tokens; "
            "u, _ = User.objects.get_or_create(username='strategy'); "
            "print(tokens.api_token_create(user=u, name='bot', scopes='markers')[1])")
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=server.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _call(server, token: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(server.base + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())


def _shown(page) -> list[dict]:
    return page.evaluate("(window.tickchart.markers || []).map(m => ({time: m.time, text: m.text, shape: m.shape}))")


def test_a_posted_marker_appears_live_on_the_bar_that_contains_it(server, page, token):
    page.goto(server.base + f"/chart/{SYMBOL}/?tf=1m")
    page.wait_for_function("window.tickchart && window.tickchart.candleCount > 10 && window.tickchart.markers")
    page.wait_for_function("document.body.dataset.status === 'live'")
    times = page.evaluate("window.tickchart.times()")
    bar = times[-6]
    made = _call(server, token, "POST", "/api/markers",
                 {"symbol": SYMBOL, "time": bar + 17, "shape": "arrowUp", "color": "#26a69a", "text": "long"})
    page.wait_for_function("window.tickchart.markers.length === 1")
    assert _shown(page) == [{"time": bar, "text": "long", "shape": "arrowUp"}]  # on the 1m bar holding +17 s

    page.select_option("#tf-select", "5m")
    page.wait_for_function("window.tickchart.tf === '5m' && window.tickchart.markers.length === 1 && "
                           "window.tickchart.markers[0].time % 300 === 0")
    five = page.evaluate("window.tickchart.times()")
    holding = max(t for t in five if t <= bar + 17)
    assert _shown(page)[0]["time"] == holding

    _call(server, token, "DELETE", f"/api/markers/{made['id']}")
    page.wait_for_function("window.tickchart.markers.length === 0")
    _clean(page)


def test_markers_posted_before_the_page_opened_are_shown(server, page, token):
    first = json.loads(urllib.request.urlopen(server.base + f"/api/candles?symbol={SYMBOL}&tf=1m&limit=3").read())
    t = first["candles"][0]["time"]
    made = _call(server, token, "POST", "/api/markers", {"symbol": SYMBOL, "time": t, "price": first["candles"][0]["high"],
                                                         "shape": "circle", "text": "signal"})
    try:
        page.goto(server.base + f"/chart/{SYMBOL}/?tf=1m")
        page.wait_for_function("window.tickchart && window.tickchart.markers && window.tickchart.markers.length === 1")
        assert _shown(page) == [{"time": t, "text": "signal", "shape": "circle"}]
        _clean(page)
    finally:
        _call(server, token, "DELETE", f"/api/markers/{made['id']}")
