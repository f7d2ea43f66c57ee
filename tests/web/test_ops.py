"""Operations endpoints and metrics."""

from __future__ import annotations

import time

import pytest
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from prometheus_client import CollectorRegistry, generate_latest

from market import services
from market.core.engine import CandleEngine
from market.core.sessions import SessionBook
from market.core.timeframes import TimeframePlan
from market.core.types import Tick
from market.metrics import PipelineCollector
from market.feed.pipeline import Pipeline


def test_healthz_needs_nothing(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readyz_checks_database_layer_and_reports_feed_heartbeats(client):
    services.feed_state_save(source="simulated", state="live", detail="", heartbeat=time.time() - 3)
    body = client.get("/readyz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok" and body["checks"]["channel_layer"] == "ok"
    feed = body["checks"]["feeds"]["simulated"]
    assert feed["state"] == "live" and 2 <= feed["heartbeat_age"] < 30


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_the_channel_layer_is_down(client):
    dead = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                        "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 0.3}]}}}
    with override_settings(CHANNEL_LAYERS=dead):
        channel_layers.backends.clear()
        try:
            response = client.get("/readyz")
        finally:
            channel_layers.backends.clear()
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"].startswith("error")


@pytest.mark.django_db(transaction=True)
def test_readyz_can_require_a_live_feed(client, settings):
    settings.MARKET = {**settings.MARKET, "READY_MAX_FEED_AGE": 10}
    services.feed_state_save(source="simulated", state="live", detail="", heartbeat=time.time() - 60)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "no live feed heartbeat within 10s" in response.json()["checks"]["feed"]


@pytest.mark.django_db(transaction=True)
async def test_metrics_count_connected_clients():
    from tickchart.asgi import application

    def clients() -> float:
        text = generate_latest().decode()
        return float(next(line.split()[-1] for line in text.splitlines() if line.startswith("tickchart_ws_clients ")))

    before = clients()
    comm = WebsocketCommunicator(application, "/ws/market/", headers=[(b"origin", b"http://localhost")])
    await comm.connect()
    assert clients() == before + 1
    await comm.disconnect()
    assert clients() == before


async def test_pipeline_collector_exposes_ticks_by_outcome():
    async def noop(updates, checkpoint=None):
        return len(updates)

    engine = CandleEngine(TimeframePlan.build(["5s"]).stored, SessionBook())
    engine.register("X", "DEMO")
    p = Pipeline(engine, store=noop, publish=noop, source="simulated")
    p.add(Tick("X", 1_795_000_000, 1.0))
    p.add(Tick("X", 1_795_000_000, 1.0))  # repeat
    p.add(Tick("UNKNOWN", 1_795_000_000, 1.0))
    await p.flush()
    registry = CollectorRegistry()
    registry.register(PipelineCollector(p))
    text = generate_latest(registry).decode()
    assert 'tickchart_feed_ticks_total{outcome="accepted",source="simulated"} 1.0' in text
    assert 'tickchart_feed_ticks_total{outcome="repeat",source="simulated"} 1.0' in text
    assert 'tickchart_feed_ticks_total{outcome="unknown_symbol",source="simulated"} 1.0' in text
    assert 'tickchart_candles_written_total{source="simulated"} 1.0' in text


async def test_loop_collector_counts_the_tasks_of_the_watched_loop():
    import asyncio

    from market.metrics import LoopCollector

    collector = LoopCollector()
    registry = CollectorRegistry()
    registry.register(collector)

    def tasks() -> list[str]:
        return [ln for ln in generate_latest(registry).decode().splitlines() if ln.startswith("tickchart_event_loop_tasks ")]

    assert tasks() == []  # no loop watched yet: no sample rather than a made-up 0
    collector.loop = asyncio.get_running_loop()
    before = float(tasks()[0].split()[-1])
    gate = asyncio.Event()
    held = [asyncio.create_task(gate.wait()) for _ in range(5)]
    await asyncio.sleep(0)
    assert float(tasks()[0].split()[-1]) == before + 5
    gate.set()
    await asyncio.gather(*held)
    assert float(tasks()[0].split()[-1]) == before


def test_loop_counter_is_a_prometheus_counter():
    from market.metrics import LoopCounter

    counter = LoopCounter("tickchart_test_things", "Things")
    registry = CollectorRegistry()
    registry.register(counter)
    counter.inc()
    counter.inc(2)
    text = generate_latest(registry).decode()
    assert any(ln.startswith("# TYPE tickchart_test_things") and ln.endswith(" counter") for ln in text.splitlines())
    assert "tickchart_test_things_total 3.0" in text


@pytest.mark.django_db(transaction=True)
async def test_deliveries_are_counted_in_the_metrics():
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from market.core.types import Candle, CandleUpdate
    from market.live.broadcast import candles_publish
    from tickchart.asgi import application

    def delivered() -> float:
        text = generate_latest().decode()
        return float(next(line.split()[-1] for line in text.splitlines()
                          if line.startswith("tickchart_ws_deliveries_total ")))

    await sync_to_async(services.symbol_register)(ticker="DEMO:ALPHA", exchange="DEMO", name="Alpha", source="simulated")
    before = delivered()
    comm = WebsocketCommunicator(application, "/ws/market/", headers=[(b"origin", b"http://localhost")])
    await comm.connect()
    await comm.send_json_to({"type": "subscribe", "symbol": "DEMO:ALPHA", "tf": "1m"})
    while (await comm.receive_json_from(timeout=5))["type"] != "snapshot":
        pass
    c = Candle(1_800_000_000, 1.0, 2.0, 0.5, 1.5, 10.0, 3)
    await candles_publish(get_channel_layer(), [CandleUpdate("DEMO:ALPHA", "1m", c, False)])
    while (await comm.receive_json_from(timeout=5))["type"] != "candle":
        pass
    assert delivered() == before + 1
    await comm.disconnect()
