"""The ``MARKET`` settings, resolved once into typed values (the only reader of them)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from market.core.sessions import DEFAULT_SESSIONS, SessionBook
from market.core.timeframes import TimeframeError, TimeframePlan


@dataclass(frozen=True)
class MarketConf:
    plan: TimeframePlan
    sessions: SessionBook
    feed: str
    sim_rate: float
    sim_backfill_hours: float
    flush_interval: float
    history_limit: int
    max_limit: int
    max_ahead_seconds: float
    max_updates_per_second: float
    ready_max_feed_age: float


@lru_cache(maxsize=1)
def market() -> MarketConf:
    raw = settings.MARKET
    try:
        plan = TimeframePlan.build(raw["STORED_TIMEFRAMES"])
        sessions = SessionBook.from_config(raw.get("SESSIONS") or DEFAULT_SESSIONS)
    except (TimeframeError, ValueError) as exc:
        raise ImproperlyConfigured(f"MARKET: {exc}") from exc
    if raw["MAX_UPDATES_PER_SECOND"] <= 0:
        raise ImproperlyConfigured("MARKET MAX_UPDATES_PER_SECOND must be positive")
    if raw["FLUSH_INTERVAL"] <= 0 or raw["FLUSH_INTERVAL"] > 1:
        raise ImproperlyConfigured("MARKET FLUSH_INTERVAL must be in (0, 1] seconds")
    return MarketConf(
        plan=plan,
        sessions=sessions,
        feed=raw["FEED"],
        sim_rate=raw["SIM_RATE"],
        sim_backfill_hours=raw["SIM_BACKFILL_HOURS"],
        flush_interval=raw["FLUSH_INTERVAL"],
        history_limit=raw["HISTORY_LIMIT"],
        max_limit=raw["MAX_LIMIT"],
        max_ahead_seconds=raw["MAX_AHEAD_SECONDS"],
        max_updates_per_second=raw["MAX_UPDATES_PER_SECOND"],
        ready_max_feed_age=raw.get("READY_MAX_FEED_AGE", 0.0),
    )
