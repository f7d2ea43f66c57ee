"""/ws/pulse/ through the real ASGI application and channel layer, and the /pulse/ page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections

from market.models import PulseEvent
from market.pulse.service import PULSE_EVENT, PULSE_GROUP
from tickchart.asgi import application

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
TIMEOUT = 5


@pytest.fixture(autouse=True)
async def _close_db():
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


def make_events(n: int) -> None:
    for i in range(n):
        PulseEvent.objects.create(symbol=f"S{i}", asset_class="equity", kind="move_1m", time=1000.0 + i,
                                  value=0.01 * i, threshold=0.005, message=f"S{i} +{i}% in 1m")


@pytest.mark.django_db(transaction=True)
async def test_hello_brings_recent_stored_events_then_frames_are_relayed_as_sent(settings):
    settings.PULSE = {**settings.PULSE, "RECENT_EVENTS": 3}
    await database_sync_to_async(make_events)(5)
    comm = WebsocketCommunicator(application, "/ws/pulse/", headers=HEADERS)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    try:
        hello = await comm.receive_json_from(timeout=TIMEOUT)
        assert hello["type"] == "hello"
        assert [e["symbol"] for e in hello["events"]] == ["S4", "S3", "S2"]  # newest first, limited
        assert hello["events"][0] == {"symbol": "S4", "class": "equity", "kind": "move_1m", "time": 1004.0,
                                      "value": 0.04, "threshold": 0.005, "message": "S4 +4% in 1m"}
        text = json.dumps({"type": "pulse", "time": 1.0, "movers": [], "correlation": None, "events": []})
        await get_channel_layer().group_send(PULSE_GROUP, {"type": PULSE_EVENT, "text": text})
        assert await comm.receive_from(timeout=TIMEOUT) == text
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
        await comm.send_to(text_data="nonsense")
        assert (await comm.receive_json_from(timeout=TIMEOUT))["type"] == "error"
    finally:
        await comm.disconnect(timeout=TIMEOUT)


@pytest.mark.django_db
def test_pulse_page_renders_with_stored_events_and_no_inline_code(client):
    make_events(2)
    response = client.get("/pulse/")
    assert response.status_code == 200
    html = response.content.decode()
    config = json.loads(re.search(r'<script id="pulse-config" type="application/json">(.*?)</script>', html, re.S)[1])
    assert config["ws_path"] == "/ws/pulse/"
    assert [e["symbol"] for e in config["events"]] == ["S1", "S0"]
    assert '<script src="/static/pulse/pulse.js" defer></script>' in html
    # Every script is either the JSON data block or an external file: no inline code, no CDN.
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'type="application/json"' in tag or 'src="/static/' in tag, tag
    assert "http://" not in html and "https://" not in html
    for name in ("pulse.js", "pulse.css"):
        assert (Path(settings.BASE_DIR) / "static" / "pulse" / name).is_file()
    assert client.get("/static/pulse/pulse.js").status_code == 200
