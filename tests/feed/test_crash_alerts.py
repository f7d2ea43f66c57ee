"""SIGKILL the writer mid-replay with webhooks on: a real ``runfeed --source replay`` with
price and bar alerts whose webhooks go to a loopback receiver is killed at random moments,
restarted on the same file each time, then let finish. The receiver must have accepted
exactly the events an independent calculation expects, each Idempotency-Key once, none
extra.

Delivery is at least once: a kill between the receiver's 2xx and the writer recording it
sends that event again (the Idempotency-Key is there for that). The receiver logs what it
answered; a repeat of a key it had already answered 2xx is allowed only as a send that
was in flight at a kill (at most ``webhooks.PER_HOST`` per kill, the sends one receiver may
have in flight: a slot is reused only once its outcome is recorded), and it is never
counted twice.

Embedded run: SQLite files. Services run (DATABASE_URL set): a scratch PostgreSQL
database on that server, dropped afterwards (tests/feed/test_crash_exact.py's pattern).
"""

from __future__ import annotations

import math
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from market.feed import webhooks
from tests.feed.test_alerts_pipeline import LEVEL, OPEN
from tests.feed.test_crash_exact import ROOT, Database, _finish
from tests.feed.test_replay import sf

KILLS = 6
SYMBOLS = [f"NSE:S{k}-EQ" for k in range(8)]
TICKS = 20_000  # per symbol, one a second: 5 h 33 min of the session


def price(k: int, i: int) -> float:
    return round(LEVEL + 6 * math.sin(i / 7 + k) + 2 * math.sin(i * 1.3 + k), 2)


def expected(ids: dict[tuple[str, str], int]) -> set[str]:
    """Price alerts (crosses_above, once a 1m bar) and close alerts (crosses_above at bar
    close; the last bar is still open at the end of the file), computed from the prices."""
    out = set()
    for k, s in enumerate(SYMBOLS):
        ticks = [(OPEN + i, price(k, i)) for i in range(TICKS)]
        fired = set()
        for (_, p0), (t1, p1) in zip(ticks, ticks[1:]):
            bar = OPEN + (t1 - OPEN) // 60 * 60
            if p0 < LEVEL <= p1 and bar not in fired:
                fired.add(bar)
                out.add(f"{ids[s, 'price']}@{t1}")
        closes = {}
        for t, p in ticks:
            closes[OPEN + (t - OPEN) // 60 * 60] = p
        times = sorted(closes)[:-1]
        out |= {f"{ids[s, 'close']}@{b}" for a, b in zip(times, times[1:]) if closes[a] < LEVEL <= closes[b]}
    return out


class Receiver:
    """A loopback webhook receiver that dedups on Idempotency-Key, as a real one would."""

    def __init__(self) -> None:
        self.accepted: dict[str, int] = {}
        self.repeats_after_2xx: list[str] = []
        self.posts = 0
        lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers["Idempotency-Key"]
                with lock:
                    me.posts += 1
                    if key in me.accepted:
                        me.repeats_after_2xx.append(key)
                    else:
                        me.accepted[key] = 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _make_alerts(db: Database, url: str) -> dict[tuple[str, str], int]:
    code = (
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from market import services\n"
        "u = get_user_model().objects.create_user('ada', password='pw')\n"
        "ids = {}\n"
        f"for s in {SYMBOLS!r}:\n"
        f"    ids[s + ' price'] = services.alert_create(user=u, symbol=s, tf='1m', left='price', op='crosses_above', "
        f"right={LEVEL}, trigger='once_per_bar', webhook={url!r}).id\n"
        f"    ids[s + ' close'] = services.alert_create(user=u, symbol=s, tf='1m', left='close', op='crosses_above', "
        f"right={LEVEL}, trigger='once_per_bar_close', webhook={url!r}).id\n"
        "print(json.dumps(ids))\n")
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=db.env,
                          capture_output=True, text=True, timeout=120, check=True)
    raw = orjson.loads(done.stdout.strip().splitlines()[-1])
    return {tuple(k.split(" ")): v for k, v in raw.items()}


def _delivery(db: Database) -> list[tuple]:
    query = "SELECT id, delivery FROM market_alertevent ORDER BY id"
    if db.url:
        import psycopg

        with psycopg.connect(db.url) as conn:
            return [tuple(r) for r in conn.execute(query).fetchall()]
    import sqlite3

    with sqlite3.connect(db.path) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.timeout(900)
def test_sigkills_mid_replay_deliver_every_expected_event_once(tmp_path: Path):
    path = tmp_path / "session.jsonl"
    with path.open("wb") as f:
        for i in range(TICKS):
            for k, s in enumerate(SYMBOLS):
                f.write(orjson.dumps(sf(s, OPEN + i, price(k, i), 1000 + 10 * i)) + b"\n")
    receiver = Receiver()
    db = Database(tmp_path, "alerts")
    db.env["TICKCHART_WEBHOOK_ALLOW_PRIVATE"] = "1"
    try:
        ids = _make_alerts(db, receiver.url)
        want = expected(ids)
        assert len(want) > 500
        rng = random.Random(20261203)
        kills, attempts, progress = 0, 0, []
        while kills < KILLS and attempts < 3 * KILLS:
            attempts += 1
            # paced (20,000 s of session in about 20 s), so that each kill lands mid-replay
            # however fast the writer is; the last run finishes at full speed
            proc = db.runfeed(path, speed="1000")
            stored, deadline = db.count(), time.monotonic() + 120
            while proc.poll() is None and db.count() <= stored and time.monotonic() < deadline:
                time.sleep(0.02)  # this run has written (and fired, and is delivering)
            time.sleep(rng.uniform(0.2, 3.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
            progress.append(len(receiver.accepted))
        _finish(db.runfeed(path))
        states = _delivery(db)
    finally:
        receiver.close()
        db.drop()
    assert kills == KILLS, progress
    assert progress[-1] > 0 and progress[-1] < len(want), f"the kills did not land mid-delivery: {progress}"
    got = set(receiver.accepted)
    assert not (want - got) and not (got - want), (
        f"{len(want - got)} expected events never arrived, e.g. {sorted(want - got)[:3]}; "
        f"{len(got - want)} extra, e.g. {sorted(got - want)[:3]} (accepted after each kill: {progress})")
    assert {i for i, _ in states} == want and {d for _, d in states} == {"delivered"}
    assert len(receiver.repeats_after_2xx) <= kills * webhooks.PER_HOST, receiver.repeats_after_2xx
