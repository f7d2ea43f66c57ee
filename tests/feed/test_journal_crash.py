"""SIGKILL a live feed at random moments: the tick journal gives back what a kill cut off.

A real ``runfeed --source metronome`` (a live-like source streaming in real time whose tick
``k`` is a pure function of ``k``; market/feed/metronome.py) is killed again and again and
restarted each time; each start replays the journal's ticks after the stored checkpoint
and the source goes on after the last journaled tick. At the end its candles must equal,
candle for candle, a direct computation over every tick from the first run's first to the
last run's last: nothing the source emitted is lost or counted twice.

5 kills by default, 20 with TICKCHART_LONG_TESTS=1. Embedded run: SQLite; services run
(DATABASE_URL set): a scratch PostgreSQL database on that server, dropped afterwards.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from market.core.engine import CandleEngine
from market.feed.metronome import SYMBOLS, metronome_tick
from tests.feed.test_crash_exact import ROOT, Database

LONG = os.environ.get("TICKCHART_LONG_TESTS") == "1"
KILLS = 20 if LONG else 5


def expected_candles(first: int, last: int) -> list[tuple]:
    """What one uninterrupted run over ticks ``first`` … ``last`` stores."""
    from market.conf import market

    conf = market()
    engine = CandleEngine(conf.plan.stored, conf.sessions)
    for ticker in SYMBOLS:
        engine.register(ticker, "DEMO")
    final: dict[tuple, tuple] = {}
    for k in range(first, last + 1):
        assert engine.add(metronome_tick(k)) is None, k
        if k % 500 == 0 or k == last:
            for u in engine.collect():
                c = u.candle
                final[(u.symbol, u.timeframe, c.time)] = (u.symbol, u.timeframe, c.time, c.open, c.high, c.low,
                                                          c.close, c.volume, c.ticks)
    return sorted(final.values())


def start(db: Database, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "runfeed", "--no-migrate", "--source", "metronome"],
                            cwd=ROOT, env=db.env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def wait_for_write(db: Database, proc: subprocess.Popen, log: Path) -> None:
    """Until the source runs (its start or resume is logged) and a write follows: a kill
    before then would cut off only the journal's replay, which the source never sees."""
    deadline = time.monotonic() + 60
    while not re.search(r"metronome: (starting|resuming) at tick", log.read_text(errors="replace")):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    stored = db.count()
    while db.count() <= stored:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)


@pytest.mark.timeout(1200 if LONG else 400)  # PostgreSQL on a loaded machine: ~2 min
def test_sigkilled_live_feed_loses_no_tick_it_emitted(tmp_path):
    db = Database(tmp_path, "journal")
    db.env.update(LOG_LEVEL="INFO", PYTHONUNBUFFERED="1", TICKCHART_JOURNAL_DIR=str(tmp_path / "journal"))
    logs: list[Path] = []
    rng = random.Random(20261203)
    proc = None
    try:
        kills = 0
        while kills < KILLS:
            logs.append(tmp_path / f"run{len(logs)}.log")
            proc = start(db, logs[-1])
            wait_for_write(db, proc, logs[-1])  # the first run must store something before its kill
            if kills % 2:
                time.sleep(rng.uniform(0.0, 0.4))  # within a flush interval: the journal's ticks only
            else:
                time.sleep(rng.uniform(0.4, 1.5))
            assert proc.poll() is None, logs[-1].read_text()[-3000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
        logs.append(tmp_path / "final.log")
        proc = start(db, logs[-1])
        wait_for_write(db, proc, logs[-1])
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, logs[-1].read_text()[-3000:]
        got = db.candles()
    finally:
        if proc is not None and proc.poll() is None:  # (a failed assertion or a timeout)
            proc.kill()
            proc.wait()
        db.drop()

    texts = [p.read_text(errors="replace") for p in logs]
    starts = [int(m) for t in texts for m in re.findall(r"metronome: starting at tick (\d+)", t)]
    assert len(starts) == 1, f"only the first run may start afresh: {starts}"
    resumed = sum(len(re.findall(r"metronome: resuming at tick", t)) for t in texts)
    assert resumed == KILLS
    replayed = [int(m) for t in texts for m in re.findall(r"journal replay: (\d+) ticks after the checkpoint", t)]
    last = int(re.findall(r"metronome: stopped after tick (\d+)", texts[-1])[-1])
    expected = expected_candles(starts[0], last)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    print(f"\n{KILLS} kills, {last - starts[0] + 1} ticks, journal replays {replayed}, "
          f"{len(expected)} candles, {len(missing)} missing, {len(extra)} different or extra")
    assert sum(replayed) > 0, "no restart replayed the journal: the kills never cut off unstored ticks"
    assert not missing and not extra, f"e.g. missing {missing[:3]}, extra {extra[:3]}"
