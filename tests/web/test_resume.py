"""Resume without gaps: a browser dropping its connection at random moments under a
running feed, and resubscribing with ``since``, ends with exactly the stored series."""

from __future__ import annotations

import asyncio
import random

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from market.conf import market
from market.models import Candle
from market.feed.runner import run_feed
from tickchart.asgi import application

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
ROUNDS = 8


async def session(since: int | None, seconds: float, series: dict[int, dict]) -> int | None:
    """One connection: subscribe with ``since``, take what comes for ``seconds``, drop."""
    comm = WebsocketCommunicator(application, "/ws/market/", headers=HEADERS)
    connected, _ = await comm.connect()
    assert connected
    request = {"type": "subscribe", "symbol": "DEMO:ALPHA", "tf": "5s"}
    if since is not None:
        request["since"] = since
    await comm.send_json_to(request)
    last_seen = -1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        # (a receive timeout would cancel the application: peek first)
        if await comm.receive_nothing(timeout=0.05, interval=0.01):
            continue
        msg = await comm.receive_json_from(timeout=2)
        if msg["type"] == "snapshot":
            times = [c["time"] for c in msg["candles"]]
            assert times == sorted(times)
            if since is not None and times:
                assert times[0] == since, "the snapshot starts at the candle we had last"
            for c in msg["candles"]:
                series[c["time"]] = c
            last_seen = times[-1] if times else last_seen
        elif msg["type"] == "candle":
            c = msg["candle"]
            assert c["time"] >= last_seen, "no candle older than one already sent on this connection"
            last_seen = c["time"]
            series[c["time"]] = c
    await comm.disconnect()
    return max(series) if series else since


@pytest.mark.django_db(transaction=True)
async def test_random_drops_and_resumes_end_with_exactly_the_stored_candles():
    rng = random.Random(20261123)
    overrides = {"SIM_BACKFILL_HOURS": 0.02, "SIM_RATE": 20.0, "FLUSH_INTERVAL": 0.1}
    with override_settings(MARKET={**settings.MARKET, **overrides}):
        market.cache_clear()
        stop = asyncio.Event()
        feed = asyncio.create_task(run_feed("simulated", stop))
        await asyncio.sleep(0.5)
        series: dict[int, dict] = {}
        since = None
        for _ in range(ROUNDS):
            since = await session(since, rng.uniform(0.3, 1.2), series)
            await asyncio.sleep(rng.uniform(0.0, 0.8))  # the feed keeps going while we are away
        stop.set()
        await feed

    stored = await database_sync_to_async(lambda: {
        t: {"time": t, "open": o, "high": h, "low": lo, "close": c, "volume": v, "ticks": n}
        for t, o, h, lo, c, v, n in Candle.objects.filter(symbol__ticker="DEMO:ALPHA", timeframe="5s")
        .values_list("time", "open", "high", "low", "close", "volume", "ticks")
    })()
    first, last = min(series), max(series)
    expected = {t: c for t, c in stored.items() if first <= t < last}
    got = {t: c for t, c in series.items() if t < last}  # the newest may still have been open
    assert len(expected) > 10
    assert sorted(got) == sorted(expected), "no gap and nothing extra"
    assert got == expected, "every candle the browser holds is the stored one"
