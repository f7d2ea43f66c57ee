"""A full disk under the SQLite database, and under the tick journal: loud, no crash loop,
and nothing accepted is lost once there is space again.

Each test mounts a small tmpfs of its own inside its temporary directory (root with
CAP_SYS_ADMIN; skipped otherwise), fills it with a filler file to make ENOSPC, and deletes
the filler later. A real ``runfeed --source metronome`` runs throughout; its candles are
compared with a direct computation over every tick it emitted (tests/feed/test_journal_crash.py).

Embedded run only (SQLite); the services run skips them.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.feed.test_crash_exact import QUERY
from tests.feed.test_journal_crash import expected_candles
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="SQLite only (embedded run)")


def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root with CAP_SYS_ADMIN): {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    yield from tmpfs(tmp_path / "disk", "48m")


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    yield from tmpfs(tmp_path / "tiny", "512k")


def fill(disk: Path) -> Path:
    """Take every free byte of ``disk``."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    return filler


class Feed:
    def __init__(self, tmp: Path, db: Path, journal: Path) -> None:
        self.db = db
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(LOG_LEVEL="INFO", PYTHONUNBUFFERED="1", TICKCHART_FLUSH_INTERVAL="0.2",
                        TICKCHART_DB_PATH=str(db), TICKCHART_JOURNAL_DIR=str(journal))
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env, check=True,
                       timeout=120)
        self.log = tmp / "feed.log"
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runfeed", "--no-migrate", "--source", "metronome",
             "--metrics-port", str(self.port)], cwd=ROOT, env=self.env, stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, what: str, timeout: float, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while what not in self.text()[after:]:
            assert self.proc.poll() is None, self.text()[-3000:]
            assert time.monotonic() < deadline, f"no {what!r} in the log:\n{self.text()[-3000:]}"
            time.sleep(0.2)

    def stored(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("SELECT count(*) FROM market_candle").fetchone()[0]

    def wait_stored(self) -> None:
        deadline = time.monotonic() + 30
        while not self.stored():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.text()[-3000:]
            time.sleep(0.2)

    def stop_and_compare(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=90) == 0, self.text()[-3000:]
        text = self.text()
        first = int(re.search(r"metronome: starting at tick (\d+)", text).group(1))
        last = int(re.findall(r"metronome: stopped after tick (\d+)", text)[-1])
        with sqlite3.connect(self.db) as conn:
            got = conn.execute(QUERY).fetchall()
        expected = expected_candles(first, last)
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        assert not missing and not extra, (f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} "
                                           f"different or extra (e.g. {extra[:3]})")
        return len(expected)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.timeout(150)
def test_sqlite_on_a_full_disk_is_loud_keeps_running_and_stores_everything_after(small_disk, tmp_path):
    feed = Feed(tmp_path, small_disk / "db.sqlite3", tmp_path / "journal")
    try:
        feed.wait_stored()
        time.sleep(1.0)
        filler = fill(small_disk)
        feed.wait_for("database or disk is full", 60)
        time.sleep(6)
        assert feed.proc.poll() is None, feed.text()[-3000:]
        mark = len(feed.text())
        filler.unlink()
        feed.wait_for("writing works again after", 60, after=mark)
        time.sleep(1.0)
        candles = feed.stop_and_compare()
    finally:
        feed.close()
    print(f"\nSQLite disk full: {feed.text().count('candles failed')} failed writes logged, {candles} candles, "
          "0 differences")


@pytest.mark.timeout(120)
def test_a_full_journal_disk_is_loud_and_the_database_keeps_every_candle(tiny_disk, tmp_path):
    feed = Feed(tmp_path, tmp_path / "db.sqlite3", tiny_disk / "journal")
    try:
        feed.wait_stored()
        filler = fill(tiny_disk)
        feed.wait_for("journal cannot take ticks", 30)
        time.sleep(3)
        assert feed.proc.poll() is None, feed.text()[-3000:]
        filler.unlink()
        feed.wait_for("journal writable again", 30)
        time.sleep(1.0)
        candles = feed.stop_and_compare()
    finally:
        feed.close()
    assert "No space left on device" in feed.text()
    print(f"\njournal disk full: {candles} candles, 0 differences")
