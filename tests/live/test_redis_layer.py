"""The real Redis channel layer, configured exactly as settings does with REDIS_URL.

Each ``RedisPubSubChannelLayer`` instance keeps its own connections, so two instances in
one process stand for two daphne processes (and a third for runfeed) meeting on Redis.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.db import connections
from django.test import override_settings

from market import services
from market.live import broadcast
from market.live.broadcast import EVENT_TYPE, candles_publish, group_name
from market.core.types import Candle, CandleUpdate

pytestmark = pytest.mark.services

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "tickchart" / "settings.py"
TICKER = "DEMO:ALPHA"
T0 = 1_731_999_960
HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


def redis_channel_layers(url: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """CHANNEL_LAYERS as tickchart/settings.py computes it with REDIS_URL set (read from a
    fresh execution of the settings file, so a change there is tested here)."""
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("TICKCHART_CHANNEL_PREFIX", prefix)
    spec = importlib.util.spec_from_file_location(f"_settings_{prefix}", SETTINGS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    layers = module.CHANNEL_LAYERS
    assert layers["default"]["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert layers["default"]["CONFIG"] == {
        "hosts": [{"address": url, "socket_timeout": None, "max_connections": 10_000}],
        "prefix": prefix,
    }
    return layers


@pytest.fixture
def layer_config(redis_url, monkeypatch) -> dict[str, Any]:
    prefix = f"test{uuid.uuid4().hex[:12]}"
    return redis_channel_layers(redis_url, prefix, monkeypatch)["default"]["CONFIG"]


@pytest.fixture
async def make_layer(layer_config):
    """A fresh layer per call ("one per process"); all flushed at the end."""
    made: list[RedisPubSubChannelLayer] = []

    def make() -> RedisPubSubChannelLayer:
        layer = RedisPubSubChannelLayer(**layer_config)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        await layer.flush()


def candle(i: int, ticks: int = 10) -> Candle:
    return Candle(T0 + 60 * i, 100.0 + i, 105.0 + i, 95.0 + i, 101.0 + i, 1000.0 + i, ticks)


async def test_group_send_of_candle_events_reaches_subscribers_in_two_processes(make_layer):
    daphne_a, daphne_b, runfeed = make_layer(), make_layer(), make_layer()
    group = group_name(TICKER, "1m")
    chan_a = await daphne_a.new_channel()
    chan_b = await daphne_b.new_channel()
    await daphne_a.group_add(group, chan_a)
    await daphne_b.group_add(group, chan_b)

    sent = await candles_publish(runfeed, [CandleUpdate(TICKER, "1m", candle(1), final=True)])
    assert sent == 1
    got_a = await asyncio.wait_for(daphne_a.receive(chan_a), 5)
    got_b = await asyncio.wait_for(daphne_b.receive(chan_b), 5)
    for got in (got_a, got_b):
        assert got["type"] == EVENT_TYPE
        assert (got["symbol"], got["tf"], got["final"]) == (TICKER, "1m", True)
        assert got["candle"] == candle(1).as_dict()
        assert '"type":"candle"' in got["text"] and '"symbol":"DEMO:ALPHA"' in got["text"]

    # Other groups do not reach them.
    await candles_publish(runfeed, [CandleUpdate(TICKER, "5m", candle(2), final=False)])
    await candles_publish(runfeed, [CandleUpdate(TICKER, "1m", candle(3), final=False)])
    assert (await asyncio.wait_for(daphne_a.receive(chan_a), 5))["candle"]["time"] == T0 + 180
    assert (await asyncio.wait_for(daphne_b.receive(chan_b), 5))["candle"]["time"] == T0 + 180


async def test_a_large_flush_is_pipelined_and_arrives_whole_and_in_order_per_group(make_layer):
    """A catch-up flush of thousands of candles goes out in Redis pipelines (several
    ``PUBLISH_BATCH`` chunks here), and a subscriber of each group gets every one of its
    events, exactly as ``group_send`` would have sent them, in the order given."""
    daphne, runfeed = make_layer(), make_layer()
    groups = {(TICKER, "1m"), (TICKER, "5m"), ("DEMO:BETA", "1m")}
    chans = {}
    for ticker, tf in groups:
        chans[(ticker, tf)] = chan = await daphne.new_channel()
        await daphne.group_add(group_name(ticker, tf), chan)
    per_group = broadcast.PUBLISH_BATCH  # three groups: three chunks at least
    updates = [CandleUpdate(ticker, tf, candle(i), final=True)
               for i in range(per_group) for ticker, tf in sorted(groups)]
    updates.append(CandleUpdate("DEMO:NOBODY", "1m", candle(0), final=True))  # a group no one is in
    assert broadcast.pipelined(runfeed)
    assert await candles_publish(runfeed, updates) == len(updates)
    for key, chan in chans.items():
        got = [await asyncio.wait_for(daphne.receive(chan), 5) for _ in range(per_group)]
        assert [e["candle"]["time"] for e in got] == [candle(i).time for i in range(per_group)], key
        assert all((e["type"], e["symbol"], e["tf"], e["final"], e["revised"]) == (EVENT_TYPE, *key, True, False)
                   for e in got)
        assert got[7]["candle"] == candle(7).as_dict() and '"type":"candle"' in got[7]["text"]
    with pytest.raises(asyncio.TimeoutError):  # nothing more, nothing doubled
        await asyncio.wait_for(daphne.receive(chans[(TICKER, "1m")]), 0.5)


async def test_idle_subscriber_survives_a_wait_longer_than_socket_timeout(make_layer, caplog):
    """redis-py 8 defaults socket_timeout to 5 s; settings pass None so a subscriber (and a
    publisher) that hears nothing for a while is not cut off. (With channels-redis 4.3 and
    redis-py 8.1 the pub/sub reader polls with 0.1 s reads, so this also passes without the
    setting; the setting itself is pinned by redis_channel_layers().)"""
    daphne, runfeed = make_layer(), make_layer()
    group = group_name(TICKER, "1m")
    chan = await daphne.new_channel()
    await daphne.group_add(group, chan)

    # The publisher's pooled connection exists before the wait, and idles through it too.
    await candles_publish(runfeed, [CandleUpdate("DEMO:OTHER", "1m", candle(0), final=False)])
    with caplog.at_level(logging.WARNING):
        waiting = asyncio.ensure_future(daphne.receive(chan))
        await asyncio.sleep(7)
        assert not waiting.done(), waiting  # neither a message nor an exception
        await candles_publish(runfeed, [CandleUpdate(TICKER, "1m", candle(4), final=False)])
        got = await asyncio.wait_for(waiting, 5)
    assert got["candle"] == candle(4).as_dict()
    problems = [r for r in caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith(("channels_redis", "redis"))]
    assert problems == []


@pytest.mark.django_db(transaction=True)
async def test_consumer_end_to_end_over_redis(layer_config, make_symbol):
    from channels.db import database_sync_to_async

    symbol = await database_sync_to_async(make_symbol)(TICKER, exchange="DEMO")
    await database_sync_to_async(services.candle_upsert_many)(
        updates=[CandleUpdate(TICKER, "1m", candle(i), final=True) for i in range(3)],
        symbol_ids={TICKER: symbol.id},
    )
    config = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": layer_config}}
    from tickchart.asgi import application

    channel_layers.backends.clear()
    try:
        with override_settings(CHANNEL_LAYERS=config):
            channel_layers.backends.clear()
            layer = get_channel_layer()
            assert isinstance(layer, RedisPubSubChannelLayer)
            comm = WebsocketCommunicator(application, "/ws/market/", headers=HEADERS)
            connected, _ = await comm.connect(timeout=5)
            assert connected
            try:
                await comm.send_json_to({"type": "subscribe", "symbol": TICKER, "tf": "1m"})
                snap = await comm.receive_json_from(timeout=5)
                assert snap["type"] == "snapshot"
                assert [c["time"] for c in snap["candles"]] == [T0, T0 + 60, T0 + 120]

                # runfeed lives in another process: publish through a separate layer instance.
                runfeed = RedisPubSubChannelLayer(**layer_config)
                try:
                    await candles_publish(runfeed, [CandleUpdate(TICKER, "1m", candle(3), final=False)])
                    frame = await comm.receive_json_from(timeout=5)
                    assert frame == {"type": "candle", "symbol": TICKER, "tf": "1m",
                                     "candle": candle(3).as_dict()}
                    # ... and through the app's own layer, as an in-process runfeed would.
                    await candles_publish(layer, [CandleUpdate(TICKER, "1m", candle(4), final=False)])
                    frame = await comm.receive_json_from(timeout=5)
                    assert frame["candle"] == candle(4).as_dict()
                    assert await comm.receive_nothing(timeout=0.5)
                finally:
                    await runfeed.flush()
            finally:
                await comm.disconnect(timeout=5)
                await layer.flush()
    finally:
        channel_layers.backends.clear()
        # The consumer read in asgiref's sync thread; release that connection (PostgreSQL).
        await sync_to_async(connections.close_all, thread_sensitive=True)()
