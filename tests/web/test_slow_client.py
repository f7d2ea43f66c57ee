"""Slow clients: a browser that stops reading (or acking) cannot grow the server's memory
or slow the others; it is told it is behind, and once it acks again it is resynced to
exactly the stored series (docs/deploy.md "Slow clients", market.core.outbox).

The first tests drive the consumer in-process (whatever layer and database the settings
select); the last runs a real daphne process over Redis with a client whose socket stops
reading, and watches the process's memory.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import override_settings

from market import selectors, services
from market.web import consumers
from market.conf import market
from market.web.consumers import MarketConsumer
from market.web.protocol import CLOSE_TOO_SLOW
from market.core.timeframes import Timeframe
from market.core.types import Candle, CandleUpdate
from tests.conftest import REDIS_URL, need_service
from tests.servers import ROOT, daphne as serve
from tests.web.test_consumers import HEADERS, T0, TICKER, TIMEOUT, publish, recv, subscribe
from tickchart.asgi import application

WINDOW = 32


def flow(**extra: Any):
    """A small window; and a message-rate limit that lets a tiny window's acks through
    (with the default window a client acks a few times a second at most)."""
    return override_settings(MARKET={**settings.MARKET, "WS_WINDOW_FRAMES": WINDOW, "WS_WINDOW_BYTES": 64 * 1024,
                                     "WS_MESSAGES_PER_SECOND": 10_000, "WS_MESSAGE_BURST": 10_000, **extra})


@pytest.fixture(autouse=True)
async def _close_consumer_db_connections():
    """The consumer reads in asgiref's shared sync thread (see tests/web/test_consumers.py)."""
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


def bar(i: int, ticks: int) -> Candle:
    base = 100.0 + i
    return Candle(time=T0 + 60 * i, open=base, high=base + ticks, low=base - 1, close=base + ticks / 10,
                  volume=10.0 * ticks, ticks=ticks)


def store(symbol, *candles: Candle) -> None:
    services.candle_upsert_many(updates=[CandleUpdate(symbol=TICKER, timeframe="1m", candle=c, final=False) for c in candles],
                                symbol_ids={TICKER: symbol.id})


def stored(tf: str) -> dict[int, dict]:
    symbol = selectors.symbol_get(ticker=TICKER)
    return {c.time: c.as_dict() for c in selectors.candle_list(symbol=symbol, tf=Timeframe.parse(tf), limit=10_000)}


@pytest.fixture
def alpha(make_symbol):
    symbol = make_symbol(TICKER, exchange="DEMO")
    store(symbol, *(bar(i, 5) for i in range(3)))
    return symbol


async def connect() -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/ws/market/", headers=HEADERS)
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    return comm


def outboxes() -> list:
    # type(), not isinstance(): isinstance() asks __class__, which makes lazy objects left by
    # other tests (the test client's resolver_match) evaluate themselves.
    return [o.outbox for o in gc.get_objects() if issubclass(type(o), MarketConsumer) and "outbox" in o.__dict__]


async def queued(comm: WebsocketCommunicator) -> list[dict]:
    """Everything the consumer has sent that the client has not read yet."""
    frames = []
    while not await comm.receive_nothing(timeout=0.2, interval=0.01):
        frames.append(await comm.receive_json_from(timeout=TIMEOUT))
    return frames


async def recv_skipping_syncs(comm: WebsocketCommunicator) -> dict:
    while (msg := await recv(comm))["type"] == "sync":
        pass
    return msg


class Series:
    """What a browser holds per (symbol, tf), applying frames the way static/market/js/socket.js
    does."""

    def __init__(self) -> None:
        self.bars: dict[str, dict[int, dict]] = {}
        self.last_seen: dict[str, int] = {}
        self.types: list[str] = []
        self.resyncs = 0

    def apply(self, msg: dict) -> None:
        self.types.append(msg["type"])
        if msg["type"] == "snapshot":
            bars = self.bars.setdefault(msg["tf"], {})
            rows = msg["candles"]
            if msg.get("resync"):
                self.resyncs += 1
                assert rows and rows[0]["time"] == msg["since"], "a resync starts at the candle we had last"
            else:
                bars.clear()
            for c in rows:
                bars[c["time"]] = c
            if rows:
                self.last_seen[msg["tf"]] = rows[-1]["time"]
        elif msg["type"] == "candle":
            c = msg["candle"]
            assert c["time"] >= self.last_seen.get(msg["tf"], -1), "nothing older than what was sent"
            self.last_seen[msg["tf"]] = c["time"]
            self.bars.setdefault(msg["tf"], {})[c["time"]] = c


