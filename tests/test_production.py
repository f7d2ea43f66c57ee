"""Production topology, for real: daphne processes and runfeed processes meeting on
PostgreSQL and Redis, driven by a real WebSocket client.

Needs the machine's PostgreSQL and Redis (skipped on a laptop without them, failed under
CI=true). Each test gets its own database and Redis prefix.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
import websockets

from tests.conftest import POSTGRES_URL, REDIS_URL, need_service
from tests.servers import BIN, ROOT, free_port

pytestmark = pytest.mark.services


@pytest.fixture
def prod_env(tmp_path):
    need_service("PostgreSQL", POSTGRES_URL, 5432)
    need_service("Redis", REDIS_URL, 6379)
    import psycopg

    name = f"tickchart_prod_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DATABASE_URL=f"{base}/{name}", REDIS_URL=REDIS_URL, DJANGO_DEBUG="0",
        SECRET_KEY="test-only-" + uuid.uuid4().hex, ALLOWED_HOSTS="127.0.0.1 localhost",
        SECURE_COOKIES="0", TICKCHART_CHANNEL_PREFIX=f"t{uuid.uuid4().hex[:8]}",
        # The topology under test, not sign-in (tests/security/): read-only public access.
        TICKCHART_PUBLIC_ACCESS="1",
        TICKCHART_SIM_BACKFILL_HOURS="0.05", TICKCHART_SIM_RATE="5", TICKCHART_FLUSH_INTERVAL="0.2",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    procs: list[subprocess.Popen] = []

    def start(*args: str, log: str) -> subprocess.Popen:
        out = open(tmp_path / log, "w")
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        proc.log_path = tmp_path / log  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield env, start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def start_daphne(start, port: int) -> subprocess.Popen:
    proc = start(str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "tickchart.asgi:application",
                 log=f"daphne-{port}.log")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/symbols", timeout=2)
            return proc
        except OSError:
            assert proc.poll() is None, proc.log_path.read_text()
            time.sleep(0.2)
    raise AssertionError(f"daphne on {port} did not start: {proc.log_path.read_text()}")


def wait_for_log(proc: subprocess.Popen, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in proc.log_path.read_text():
            return
        assert proc.poll() is None or text in proc.log_path.read_text(), proc.log_path.read_text()
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not logged: {proc.log_path.read_text()}")


async def collect_frames(port: int, seconds: float, symbol: str = "DEMO:ALPHA", tf: str = "5s") -> list[dict]:
    frames: list[dict] = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/market/", origin=f"http://127.0.0.1:{port}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "symbol": symbol, "tf": tf}))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic())))
            except asyncio.TimeoutError:
                break
    return frames


def final_candles(frames: list[dict]) -> dict[int, dict]:
    """The last state received per candle time, without the still-open newest one."""
    last: dict[int, dict] = {}
    for f in frames:
        if f["type"] == "candle":
            last[f["candle"]["time"]] = f["candle"]
    if last:
        del last[max(last)]
    return last


def api_candles(port: int, symbol: str, tf: str) -> dict[int, dict]:
    url = f"http://127.0.0.1:{port}/api/candles?symbol={symbol}&tf={tf}&limit=10000"
    body = json.load(urllib.request.urlopen(url, timeout=5))
    return {c["time"]: c for c in body["candles"]}


def test_daphne_and_runfeed_processes_deliver_candles_that_match_the_database(prod_env):
    env, start = prod_env
    port_a, port_b = free_port(), free_port()
    start_daphne(start, port_a)
    start_daphne(start, port_b)
    feed = start(sys.executable, "manage.py", "runfeed", "--no-migrate", log="runfeed.log")
    wait_for_log(feed, "is live")

    async def both() -> tuple[list[dict], list[dict]]:
        return await asyncio.gather(collect_frames(port_a, 12), collect_frames(port_b, 12))

    frames_a, frames_b = asyncio.run(both())
    snap = [f for f in frames_a if f["type"] == "snapshot"]
    assert snap and snap[0]["candles"], "the snapshot carries the back-filled history"
    final_a, final_b = final_candles(frames_a), final_candles(frames_b)
    assert len(final_a) >= 1, frames_a[-3:]
    # Two daphne processes behind one Redis deliver the same candles.
    common = set(final_a) & set(final_b)
    assert common and all(final_a[t] == final_b[t] for t in common)
    # What arrived live is what is stored and served.
    stored = api_candles(port_a, "DEMO:ALPHA", "5s")
    for t, candle in final_a.items():
        assert stored[t] == candle, (t, stored.get(t), candle)


def test_only_one_runfeed_writes_and_a_standby_takes_over(prod_env):
    env, start = prod_env
    first = start(sys.executable, "manage.py", "runfeed", "--no-migrate", log="first.log")
    wait_for_log(first, "is live")
    second = subprocess.run([sys.executable, "manage.py", "runfeed", "--no-migrate"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode != 0
    assert "already writing 'simulated'" in second.stderr
    standby = start(sys.executable, "manage.py", "runfeed", "--no-migrate", "--standby", log="standby.log")
    wait_for_log(standby, "standby: another runfeed holds the writer lock")
    time.sleep(1)
    assert "is live" not in standby.log_path.read_text()
    first.send_signal(signal.SIGKILL)  # a crash: PostgreSQL drops the dead session's lock
    first.wait()
    wait_for_log(standby, "taking over", timeout=30)
    wait_for_log(standby, "is live", timeout=30)


def test_daphne_keeps_no_postgresql_connection_per_finished_request(prod_env):
    """Each HTTP request runs on a thread of its own under daphne (asgiref's per-request
    thread-sensitive context), so a connection left open after it is never used again and
    waits for the garbage collector: 200 requests must not leave them piling up (at 100,
    PostgreSQL's default max_connections, every request fails)."""
    import psycopg

    env, start = prod_env
    env["TICKCHART_HTTP_RATE_PER_MINUTE"] = "100000"
    port = free_port()
    start_daphne(start, port)
    name = env["DATABASE_URL"].rsplit("/", 1)[1]
    admin = psycopg.connect(POSTGRES_URL, autocommit=True)

    def connections() -> int:
        return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()[0]

    most = 0
    try:
        for i in range(200):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/symbols?q=DEMO", timeout=10) as r:
                assert r.status == 200
            if i % 10 == 9:
                most = max(most, connections())
    finally:
        admin.close()
    assert most <= 3, f"{most} connections open to {name} after requests that each finished"


def test_daphne_with_a_connection_pool_serves_http_and_sockets_within_its_size(prod_env):
    """TICKCHART_DB_POOL=3: requests and a socket's reads share at most three PostgreSQL
    connections, kept open between requests (without the pool each request connects anew)."""
    import psycopg

    env, start = prod_env
    env.update(TICKCHART_HTTP_RATE_PER_MINUTE="100000", TICKCHART_DB_POOL="3")
    port = free_port()
    start_daphne(start, port)
    name = env["DATABASE_URL"].rsplit("/", 1)[1]
    admin = psycopg.connect(POSTGRES_URL, autocommit=True)

    def backends() -> set[int]:
        return {pid for (pid,) in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall()}

    async def unknown_symbol() -> dict:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/market/", origin=f"http://127.0.0.1:{port}") as ws:
            await ws.send(json.dumps({"type": "subscribe", "symbol": "NSE:NOPE-EQ", "tf": "1m"}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["type"] == "error":
                    return frame

    seen: set[int] = set()
    try:
        for _ in range(60):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/symbols?q=DEMO", timeout=10) as r:
                assert r.status == 200 and json.loads(r.read()) == {"symbols": []}
            seen |= backends()
        assert asyncio.run(unknown_symbol())["code"] == "unknown_symbol"  # read through the pool
        seen |= backends()
    finally:
        admin.close()
    assert 1 <= len(seen) <= 3, f"{len(seen)} PostgreSQL backends served 60 requests and a socket"
