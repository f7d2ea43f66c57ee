"""A dead Redis under open sockets: a private redis-server is killed and restarted on the
same port while a browser's socket stays open in this "daphne". Publishing during the
outage fails loudly on the publisher's side (runfeed keeps the candles stored; see
tests/feed/test_pipeline.py); once Redis is back, the relay's subscription is restored and the
same socket gets live candles again, without reconnecting; and what was published while
Redis was down (stored, never delivered) reaches it as resync snapshots, with a status
saying the live connection was interrupted, then restored."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time

import pytest
from contextlib import contextmanager

from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.test import override_settings

from market import services
from market.core.types import CandleUpdate
from market.live.broadcast import candles_publish, status_publish
from market.web.consumers import INTERRUPTED, RESTORED_DETAIL
from tests import wsclient
from tests.conftest import IN_CI
from tests.servers import free_port
from tests.web.test_consumers import TICKER, alpha, candle, recv, subscribe, upd  # noqa: F401 - fixture
from tests.web.test_slow_client import Series, bar, store, stored

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


class RedisServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is not installed (CI=true: the real service must be tested)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(free_port())
    server.start()
    yield server
    server.kill()


async def eventually_delivered(comm, i: int, layer, seconds: float) -> None:
    """Publish candle ``i`` until the socket gets it (pub/sub is at most once: a publish
    while the relay is still re-subscribing is lost, the next one is not)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await candles_publish(layer, [upd(candle(i))])
        except Exception:  # noqa: BLE001 - Redis not back yet
            pass
        if not await comm.receive_nothing(timeout=0.5):
            frame = await recv(comm)
            if frame["type"] == "candle" and frame["candle"]["time"] == candle(i).time:
                return
        assert time.monotonic() < deadline, f"candle {i} never arrived after Redis came back"


@contextmanager
def private_layer(server: RedisServer):
    """The documented pub/sub layer (docs/deploy.md), on the private redis-server."""
    url = f"redis://127.0.0.1:{server.port}/0"
    config = {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
              "CONFIG": {"hosts": [{"address": url, "socket_timeout": None, "max_connections": 10_000}],
                         "prefix": "restart"}}
    with override_settings(CHANNEL_LAYERS={"default": config}):
        channel_layers.backends.clear()
        try:
            yield
        finally:
            channel_layers.backends.clear()


async def test_live_candles_resume_on_the_same_socket_after_redis_restarts(alpha, private_redis):  # noqa: F811
    with private_layer(private_redis):
        try:
            layer = get_channel_layer()
            async with wsclient.ws() as comm:
                await subscribe(comm)
                await candles_publish(layer, [upd(candle(6))])
                assert (await recv(comm))["candle"]["time"] == candle(6).time

                private_redis.kill()
                with pytest.raises(Exception):  # noqa: B017 - redis-py's ConnectionError, surfaced
                    await candles_publish(layer, [upd(candle(7))])
                await asyncio.sleep(1.5)  # the layer's receiver notices and keeps retrying
                private_redis.start()

                await eventually_delivered(comm, 8, layer, seconds=20)
                await comm.send_json_to({"type": "ping"})
                assert (await recv(comm))["type"] == "pong"
        finally:
            for backend in channel_layers.backends.values():
                await backend.flush()


async def test_candles_published_while_redis_is_down_reach_the_open_socket_when_it_is_back(alpha, private_redis):  # noqa: F811
    """A running "feed" (store each flush, then publish it, as runfeed does) through a ~6 s
    Redis outage: the socket stays open and ends with exactly the stored 1m candles and
    the derived 2m ones, candle for candle, and was told the live connection was
    interrupted, then restored."""
    with private_layer(private_redis):
        layer = get_channel_layer()
        series, statuses, failures = Series(), [], [0]
        stop_feed, stop_reading = asyncio.Event(), asyncio.Event()

        async def feed() -> None:
            i = 6
            while not stop_feed.is_set():
                for k in range(1, 5):  # four growing states of candle i, a tenth of a second apart
                    await database_sync_to_async(store)(alpha, bar(i, k))
                    await database_sync_to_async(services.feed_state_save)(
                        source="simulated", state="live", detail="4 symbols", heartbeat=time.time())
                    try:
                        await candles_publish(layer, [CandleUpdate(TICKER, "1m", bar(i, k), k == 4)])
                        if k == 1:
                            await status_publish(layer, source="simulated", state="live", detail="4 symbols",
                                                 heartbeat=time.time())
                    except Exception:  # noqa: BLE001 - Redis is down: the candle is stored anyway
                        failures[0] += 1
                    await asyncio.sleep(0.1)
                i += 1

        async def read(comm) -> None:
            while not (stop_reading.is_set() and await comm.receive_nothing(timeout=1.0)):
                if await comm.receive_nothing(timeout=0.05):
                    continue
                msg = await recv(comm)
                if msg["type"] == "status":
                    statuses.append(msg)
                else:
                    series.apply(msg)
                if msg["type"] in ("sync", "behind"):
                    await comm.send_json_to({"type": "ack", "seq": msg["seq"]})

        try:
            async with wsclient.ws() as comm:
                series.apply(await subscribe(comm, "1m"))
                series.apply(await subscribe(comm, "2m"))  # derived from 1m: its tracker misses candles too
                reading, feeding = asyncio.create_task(read(comm)), asyncio.create_task(feed())
                await asyncio.sleep(2)
                delivered = series.types.count("candle")
                assert delivered > 0

                private_redis.kill()
                await asyncio.sleep(6)
                assert failures[0] > 0, "publishing failed while Redis was down"
                private_redis.start()
                before = series.types.count("candle")

                deadline = time.monotonic() + 20
                while series.types.count("candle") == before:
                    assert time.monotonic() < deadline, "live candles never resumed after Redis came back"
                    await asyncio.sleep(0.1)
                await asyncio.sleep(4)  # the relay's next probes, and the catch-up
                stop_feed.set()
                await feeding
                stop_reading.set()
                await reading

                assert series.bars["1m"] == await database_sync_to_async(stored)("1m"), "no gap, candle for candle"
                assert series.bars["2m"] == await database_sync_to_async(stored)("2m")
                assert series.resyncs == 2  # one per stream
                states = [(s["state"], s["detail"]) for s in statuses]
                lost = states.index(("reconnecting", INTERRUPTED))
                assert any(detail.startswith(RESTORED_DETAIL) and state == "live" for state, detail in states[lost:])
                assert states[-1] == ("live", "4 symbols"), "then the feed's own heartbeats again"
                await comm.send_json_to({"type": "ping"})
                assert (await recv(comm))["type"] == "pong"
        finally:
            stop_feed.set()
            stop_reading.set()
            for backend in channel_layers.backends.values():
                await backend.flush()