async def reader(comm: WebsocketCommunicator, series: Series, stop: asyncio.Event) -> None:
    """A browser that reads everything and acks every sync at once."""
    while not (stop.is_set() and await comm.receive_nothing(timeout=0.3, interval=0.01)):
        if await comm.receive_nothing(timeout=0.02, interval=0.005):
            continue
        msg = await comm.receive_json_from(timeout=TIMEOUT)
        series.apply(msg)
        if msg["type"] in ("sync", "behind"):
            await comm.send_json_to({"type": "ack", "seq": msg["seq"]})


async def feed(symbol, candles: range, updates: int, reading: Series | None = None) -> int:
    """Store each candle's final state, then publish ``updates`` growing states of it (as
    runfeed does: store, then publish). Returns the frames published.

    With ``reading``, each frame waits until that client has it: the client keeps up by
    construction (on a loaded machine a reader sharing the test's event loop can fall a
    window behind, and rightly be told so), and one frame it never gets fails here."""
    n = 0
    for i in candles:
        await database_sync_to_async(store)(symbol, bar(i, updates))
        for k in range(1, updates + 1):
            await publish(CandleUpdate(symbol=TICKER, timeframe="1m", candle=bar(i, k), final=k == updates))
            n += 1
            await asyncio.sleep(0.002)  # the in-process layer holds 100 messages per channel
            if reading is not None:
                deadline = time.monotonic() + TIMEOUT
                while reading.types.count("candle") < n:
                    assert time.monotonic() < deadline, f"the reading client never got frame {n}"
                    await asyncio.sleep(0.002)
    return n


