"""The hard message cap in a real daphne process started as the documented deployment
starts it: a frame over the consumer's limit gets its error reply, one over daphne's cap
closes that connection with 1009 before it is buffered, and everyone else keeps being
served; and the cap is on what clients send only: a snapshot far over it (1,000 stored 5 s
candles) reaches the browser whole, in one frame. (daphne's own default cap is 1 MiB; the
units, the Procfile and runfeed --serve set 64 KiB.)"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import websockets

from tests.servers import ROOT, daphne as serve

HARD = 65536
BIG = "DEMO:BIG"
STORED = 1200  # 5 s candles; a snapshot without ``since`` carries the newest HISTORY_LIMIT (1000)
T0 = 1_700_000_000
FLAGS = ["--websocket-max-message-size", str(HARD), "--websocket-max-frame-size", str(HARD)]


def test_the_documented_daphne_command_lines_set_the_cap():
    from market.management.commands import runfeed

    for path in ("Procfile", "deploy/systemd/tickchart-daphne@.service"):
        line = next(ln for ln in (ROOT / path).read_text().splitlines() if "tickchart.asgi:application" in ln)
        assert " ".join(FLAGS) in line, path
    assert runfeed.WS_MAX_MESSAGE_BYTES == HARD


@pytest.fixture(scope="module")
def daphne(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daphne-frames")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith(("PYTEST", "TICKCHART_"))}
    env.update(DJANGO_DEBUG="1", TICKCHART_DB_PATH=str(tmp / "db.sqlite3"))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    subprocess.run([sys.executable, "manage.py", "shell", "-c", STORE], cwd=ROOT, env=env, check=True, timeout=120)
    with serve(env, tmp / "daphne.log", *FLAGS) as (port, _):
        yield port


STORE = f"""
from market import services
from market.core.types import Candle, CandleUpdate
symbol, _ = services.symbol_register(ticker={BIG!r}, exchange="DEMO", source="simulated")
bars = [Candle(time={T0} + 5 * i, open=100.0 + i, high=101.5 + i, low=99.25 + i, close=100.75 + i,
               volume=1234.0 + i, ticks=17) for i in range({STORED})]
services.candle_upsert_many(updates=[CandleUpdate({BIG!r}, "5s", c, True) for c in bars],
                            symbol_ids={{{BIG!r}: symbol.pk}})
"""


def connect(port: int):
    return websockets.connect(f"ws://127.0.0.1:{port}/ws/market/", origin=f"http://127.0.0.1:{port}",
                              ping_interval=None, max_size=None)


async def reply_to(ws, text: str) -> dict:
    await ws.send(text)
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if msg["type"] != "status":
            return msg


def test_oversize_frames_a_polite_error_abusive_ones_a_1009_close_others_unaffected(daphne):
    port = daphne

    async def scenario():
        async with connect(port) as bystander, connect(port) as polite, connect(port) as abusive:
            err = await reply_to(polite, json.dumps({"type": "ping", "pad": "x" * 8000}))
            assert err["type"] == "error" and err["code"] == "frame_too_large"
            assert (await reply_to(polite, '{"type":"ping"}'))["type"] == "pong"

            with pytest.raises(websockets.ConnectionClosed) as closed:
                await abusive.send("x" * (HARD + 1024))
                await asyncio.wait_for(abusive.recv(), 5)
            # without the cap this frame would get the polite error and the socket stay open;
            # with it autobahn fails the connection (1009) by dropping it, so usually no close
            # frame reaches the client
            assert closed.value.rcvd is None or closed.value.rcvd.code == 1009

            for ws in (bystander, polite):
                assert (await reply_to(ws, '{"type":"ping"}'))["type"] == "pong"

    asyncio.run(scenario())


def test_a_snapshot_over_the_client_cap_reaches_the_browser_whole_in_one_frame(daphne):
    port = daphne

    async def scenario():
        async with connect(port) as ws:
            await ws.send(json.dumps({"type": "subscribe", "symbol": BIG, "tf": "5s"}))
            while True:
                raw = await asyncio.wait_for(ws.recv(), 10)
                msg = json.loads(raw)
                if msg["type"] not in ("status", "sync"):
                    break
            assert msg["type"] == "snapshot", msg
            assert len(raw.encode()) > HARD  # far over what a client may send
            times = [c["time"] for c in msg["candles"]]
            assert times == [T0 + 5 * i for i in range(STORED - 1000, STORED)]
            assert msg["candles"][-1] == {"time": T0 + 5 * (STORED - 1), "open": 100.0 + STORED - 1,
                                          "high": 101.5 + STORED - 1, "low": 99.25 + STORED - 1,
                                          "close": 100.75 + STORED - 1, "volume": 1234.0 + STORED - 1, "ticks": 17}
            assert (await reply_to(ws, '{"type":"ping"}'))["type"] == "pong"  # and the socket is still open

    asyncio.run(scenario())
