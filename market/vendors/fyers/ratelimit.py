"""One REST rate limiter per process: Fyers counts every REST call of an app together.

Limits (Fyers API v3): 10 requests a second and 200 a minute; breaking the per-minute
limit more than three times a day blocks the key for the rest of the day. So the
limiter waits *before* a call would exceed either window (sliding windows, not a token
bucket that allows bursts over the limit), and a 429 answer makes every caller back off,
doubling up to ``max_backoff``.

Thread-safe (the history client runs in worker threads); clock and sleep are injected
so tests run without real waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable


class RateLimiter:
    def __init__(
        self, per_second: int = 10, per_minute: int = 200, *,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
        min_backoff: float = 1.0, max_backoff: float = 60.0,
    ) -> None:
        if per_second <= 0 or per_minute <= 0:
            raise ValueError("rate limits must be positive")
        self.per_second = per_second
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()  # start times within the last minute
        self._lock = threading.Lock()
        self._blocked_until = 0.0
        self._backoff = 0.0
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.calls = 0
        self.waited = 0.0
        self.throttled = 0  # 429 answers seen

    def _wait_needed(self, now: float) -> float:
        calls = self._calls
        while calls and calls[0] <= now - 60.0:
            calls.popleft()
        wait = max(0.0, self._blocked_until - now)
        if len(calls) >= self.per_minute:
            wait = max(wait, calls[len(calls) - self.per_minute] + 60.0 - now)
        if len(calls) >= self.per_second:
            wait = max(wait, calls[len(calls) - self.per_second] + 1.0 - now)
        return wait

    def acquire(self) -> float:
        """Block until one more call fits both windows; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    self._calls.append(now)
                    self.calls += 1
                    self.waited += waited
                    return waited
            self._sleep(wait)
            waited += wait

    def throttle(self, retry_after: float | None = None) -> float:
        """A 429: everyone pauses (Retry-After if given, else doubling backoff)."""
        with self._lock:
            self.throttled += 1
            self._backoff = min(self.max_backoff, max(self.min_backoff, self._backoff * 2))
            pause = max(self._backoff, retry_after or 0.0)
            self._blocked_until = max(self._blocked_until, self._clock() + pause)
            return pause

    def succeeded(self) -> None:
        """A good answer resets the backoff."""
        with self._lock:
            self._backoff = 0.0

    def capacity_per_minute(self) -> int:
        return min(self.per_minute, self.per_second * 60)


_shared: RateLimiter | None = None
_shared_lock = threading.Lock()


def shared_limiter(per_second: int = 10, per_minute: int = 200) -> RateLimiter:
    """The process-wide limiter every Fyers REST call goes through."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RateLimiter(per_second, per_minute)
        return _shared
