"""SIGKILL at random moments changes nothing: a real ``runfeed --source replay`` is killed
again and again on one recording, restarted on the same file each time, then let finish;
its candles equal, candle for candle, those of one uninterrupted run of the same file.

Embedded run: SQLite files. Services run (DATABASE_URL set): two scratch PostgreSQL
databases on that server, dropped afterwards.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from market.vendors.fyers.recording import fyers_session

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20
MESSAGES = 300_000
COLUMNS = "s.ticker, c.timeframe, c.time, c.open, c.high, c.low, c.close, c.volume, c.ticks"
QUERY = (f"SELECT {COLUMNS} FROM market_candle c JOIN market_symbol s ON s.id = c.symbol_id "
         "ORDER BY s.ticker, c.timeframe, c.time")


class Database:
    """One empty, migrated database for the subprocesses, and a way to read its candles."""

    def __init__(self, tmp: Path, label: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(LOG_LEVEL="WARNING", TICKCHART_FLUSH_INTERVAL="0.2")
        server = os.environ.get("DATABASE_URL")
        self.url = None
        if server:
            self.name = f"tickchart_crash_{label}_{uuid.uuid4().hex[:8]}"
            self._admin("CREATE DATABASE")
            self.url = server.rsplit("/", 1)[0] + "/" + self.name
            self.env["DATABASE_URL"] = self.url
        else:
            self.path = tmp / f"{label}.sqlite3"
            self.env["TICKCHART_DB_PATH"] = str(self.path)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env,
                       check=True, timeout=180)

    def _admin(self, verb: str) -> None:
        import psycopg

        admin = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            if verb == "DROP DATABASE":
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            else:
                conn.execute(f'{verb} "{self.name}"')

    def candles(self) -> list[tuple]:
        if self.url:
            import psycopg

            with psycopg.connect(self.url) as conn:
                return [tuple(r) for r in conn.execute(QUERY).fetchall()]
        with sqlite3.connect(self.path) as conn:
            return conn.execute(QUERY).fetchall()

    def count(self) -> int:
        query = "SELECT count(*) FROM market_candle"
        if self.url:
            import psycopg

            with psycopg.connect(self.url) as conn:
                return conn.execute(query).fetchone()[0]
        with sqlite3.connect(self.path) as conn:
            return conn.execute(query).fetchone()[0]

    def drop(self) -> None:
        if self.url:
            self._admin("DROP DATABASE")

    def runfeed(self, recording: Path, speed: str = "0") -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", "runfeed", "--source", "replay", "--file", str(recording), "--speed", speed],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "session.jsonl"
    with path.open("wb") as f:
        for message in fyers_session(symbols=20, messages=MESSAGES, seed=11, rate=2.0):
            f.write(orjson.dumps(message) + b"\n")
    return path


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]


@pytest.mark.timeout(600)
def test_twenty_sigkills_at_random_moments_end_with_exactly_the_uninterrupted_candles(recording, tmp_path):
    whole, killed = Database(tmp_path, "whole"), Database(tmp_path, "killed")
    try:
        started = time.monotonic()
        _finish(whole.runfeed(recording))
        full_run = time.monotonic() - started
        expected = whole.candles()
        assert len(expected) > 10_000

        rng = random.Random(20261202)
        kills, attempts, progress = 0, 0, []
        while kills < KILLS and attempts < 3 * KILLS:
            attempts += 1
            proc = killed.runfeed(recording)
            if attempts % 2:
                # During imports, the resume, the skip of stored lines, the first ticks.
                time.sleep(rng.uniform(0.3, 1.5))
            else:
                # Mid-replay: once this run has written, at a random moment after (a write
                # in flight included). Waiting for a write keeps this true on a busy machine.
                stored, deadline = killed.count(), time.monotonic() + 120
                while proc.poll() is None and killed.count() <= stored and time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.3))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
            progress.append(len(killed.candles()))
        _finish(killed.runfeed(recording))
        got = killed.candles()
    finally:
        whole.drop()
        killed.drop()

    assert kills == KILLS
    assert progress[-1] > 0, f"no kill landed after a write: {progress} ({full_run:.1f}s a run)"
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, (
        f"{len(missing)} candles differ from the uninterrupted run, e.g. {missing[:3]} vs {extra[:3]} "
        f"(candles stored after each kill: {progress}; a whole run took {full_run:.1f}s)")
