"""The rules of a vendor app's REST budget, shared by every store (memory, database, Redis).

Fyers counts 10 requests a second, 200 a minute and 100,000 a day per app, across every
process using it. The second and minute are sliding windows over the start times of the
calls already made (a fixed window would let 20 through around a second's boundary); the
day is a counter that starts afresh at 00:00 IST (Fyers' day).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

DAY_OFFSET = 19800  # seconds east of UTC of the budget's day (IST: Fyers resets daily counts then)


@dataclass(frozen=True, slots=True)
class Limits:
    per_second: int = 10
    per_minute: int = 200
    per_day: int = 100_000
    second: float = 1.0    # window lengths: a shared store adds a margin for network jitter;
    minute: float = 60.0   # tests shrink the minute to see it roll over quickly

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.per_minute <= 0 or self.per_day <= 0:
            raise ValueError("rate limits must be positive")


class DayExhausted(RuntimeError):
    """The app's daily request budget is used up: no request until the next day starts."""

    def __init__(self, used: int, limit: int, resumes: float) -> None:
        super().__init__(f"daily REST budget used up ({used} of {limit} requests)")
        self.used = used
        self.limit = limit
        self.resumes = resumes  # epoch seconds of the next budget day


def day_number(t: float) -> int:
    """The budget day ``t`` falls in (days since 1970-01-01 in IST)."""
    return int((t + DAY_OFFSET) // 86400)


def day_start(day: int) -> float:
    return day * 86400.0 - DAY_OFFSET


def window_wait(calls: Sequence[float], now: float, limits: Limits) -> float:
    """Seconds until one more call fits both windows (0: now). ``calls``: ascending start
    times, those older than the minute window already dropped."""
    wait = 0.0
    n = len(calls)
    if n >= limits.per_minute:
        wait = max(wait, calls[n - limits.per_minute] + limits.minute - now)
    recent = sum(1 for t in calls if t > now - limits.second)
    if recent >= limits.per_second:
        wait = max(wait, calls[n - limits.per_second] + limits.second - now)
    return max(0.0, wait)
