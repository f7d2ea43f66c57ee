"""The REST rate limiter every Fyers call goes through, over one budget per app.

Limits (Fyers API v3, per app): 10 requests a second, 200 a minute, 100,000 a day;
breaking the per-minute limit more than three times a day blocks the app for the rest of
the day. Every process using the app (runfeed, its shards, ``backfill``) counts in one
shared store (``market.budget``: Redis, else the database), so the limiter waits *before*
a call would exceed a window (sliding windows with a small margin for network jitter,
never a token bucket that allows bursts; a call counts from its answer once it has one,
``done``), a 429 makes every process back off (doubling up
to ``max_backoff``), and when the day's count is used up every call raises
``DayExhausted`` with one log line until the next day (00:00 IST).

Thread-safe; clock and sleep are injected so tests run without real waiting.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Callable

from market.budget import MemoryStore, Store, shared_store
from market.core.budget import DayExhausted, Limits

if TYPE_CHECKING:
    from market.conf import FyersConf

logger = logging.getLogger("market.fyers")

MARGIN = 0.25         # seconds added to both windows of a shared budget (a request may reach Fyers late)
STORE_RETRY = 1.0     # seconds between tries while the shared store is unreachable

__all__ = ["DayExhausted", "RateLimiter", "shared_limiter"]


class RateLimiter:
    def __init__(
        self, per_second: int = 10, per_minute: int = 200, *, per_day: int = 100_000,
        limits: Limits | None = None, store: Store | None = None, app: str = "fyers",
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
        min_backoff: float = 1.0, max_backoff: float = 60.0,
    ) -> None:
        self.limits = limits or Limits(per_second, per_minute, per_day)
        self.per_second = self.limits.per_second
        self.per_minute = self.limits.per_minute
        self.store = store or MemoryStore(clock)
        self.app = app
        self._sleep = sleep
        self._lock = threading.Lock()
        self._backoff = 0.0
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.calls = 0
        self.waited = 0.0
        self.throttled = 0  # 429 answers seen
        self._told_day = 0.0  # the next-day time of the last "used up" log line
        self._local = threading.local()  # the calling thread's granted, unanswered call

    def acquire(self) -> float:
        """Block until one more call fits every window of the app's budget; returns the
        seconds waited. Raises ``DayExhausted`` when today's requests are used up."""
        waited = 0.0
        ticket = uuid.uuid4().hex
        while True:
            try:
                wait = self.store.take(self.app, self.limits, ticket)
            except DayExhausted as exc:
                self._tell_exhausted(exc)
                raise
            except Exception as exc:  # noqa: BLE001 - Redis or the database briefly away: wait, never overspend
                logger.warning("fyers: the shared REST budget (%s) is unreachable (%s); waiting",
                               self.store.name, type(exc).__name__)
                wait = STORE_RETRY
            if wait <= 0:
                with self._lock:
                    self.calls += 1
                    self.waited += waited
                self._local.ticket = ticket
                return waited
            self._sleep(wait)
            waited += wait

    def done(self) -> None:
        """The calling thread's last granted call got its answer (or failed): from now on it
        counts at this moment, the latest it can have reached Fyers. Without it a call
        counts from its start, and a request delayed on the way could reach Fyers closer to
        the next ones than the windows allow."""
        ticket = getattr(self._local, "ticket", None)
        if ticket is None:
            return
        self._local.ticket = None
        try:
            self.store.finish(self.app, ticket)
        except Exception as exc:  # noqa: BLE001 - it still counts from its start
            logger.warning("fyers: the shared REST budget (%s) is unreachable (%s)", self.store.name,
                           type(exc).__name__)

    def _tell_exhausted(self, exc: DayExhausted) -> None:
        with self._lock:
            if self._told_day == exc.resumes:
                return
            self._told_day = exc.resumes
        logger.error("fyers: the daily REST budget of app %s is used up (%d of %d requests today, every "
                     "process together); no Fyers REST request until %s", self.app, exc.used, exc.limit,
                     time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(exc.resumes)))

    def throttle(self, retry_after: float | None = None) -> float:
        """A 429: every process pauses (Retry-After if given, else doubling backoff)."""
        with self._lock:
            self.throttled += 1
            self._backoff = min(self.max_backoff, max(self.min_backoff, self._backoff * 2))
            pause = max(self._backoff, retry_after or 0.0)
        try:
            self.store.block(self.app, pause)
        except Exception as exc:  # noqa: BLE001
            logger.warning("fyers: cannot share a 429 pause through %s (%s)", self.store.name, type(exc).__name__)
        return pause

    def succeeded(self) -> None:
        """A good answer resets the backoff."""
        with self._lock:
            self._backoff = 0.0

    def used_today(self) -> int:
        return self.store.used_today(self.app)

    def capacity_per_minute(self) -> int:
        return min(self.per_minute, self.per_second * 60)


_shared: dict[tuple, RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(conf: "FyersConf") -> RateLimiter:
    """The process's limiter for the app of ``conf``, over the shared store it names."""
    key = (conf.client_id, conf.budget_store, conf.rate_per_second, conf.rate_per_minute, conf.rate_per_day)
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None:
            limits = Limits(conf.rate_per_second, conf.rate_per_minute, conf.rate_per_day,
                            second=1.0 + MARGIN, minute=60.0 + MARGIN)
            limiter = _shared[key] = RateLimiter(limits=limits, store=shared_store(conf.budget_store),
                                                 app=conf.client_id or "fyers", clock=time.time)
        return limiter