# -- in-process ----------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_a_client_that_never_acks_gets_the_window_then_behind_while_another_gets_everything(alpha):
    with flow():
        market.cache_clear()
        slow, fast = await connect(), await connect()
        series, fast_series, stop = Series(), Series(), asyncio.Event()
        series.apply(await subscribe(slow, "1m"))
        series.apply(await subscribe(slow, "2m"))  # a derived stream, on the same group
        fast_series.apply(await subscribe(fast, "1m"))
        fast_task = asyncio.create_task(reader(fast, fast_series, stop))

        published = await feed(alpha, range(3, 43), updates=5, reading=fast_series)  # 200 frames, 40 new candles

        stop.set()
        await fast_task
        assert fast_series.types.count("candle") == published, "the fast client got every frame"
        assert "behind" not in fast_series.types
        assert fast_series.bars["1m"] == await database_sync_to_async(stored)("1m")

        frames = await queued(slow)
        kinds = [f["type"] for f in frames]
        assert kinds.count("behind") == 1, kinds
        live = kinds.index("behind")
        assert kinds[live + 1:] == [], "nothing after behind while the client does not ack"
        assert len([k for k in kinds if k in ("candle", "snapshot")]) <= WINDOW, kinds
        box = next(b for b in outboxes() if b.behind)
        assert len(box.held) <= 2, "held: one frame per stream, whatever was published"
        assert box.dropped > published // 2

        # The slow client reads what it had, acks, and is resynced.
        for f in frames:
            series.apply(f)
        await slow.send_json_to({"type": "ack", "seq": frames[live]["seq"]})
        for f in await queued(slow):
            series.apply(f)
            if f["type"] == "sync":
                await slow.send_json_to({"type": "ack", "seq": f["seq"]})
        assert series.types[-1] == "caught_up", series.types[-6:]
        assert series.resyncs == 2, "both streams resynced from the database (buckets closed meanwhile)"
        assert series.bars["1m"] == await database_sync_to_async(stored)("1m"), "exactly the stored series"
        assert series.bars["2m"] == await database_sync_to_async(stored)("2m")

        # Live again: the next update is relayed as a candle frame.
        await publish(CandleUpdate(symbol=TICKER, timeframe="1m", candle=bar(43, 1), final=False))
        after = await queued(slow)
        assert [f["type"] for f in after if f["type"] == "candle"] == ["candle", "candle"], after  # 1m and 2m
        await slow.disconnect()
        await fast.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_updates_of_one_candle_only_catch_up_with_the_newest_frame_and_no_database_read(alpha, monkeypatch):
    with flow():
        market.cache_clear()
        slow = await connect()
        snap = await subscribe(slow, "1m")
        last = snap["candles"][-1]["time"]
        reads = []
        monkeypatch.setattr(consumers, "_resync_rows", lambda *a: reads.append(a) or [])
        for k in range(6, 60):  # the newest stored candle keeps changing
            await publish(CandleUpdate(symbol=TICKER, timeframe="1m", candle=bar(2, k), final=False))
            await asyncio.sleep(0.002)
        frames = await queued(slow)
        behind = next(f for f in frames if f["type"] == "behind")
        await slow.send_json_to({"type": "ack", "seq": behind["seq"]})
        after = await queued(slow)
        candles = [f for f in after if f["type"] == "candle"]
        assert [c["candle"]["ticks"] for c in candles] == [59] and candles[0]["candle"]["time"] == last
        assert after[-1] == {"type": "caught_up"}
        assert reads == []
        await slow.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_client_behind_that_never_acks_is_closed_with_4008_after_it_was_told(alpha, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(consumers, "time", type("Clock", (), {"monotonic": staticmethod(lambda: clock[0])}))
    with flow(WS_STALL_SECONDS=30):
        market.cache_clear()
        slow = await connect()
        await subscribe(slow, "1m")
        for k in range(6, 6 + WINDOW + 4):
            await publish(CandleUpdate(symbol=TICKER, timeframe="1m", candle=bar(2, k), final=False))
            await asyncio.sleep(0.002)
        outputs = []
        while not outputs or outputs[-1].get("text", "").find('"behind"') < 0:
            outputs.append(await slow.receive_output(timeout=TIMEOUT))  # (the client reads, but never acks)
        clock[0] += 31
        await publish(CandleUpdate(symbol=TICKER, timeframe="1m", candle=bar(2, 99), final=False))
        while outputs[-1]["type"] != "websocket.close":
            outputs.append(await slow.receive_output(timeout=TIMEOUT))
        texts = [json.loads(o["text"])["type"] for o in outputs if o["type"] == "websocket.send"]
        assert texts.count("behind") == 1
        assert outputs[-1]["code"] == CLOSE_TOO_SLOW
        await slow.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_bad_ack_is_an_error_and_the_connection_stays(alpha):
    with flow():
        market.cache_clear()
        comm = await connect()
        for seq in (10**6, -1, "3", None):
            await comm.send_json_to({"type": "ack", "seq": seq})
            reply = await recv_skipping_syncs(comm)
            assert reply["type"] == "error" and "ack seq" in reply["message"], reply
        await comm.send_json_to({"type": "ping"})
        assert (await recv_skipping_syncs(comm))["type"] == "pong"
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_window_zero_turns_flow_control_off(alpha):
    with flow(WS_WINDOW_FRAMES=0):
        market.cache_clear()
        comm = await connect()
        await subscribe(comm, "1m")
        for k in range(6, 6 + 3 * WINDOW):
            await publish(CandleUpdate(symbol=TICKER, timeframe="1m", candle=bar(2, k), final=False))
            await asyncio.sleep(0.002)
        kinds = [f["type"] for f in await queued(comm)]
        assert kinds == ["candle"] * 3 * WINDOW
        await comm.disconnect()


# -- a real daphne process ------------------------------------------------------------------
def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def daphne_over_redis(tmp_path):
    need_service("Redis", REDIS_URL, 6379)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("DATABASE_URL", None)
    env.update(TICKCHART_DB_PATH=str(tmp_path / "slow.sqlite3"), REDIS_URL=REDIS_URL, DJANGO_DEBUG="1",
               TICKCHART_CHANNEL_PREFIX=f"slow{uuid.uuid4().hex[:8]}", LOG_LEVEL="WARNING",
               # 6 kB frames: a sync (and an ack) every 21 frames, more than the default message rate
               TICKCHART_WS_MESSAGES_PER_SECOND="10000", TICKCHART_WS_MESSAGE_BURST="10000")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    code = "from market.models import Symbol\nSymbol.objects.create(ticker='DEMO:ALPHA', exchange='DEMO')"
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    with serve(env, tmp_path / "daphne.log") as (port, proc):
        yield env, port, proc


@pytest.mark.services
def test_a_stalled_socket_does_not_grow_daphne_memory_and_the_others_keep_up(daphne_over_redis):
    """18 MB of frames are published to a client whose socket stopped reading: daphne's
    memory stays within a few MB, and a reading client gets every frame."""
    env, port, proc = daphne_over_redis
    asyncio.run(_stalled_socket_case(env, port, proc.pid))


async def _stalled_socket_case(env: dict, port: int, pid: int) -> None:
    import websockets
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from market.live.broadcast import EVENT_TYPE, group_name

    url, origin = f"ws://127.0.0.1:{port}/ws/market/", f"http://127.0.0.1:{port}"
    sub = json.dumps({"type": "subscribe", "symbol": "DEMO:ALPHA", "tf": "5s"})
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled = await websockets.connect(url, origin=origin, sock=raw, ping_interval=None, max_queue=None)
    fast = await websockets.connect(url, origin=origin, ping_interval=None, max_queue=None)
    for ws in (stalled, fast):
        await ws.send(sub)
        while json.loads(await ws.recv())["type"] != "snapshot":
            pass
    stalled.transport.pause_reading()  # the browser stops reading its socket

    count, pad = 3000, "x" * 6000
    got: list[int] = []
    fast_behind = []

    async def read_fast() -> None:
        while not got or got[-1] < count:
            msg = orjson.loads(await asyncio.wait_for(fast.recv(), 30))
            if msg["type"] == "candle":
                got.append(msg["candle"]["ticks"])
            elif msg["type"] in ("sync", "behind"):
                await fast.send(json.dumps({"type": "ack", "seq": msg["seq"]}))
                if msg["type"] == "behind":
                    fast_behind.append(len(got))

    reading = asyncio.create_task(read_fast())
    layer = RedisPubSubChannelLayer(hosts=[{"address": env["REDIS_URL"], "socket_timeout": None}],
                                    prefix=env["TICKCHART_CHANNEL_PREFIX"])
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    before = rss_kb(pid)
    group = group_name("DEMO:ALPHA", "5s")
    for n in range(1, count + 1):
        candle = {"time": 1_800_000_000, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0,
                  "ticks": n}
        text = orjson.dumps({"type": "candle", "symbol": "DEMO:ALPHA", "tf": "5s", "candle": candle,
                             "pad": pad}).decode()
        await layer.group_send(group, {"type": EVENT_TYPE, "symbol": "DEMO:ALPHA", "tf": "5s", "candle": candle,
                                       "final": False, "text": text})
        if n % 50 == 0:
            await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(reading, 60)
    except (asyncio.TimeoutError, TimeoutError):
        raise AssertionError(f"the reading client stopped after {len(got)} of {count} frames") from None
    grown_mb = (rss_kb(pid) - before) / 1024
    print(f"daphne RSS {before / 1024:.1f} MB -> +{grown_mb:.1f} MB; {time.monotonic() - t0:.1f} s")
    assert got == sorted(set(got)) and got[-1] == count, "in order, up to the newest"
    if not fast_behind:  # (it may fall behind too, when this process starves it of CPU)
        assert got == list(range(1, count + 1)), "the reading client got every frame"
    assert len(got) > count // 2, f"the reading client kept up: {len(got)} frames, behind at {fast_behind}"
    assert grown_mb < 8, f"daphne grew {grown_mb:.1f} MB with {count * len(pad) / 1e6:.0f} MB sent to a stalled socket"

    # The stalled client reads again: it finds `behind`, acks, and catches up to the newest.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # (a 4 kB window drains slowly)
    stalled.transport.resume_reading()
    newest = None
    while True:
        msg = orjson.loads(await asyncio.wait_for(stalled.recv(), 30))
        if msg["type"] in ("sync", "behind"):
            await stalled.send(json.dumps({"type": "ack", "seq": msg["seq"]}))
        elif msg["type"] == "candle":
            newest = msg["candle"]["ticks"]
        elif msg["type"] == "caught_up":
            break
    assert newest == count, "caught up with the newest state of the candle"
    print(f"caught up at {time.monotonic() - t0:.1f} s")
    await stalled.close()
    await fast.close()
    await layer.flush()
