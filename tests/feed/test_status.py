"""Feed status reaches every browser and is persisted with a heartbeat."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from market.conf import market
from market.models import FeedState
from market.feed.runner import run_feed
from tickchart.asgi import application

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


async def statuses(comm: WebsocketCommunicator, until: str, timeout: float = 10.0) -> list[dict]:
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = await comm.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        if msg["type"] == "status":
            seen.append(msg)
            if msg["state"] == until:
                break
    return seen


@pytest.mark.django_db(transaction=True)
async def test_browsers_hear_the_feed_go_live_and_stop_and_the_state_is_stored():
    with override_settings(MARKET={**settings.MARKET, "SIM_BACKFILL_HOURS": 0.01, "FLUSH_INTERVAL": 0.2}):
        market.cache_clear()
        comm = WebsocketCommunicator(application, "/ws/market/", headers=HEADERS)
        connected, _ = await comm.connect()
        assert connected
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("simulated", stop))
        live = await statuses(comm, "live")
        assert live and live[-1]["state"] == "live" and live[-1]["source"] == "simulated"
        assert abs(live[-1]["heartbeat"] - time.time()) < 5
        stop.set()
        await task
        stopped = await statuses(comm, "stopped")
        assert stopped and stopped[-1]["state"] == "stopped"
        row = await database_sync_to_async(FeedState.objects.get)(source="simulated")
        assert row.state == "stopped" and time.time() - row.heartbeat < 10

        # A browser that connects later is told the last known state at once.
        late = WebsocketCommunicator(application, "/ws/market/", headers=HEADERS)
        await late.connect()
        first = await late.receive_json_from(timeout=2)
        assert first["type"] == "status" and first["state"] == "stopped"
        await late.disconnect()
        await comm.disconnect()
