"""PostgreSQL down under a live feed, with a small write buffer: memory stays bounded (the
waiting candles are dropped and rebuilt from the tick journal), nothing is lost.

A real ``runfeed --source metronome`` (ticks a pure function of their number, streamed in
real time) writes into a private PostgreSQL server (``tests/pgserver.py``) with
``TICKCHART_WRITE_BUFFER_CANDLES=40``. The server is stopped (``-m immediate``) for 30 s
(5 min with TICKCHART_LONG_TESTS=1) and started again. Then:

- during the outage the metrics say the writer spilled, and the in-memory peak never
  passed the bound; the log says writing failed, spilled, and was rebuilt;
- a listener on the Redis layer (as a daphne process) kept receiving candle frames: the
  longest gap between frames during the outage is printed and bounded;
- the process did not crash; after recovery and a clean stop its candles equal a direct
  computation over every tick it emitted: 0 differences.

Also: a read-only database (``default_transaction_read_only``) is loud, keeps the process
up, and once writable again stores everything (the same comparison).

The embedded run runs these (own PostgreSQL server); the services run skips them: they
use neither its database nor its settings.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from market.live.broadcast import group_name
from tests.feed.test_crash_exact import QUERY
from tests.feed.test_database_outage import Listener
from tests.feed.test_journal_crash import expected_candles
from tests.pgserver import pg_server  # noqa: F401 - fixture
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("TICKCHART_LONG_TESTS") == "1"
OUTAGE = 300.0 if LONG else 30.0
BUFFER = 40

pytestmark = pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")),
                                reason="services run: covered by the embedded run (own PostgreSQL)")


class Feed:
    """One metronome runfeed on a private database, its log and its metrics."""

    def __init__(self, server, tmp: Path, name: str, **env: str) -> None:

        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(LOG_LEVEL="INFO", PYTHONUNBUFFERED="1", TICKCHART_FLUSH_INTERVAL="0.2",
                        TICKCHART_JOURNAL_DIR=str(tmp / f"{name}-journal"), **env)
        self.url = self.env["DATABASE_URL"] = server.create_database(name)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env, check=True,
                       timeout=120)
        self.port = free_port()
        self.log = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runfeed", "--no-migrate", "--source", "metronome",
             "--metrics-port", str(self.port)], cwd=ROOT, env=self.env, stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def metric(self, name: str) -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()
        found = re.search(rf'^{name}(?:_total)?{{source="metronome"}} ([0-9.e+-]+)$', body, re.M)
        assert found, f"{name} not in the metrics"
        return float(found.group(1))

    def wait_for(self, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while what not in self.text():
            assert self.proc.poll() is None, self.text()[-3000:]
            assert time.monotonic() < deadline, f"no {what!r} in the log:\n{self.text()[-3000:]}"
            time.sleep(0.2)

    def stored(self) -> int:
        with psycopg.connect(self.url) as conn:
            return conn.execute("SELECT count(*) FROM market_candle").fetchone()[0]

    def stop_and_compare(self) -> tuple[int, int]:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=90) == 0, self.text()[-3000:]
        text = self.text()
        first = int(re.search(r"metronome: starting at tick (\d+)", text).group(1))
        last = int(re.findall(r"metronome: stopped after tick (\d+)", text)[-1])
        with psycopg.connect(self.url) as conn:
            got = [tuple(r) for r in conn.execute(QUERY).fetchall()]
        expected = expected_candles(first, last)
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        assert not missing and not extra, (f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} "
                                           f"different or extra (e.g. {extra[:3]})")
        return len(expected), last - first + 1

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.timeout(OUTAGE + 150)
def test_postgres_outage_spills_to_the_journal_in_bounded_memory_and_loses_nothing(pg_server, redis_url, tmp_path):  # noqa: F811
    prefix = f"tickchart-spill-{os.getpid()}-{int(time.time())}"
    listener = Listener(redis_url, prefix, group_name("METRO:S0", "5s"))
    listener.start()
    assert listener.joined.wait(10) and listener.error is None, listener.error
    feed = Feed(pg_server, tmp_path, "spill", TICKCHART_WRITE_BUFFER_CANDLES=str(BUFFER), REDIS_URL=redis_url,
                TICKCHART_CHANNEL_PREFIX=prefix)
    try:
        feed.wait_for("metronome: starting at tick", 60)
        deadline = time.monotonic() + 30
        while not feed.stored():
            assert time.monotonic() < deadline, feed.text()[-3000:]
            time.sleep(0.2)
        time.sleep(1.0)
        pg_server.stop()
        down, down_wall = time.monotonic(), time.time()
        feed.wait_for("dropped from memory", 20)
        spilled_seen = False
        while time.monotonic() - down < OUTAGE:
            assert feed.proc.poll() is None, f"runfeed died during the outage:\n{feed.text()[-3000:]}"
            spilled_seen = spilled_seen or feed.metric("tickchart_spilled") == 1
            assert feed.metric("tickchart_pending_candles") <= BUFFER
            time.sleep(1.0)
        assert spilled_seen and feed.metric("tickchart_spills") >= 1
        journal_bytes = feed.metric("tickchart_journal_bytes")
        up = time.time()
        pg_server.start()
        feed.wait_for("rebuilt from the journal and stored", 60)
        assert feed.metric("tickchart_spilled") == 0
        peak = feed.metric("tickchart_pending_candles_peak")
        time.sleep(1.0)
        candles, ticks = feed.stop_and_compare()
    finally:
        feed.close()
        listener.done.set()
        listener.join(10)
    text = feed.text()
    assert "candles failed" in text and "writing works again after" in text
    during = [down_wall] + [t for t in listener.arrivals if down_wall <= t <= up] + [up]
    gap = max(b - a for a, b in zip(during, during[1:]))
    print(f"\nbrowser frames on METRO:S0 5s during the outage: {len(during) - 2}, longest gap {gap:.2f} s")
    assert len(during) - 2 > OUTAGE and gap < 3.0
    print(f"{OUTAGE:.0f} s outage: {ticks} ticks, {candles} candles, 0 differences; in-memory peak {peak:.0f} "
          f"candles (bound {BUFFER}); journal {journal_bytes / 1024:.0f} KiB at the end of the outage")
    assert 0 < peak <= BUFFER


@pytest.mark.timeout(150)
def test_a_read_only_database_is_loud_keeps_running_and_stores_everything_once_writable(pg_server, tmp_path):  # noqa: F811
    feed = Feed(pg_server, tmp_path, "readonly")
    admin = pg_server.url()
    try:
        feed.wait_for("metronome: starting at tick", 60)
        deadline = time.monotonic() + 30
        while not feed.stored():
            assert time.monotonic() < deadline, feed.text()[-3000:]
            time.sleep(0.2)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('ALTER DATABASE "readonly" SET default_transaction_read_only = on')
            # running sessions keep their setting: end them, as a failover to a read-only replica would
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = 'readonly' AND pid <> pg_backend_pid()")
        feed.wait_for("read-only transaction", 30)
        time.sleep(8)
        assert feed.proc.poll() is None, feed.text()[-3000:]
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('ALTER DATABASE "readonly" SET default_transaction_read_only = off')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = 'readonly' AND pid <> pg_backend_pid()")
        feed.wait_for("writing works again after", 60)
        time.sleep(1.0)
        candles, ticks = feed.stop_and_compare()
    finally:
        feed.close()
    failures = feed.text().count("candles failed")
    print(f"\nread-only database: {failures} failed writes logged, then {ticks} ticks, {candles} candles, "
          "0 differences")
    assert 0 < failures < 20, "retries back off (0.5 s doubling), not one per flush"
