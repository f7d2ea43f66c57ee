"""The shared REST limiter: 10/s and 200/min sliding windows, 429 backoff (fake clock)."""

from __future__ import annotations

import threading

import pytest

from market.conf import fyers_conf
from market.vendors.fyers.ratelimit import RateLimiter, shared_limiter


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_ten_a_second_then_it_waits_for_the_window():
    c = Clock()
    lim = RateLimiter(10, 200, clock=c, sleep=c.sleep)
    for _ in range(10):
        assert lim.acquire() == 0.0
    assert lim.acquire() == pytest.approx(1.0)  # the 11th waits until the first leaves the 1 s window
    assert c.t == pytest.approx(1001.0)


def test_two_hundred_a_minute_even_when_paced_under_ten_a_second():
    c = Clock()
    lim = RateLimiter(10, 200, clock=c, sleep=c.sleep)
    starts = []
    for _ in range(201):
        lim.acquire()
        starts.append(c.t)
    # no 60 s window ever holds more than 200 calls, and the 201st had to wait for the minute
    for i in range(len(starts) - 200):
        assert starts[i + 200] - starts[i] >= 60.0 - 1e-9
    assert starts[200] - starts[0] == pytest.approx(60.0)
    assert lim.calls == 201


def test_a_429_pauses_everyone_and_backs_off_doubling_then_resets():
    c = Clock()
    lim = RateLimiter(10, 200, clock=c, sleep=c.sleep, min_backoff=1.0, max_backoff=8.0)
    assert lim.throttle() == 1.0
    assert lim.acquire() == pytest.approx(1.0)
    assert lim.throttle() == 2.0
    assert lim.throttle() == 4.0
    assert lim.throttle() == 8.0
    assert lim.throttle() == 8.0  # capped
    assert lim.throttle(retry_after=30) == 30.0  # the server's Retry-After wins when longer
    lim.succeeded()
    assert lim.throttle() == 1.0
    assert lim.throttled == 7


def test_threads_share_one_limit():
    c = Clock()
    lock = threading.Lock()

    def sleep(s: float) -> None:  # a shared fake clock: sleeping advances it for everyone
        with lock:
            c.t += s

    lim = RateLimiter(10, 200, clock=c, sleep=sleep)
    threads = [threading.Thread(target=lambda: [lim.acquire() for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lim.calls == 100
    calls = sorted(lim.store.calls[lim.app].values())
    for i in range(len(calls) - 10):
        assert calls[i + 10] - calls[i] >= 1.0 - 1e-9


def test_one_limiter_per_process_and_bad_limits_refused():
    assert shared_limiter(fyers_conf()) is shared_limiter(fyers_conf())
    assert shared_limiter(fyers_conf()).store.name in ("database", "redis")
    with pytest.raises(ValueError):
        RateLimiter(0, 200)
