"""A dead Redis under open sockets: a private redis-server is killed and restarted on the
same port while a browser's socket stays open in this "daphne". Publishing during the
outage fails loudly on the publisher's side (runfeed keeps the candles stored; see
tests/feed/test_pipeline.py); once Redis is back, the relay's subscription is restored and the
same socket gets live candles again, without reconnecting."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time

import pytest
from channels.layers import channel_layers, get_channel_layer
from django.test import override_settings

from market.live.broadcast import candles_publish
from tests import wsclient
from tests.conftest import IN_CI
from tests.servers import free_port
from tests.web.test_consumers import TICKER, alpha, candle, recv, subscribe, upd  # noqa: F401 - fixture

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


async def test_live_candles_resume_on_the_same_socket_after_redis_restarts(alpha, private_redis):  # noqa: F811
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    config = {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
              "CONFIG": {"hosts": [{"address": url, "socket_timeout": None, "max_connections": 10_000}],
                         "prefix": "restart"}}
    with override_settings(CHANNEL_LAYERS={"default": config}):
        channel_layers.backends.clear()
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
            channel_layers.backends.clear()
