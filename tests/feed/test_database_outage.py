"""PostgreSQL stops for 15 s under a real-time replay: charts stay live, nothing is lost.

A real ``runfeed --source replay --speed S`` (about 35 s of wall time) writes into a
private PostgreSQL server (``tests/pgserver.py``) and publishes on the real Redis layer
under a prefix of its own. Mid-run the server is stopped (``-m immediate``) for 15 s,
then started again. The test listens on one symbol's 5 s candle group, as a daphne
process would, and checks that:

- candle frames kept arriving while the database was down;
- the runfeed did not crash, and its log says that writing failed and later worked again;
- once it has finished, its candles equal, candle for candle, those of an uninterrupted
  run of the same file into a second database on the same server.

The embedded run runs it (its own PostgreSQL server, the machine's Redis; skipped without
either, failed then under CI=true). The services run (DATABASE_URL set) skips it: it uses
neither that database nor its own settings, so running it twice would prove nothing more.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import psycopg
import pytest

from market.live.broadcast import group_name
from market.vendors.fyers.recording import fyers_session
from tests.feed.test_crash_exact import QUERY
from tests.pgserver import pg_server  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
SPEED = 100           # exchange seconds per wall second
SPAN = 3500           # exchange seconds in the file: ~35 s of wall time at SPEED
SYMBOLS, INDICES, RATE = 5, 1, 2.0
OUTAGE = 15.0
WATCHED = "NSE:SYM0000-EQ"

pytestmark = pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")),
                                reason="services run: covered by the embedded run (own PostgreSQL)")


class Listener(threading.Thread):
    """Joins one candle group on the Redis layer and notes when each candle message arrives."""

    def __init__(self, redis_url: str, prefix: str, group: str) -> None:
        super().__init__(daemon=True)
        self.redis_url, self.prefix, self.group = redis_url, prefix, group
        self.arrivals: list[float] = []
        self.joined = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._listen())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.joined.set()

    async def _listen(self) -> None:
        from channels_redis.pubsub import RedisPubSubChannelLayer

        layer = RedisPubSubChannelLayer(hosts=[{"address": self.redis_url, "socket_timeout": None}],
                                        prefix=self.prefix)
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        self.joined.set()
        try:
            while not self.done.is_set():
                try:
                    message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                if message.get("type") == "candle.update":
                    self.arrivals.append(time.time())
        finally:
            await layer.group_discard(self.group, channel)
            await layer.flush()


def _database(server, env: dict[str, str], name: str) -> dict[str, str]:
    env = {**env, "DATABASE_URL": server.create_database(name)}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    return env


def _candles(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(QUERY).fetchall()]


def _replay(env: dict[str, str], recording: Path, speed: float, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "runfeed", "--no-migrate", "--source", "replay", "--file", str(recording),
         "--speed", str(speed)], cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


@pytest.mark.timeout(170)
def test_fifteen_seconds_without_postgres_keep_charts_live_and_lose_no_candle(pg_server, redis_url, tmp_path):  # noqa: F811
    recording = tmp_path / "session.jsonl"
    with recording.open("wb") as f:
        for message in fyers_session(symbols=SYMBOLS, indices=INDICES, rate=RATE, seed=5,
                                     messages=int(SPAN * RATE * (SYMBOLS + INDICES))):
            f.write(orjson.dumps(message) + b"\n")
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    base.update(LOG_LEVEL="INFO", TICKCHART_FLUSH_INTERVAL="0.2", PYTHONUNBUFFERED="1")

    whole = _database(pg_server, base, "whole")
    done = subprocess.run(
        [sys.executable, "manage.py", "runfeed", "--no-migrate", "--source", "replay", "--file", str(recording),
         "--speed", "0"], cwd=ROOT, env=whole, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = _candles(whole["DATABASE_URL"])
    assert len(expected) > 1000

    prefix = f"tickchart-outage-{uuid.uuid4().hex[:10]}"
    paced = _database(pg_server, {**base, "REDIS_URL": redis_url, "TICKCHART_CHANNEL_PREFIX": prefix}, "paced")
    listener = Listener(redis_url, prefix, group_name(WATCHED, "5s"))
    listener.start()
    assert listener.joined.wait(10) and listener.error is None, listener.error
    log = tmp_path / "paced.log"
    proc = _replay(paced, recording, SPEED, log)
    try:
        deadline = time.monotonic() + 30
        while not (_stored(paced["DATABASE_URL"]) and listener.arrivals):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(3)
        pg_server.stop()
        down = time.time()
        time.sleep(OUTAGE)
        assert proc.poll() is None, f"runfeed died during the outage:\n{log.read_text()[-3000:]}"
        up = time.time()
        pg_server.start()
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.done.set()
        listener.join(10)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    during = [t for t in listener.arrivals if down <= t <= up]
    print(f"\ncandle frames on {WATCHED} 5s: {len(listener.arrivals)} in all, {len(during)} "
          f"during the {up - down:.1f} s outage")
    assert listener.error is None, listener.error
    assert len(during) > 0, f"no frame while the database was down ({len(listener.arrivals)} in all)"
    assert "candles failed" in text and "writing works again after" in text, text[-3000:]

    got = _candles(paced["DATABASE_URL"])
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    print(f"candles: {len(expected)} uninterrupted, {len(got)} through the outage, "
          f"{len(missing)} missing, {len(extra)} different or extra")
    assert not missing and not extra, f"e.g. missing {missing[:3]}, extra {extra[:3]}"


def _stored(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return bool(conn.execute("SELECT count(*) FROM market_candle").fetchone()[0])
