"""The pulse service end to end on the real channel layer and database: warm-up from stored
candles, live 1m candle messages in, one pulse frame out on the ``pulse`` group, stress
events stored and POSTed to a loopback webhook."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connections

from market import services
from market.live.broadcast import candles_publish
from market.core.pulse import PulseConfig, Thresholds
from market.core.types import Candle, CandleUpdate
from market.models import PulseEvent, Symbol
from market.pulse.service import PULSE_GROUP, PulseService

pytestmark = pytest.mark.django_db(transaction=True)

CONF = PulseConfig(thresholds={"default": Thresholds(0.005, 0.01, 2.5), "crypto": Thresholds(0.01, 0.02, 2.5)},
                   corr_min_points=3)


@pytest.fixture(autouse=True)
async def _close_db():
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", Hook.received
    server.shutdown()
    server.server_close()


def seed(now_minute: int) -> dict[str, list[tuple[int, float]]]:
    """Two symbols with 20 stored 1m candles each ending one minute before ``now_minute``."""
    series = {
        "DEMO:A": [(now_minute - 60 * (20 - i), 100.0 * (1 + 0.001 * math.sin(i))) for i in range(20)],
        "BINANCE:BTCUSDT": [(now_minute - 60 * (20 - i), 50000.0 * (1 + 0.002 * math.cos(i))) for i in range(20)],
    }
    for ticker, points in series.items():
        kind = "crypto" if ticker.startswith("BINANCE") else "equity"
        sym = Symbol.objects.create(ticker=ticker, exchange=ticker.split(":")[0], kind=kind, name=ticker)
        services.candle_upsert_many(
            updates=[CandleUpdate(ticker, "1m", Candle(t, c, c, c, c, 1.0, 1), True) for t, c in points],
            symbol_ids={ticker: sym.pk})
    return series


async def next_frame(layer, channel: str, predicate, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no matching pulse frame"
        msg = await asyncio.wait_for(layer.receive(channel), remaining)
        frame = json.loads(msg["text"])
        if predicate(frame):
            return frame


async def test_live_candles_become_a_pulse_frame_stored_events_and_webhooks(webhook):
    url, received = webhook
    now_minute = int(time.time() // 60) * 60
    series = await database_sync_to_async(seed)(now_minute)
    layer = get_channel_layer()
    listener = await layer.new_channel("test.")
    await layer.group_add(PULSE_GROUP, listener)
    service = PulseService(layer, config=CONF, interval=0.05, webhook_url=url, base="DEMO:A")
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        deadline = time.monotonic() + 5
        while len(service.groups) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        # Warm-up happened and made no events: the past is not news.
        assert service.engine.series("DEMO:A")[1] == [c for _, c in series["DEMO:A"]]
        last_a = series["DEMO:A"][-1][1]
        jump = last_a * 1.02  # +2 % in a minute: a move_1m (and move_5m) for an equity
        await candles_publish(layer, [
            CandleUpdate("DEMO:A", "1m", Candle(now_minute, last_a, jump, last_a, jump, 5.0, 3), False),
            CandleUpdate("DEMO:A", "5m", Candle(now_minute, 1, 1, 1, 1, 1.0, 1), False),  # other groups: unheard
        ])
        frame = await next_frame(layer, listener, lambda f: f["events"])
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await layer.group_discard(PULSE_GROUP, listener)

    movers = {m["symbol"]: m for m in frame["movers"]}
    a = movers["DEMO:A"]
    assert a["last"] == jump and a["class"] == "equity" and a["time"] == now_minute
    assert math.isclose(a["r1m"], 0.02)
    assert math.isclose(a["r5m"], jump / series["DEMO:A"][-5][1] - 1)
    assert math.isclose(a["r15m"], jump / series["DEMO:A"][-15][1] - 1)
    assert movers["BINANCE:BTCUSDT"]["class"] == "crypto"
    kinds = sorted(e["kind"] for e in frame["events"])
    assert kinds == ["move_1m", "move_5m"]
    card = frame["correlation"]
    assert card["base"] == "DEMO:A" and card["top"][0]["symbol"] == "BINANCE:BTCUSDT"

    stored = await database_sync_to_async(lambda: list(PulseEvent.objects.values_list("symbol", "kind")))()
    assert sorted(stored) == [("DEMO:A", "move_1m"), ("DEMO:A", "move_5m")]
    assert sorted(body["kind"] for _, body in received) == ["move_1m", "move_5m"]
    assert all(ctype == "application/json" and body["symbol"] == "DEMO:A" for ctype, body in received)
    assert service.webhooks_sent == 2 and service.webhook_failures == 0


async def test_a_dead_webhook_is_counted_and_the_pulse_goes_on():
    now_minute = int(time.time() // 60) * 60
    series = await database_sync_to_async(seed)(now_minute)
    layer = get_channel_layer()
    service = PulseService(layer, config=CONF, interval=0.05, webhook_url="http://127.0.0.1:9/none")
    service.channel = await layer.new_channel("pulse.")
    await service.refresh_universe()
    last = series["BINANCE:BTCUSDT"][-1][1]
    service.on_message({"type": "candle.update", "symbol": "BINANCE:BTCUSDT", "tf": "1m",
                        "candle": {"time": now_minute, "close": last * 0.95}})
    service.on_message({"type": "candle.update", "symbol": "BINANCE:BTCUSDT", "tf": "1m", "candle": {}})
    frame = await service.tick()
    assert [e["kind"] for e in frame["events"]] == ["move_1m", "move_5m"]
    await asyncio.wait(service._webhook_tasks, timeout=5)
    assert service.webhook_failures == 2 and service.events_stored == 2
    assert await service.tick() is None  # nothing changed: nothing sent


async def test_deactivated_symbols_leave_the_pulse_and_new_ones_join_warmed_up():
    now_minute = int(time.time() // 60) * 60
    await database_sync_to_async(seed)(now_minute)
    layer = get_channel_layer()
    service = PulseService(layer, config=CONF, interval=0.05)
    service.channel = await layer.new_channel("pulse.")
    assert await service.refresh_universe() == 2
    await database_sync_to_async(lambda: Symbol.objects.filter(ticker="DEMO:A").update(active=False))()
    await database_sync_to_async(lambda: Symbol.objects.create(ticker="DEMO:NEW", exchange="DEMO", name="n"))()
    assert await service.refresh_universe() == 1
    assert sorted(service.groups) == ["BINANCE:BTCUSDT", "DEMO:NEW"]
    assert sorted(service.engine.watched()) == ["BINANCE:BTCUSDT", "DEMO:NEW"]
    # The dropped symbol's candles no longer reach the pulse.
    service.on_message({"type": "candle.update", "symbol": "DEMO:A", "tf": "1m",
                        "candle": {"time": now_minute, "close": 1.0}})
    assert service.updates == 0
