"""How a delivery round schedules sends (issue 13's < 200 ms departure): a receiver that
answers gets up to ``PER_HOST`` sends at once, ``WORKERS`` in all, a failing one a single
try, and events committed while a round runs join it instead of waiting for it to end."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from market.feed import webhooks
from market.feed.webhooks import deliver_due, send_round
from tests.feed.test_webhooks_hostile import fire, outcome


class Lanes:
    """Jobs that sleep, noting how many of their host's (and in all) were running."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.most_overall = 0
        self.started: list[tuple[str, int, int]] = []  # (host, n, running of that host then)
        self.ended: list[tuple[str, int]] = []

    def job(self, host: str, n: int, seconds: float = 0.05, fail: bool = False):
        def send() -> None:
            with self.lock:
                self.running[host] = self.running.get(host, 0) + 1
                self.most[host] = max(self.most.get(host, 0), self.running[host])
                self.most_overall = max(self.most_overall, sum(self.running.values()))
                self.started.append((host, n, self.running[host]))
            time.sleep(seconds)
            with self.lock:
                self.running[host] -= 1
                self.ended.append((host, n))
            if fail:
                raise OSError("HTTP 500")
        return host, send


def test_a_receiver_that_answers_gets_several_sends_at_once_the_first_alone_in_order():
    lanes = Lanes()
    jobs = [lanes.job("a", n) for n in range(12)]
    recorded: list[int] = []
    outcomes = send_round(jobs, lambda known: recorded.extend(i for i, _ in known))
    assert sorted(i for i, _ in outcomes) == list(range(12)) and all(e is None for _, e in outcomes)
    assert sorted(recorded) == list(range(12)) and len(recorded) == 12  # each once
    assert lanes.started[0] == ("a", 0, 1)  # the first send went alone
    assert [n for _, n, _ in lanes.started] == list(range(12))  # started in the order given
    assert lanes.most["a"] == webhooks.PER_HOST


def test_a_failing_receiver_costs_one_try_and_the_pool_is_bounded():
    lanes = Lanes()
    jobs = [lanes.job("bad", 0, fail=True), lanes.job("bad", 1), lanes.job("bad", 2)]
    jobs += [lanes.job(f"h{k}", n) for k in range(5) for n in range(6)]
    outcomes = dict(send_round(jobs))
    assert isinstance(outcomes[0], OSError) and 1 not in outcomes and 2 not in outcomes
    assert len(outcomes) == 1 + 30 and all(outcomes[i] is None for i in range(3, 33))
    assert lanes.most_overall <= webhooks.WORKERS
    assert max(lanes.most.values()) <= webhooks.PER_HOST


def test_jobs_that_arrive_during_a_round_leave_beside_a_slow_send():
    lanes = Lanes()
    began = time.monotonic()
    given = []

    def more():
        if not given and time.monotonic() - began > 0.1:
            given.append(True)
            return [lanes.job("fast", 0, seconds=0.01)]
        return []

    outcomes = send_round([lanes.job("slow", 0, seconds=1.0)], None, more)
    assert sorted(i for i, _ in outcomes) == [0, 1]
    assert lanes.ended == [("fast", 0), ("slow", 0)]  # it did not wait for the slow one


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_during_a_round_is_delivered_before_the_round_ends(settings):
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True
    release = threading.Event()
    arrived: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/slow":
                release.wait(5)
            arrived[self.headers["Idempotency-Key"]] = time.monotonic()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    wake = threading.Event()
    try:
        [slow] = fire(f"{base}/slow")
        delivering = threading.Thread(target=lambda: deliver_due(now=10**9, wake=wake))
        delivering.start()
        time.sleep(0.3)  # the round is under way, its one send stuck at the slow receiver
        [fast] = fire(f"http://localhost:{server.server_port}/fast")  # another host (netloc)
        wake.set()
        deadline = time.monotonic() + 3
        while fast not in arrived and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fast in arrived and slow not in arrived  # delivered while the round still ran
        release.set()
        delivering.join(10)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert outcome(fast)[:2] == ("delivered", 1) and outcome(slow)[:2] == ("delivered", 1)
