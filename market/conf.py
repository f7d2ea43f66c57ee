"""The ``MARKET`` settings, resolved once into typed values (the only reader of them)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from market.core.outbox import FlowLimits
from market.core.limits import Network, parse_networks
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
    # Limits (README "Limits"; mechanics in market.core.limits).
    ws_messages_per_second: float
    ws_message_burst: int
    ws_max_frame_bytes: int
    ws_max_subscriptions: int
    ws_strikes_to_close: int
    ws_strike_window: float
    http_rate_per_minute: int  # 0: no HTTP limit
    http_rate_paths: tuple[str, ...]
    http_rate_cache: str
    trusted_proxies: tuple[Network, ...]
    ws_flow: FlowLimits = FlowLimits()  # per-connection send window (market.core.outbox)


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
    for key in ("WS_MESSAGES_PER_SECOND", "WS_MESSAGE_BURST", "WS_MAX_FRAME_BYTES", "WS_MAX_SUBSCRIPTIONS",
                "WS_STRIKES_TO_CLOSE", "WS_STRIKE_WINDOW"):
        if key in raw and not raw[key] > 0:
            raise ImproperlyConfigured(f"MARKET {key} must be positive")
    if raw.get("HTTP_RATE_PER_MINUTE", 0) < 0:
        raise ImproperlyConfigured("MARKET HTTP_RATE_PER_MINUTE must be 0 (off) or positive")
    try:
        trusted = parse_networks(raw.get("TRUSTED_PROXIES") or ())
    except ValueError as exc:
        raise ImproperlyConfigured(f"MARKET TRUSTED_PROXIES: {exc}") from exc
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
        ws_messages_per_second=float(raw.get("WS_MESSAGES_PER_SECOND", 20)),
        ws_message_burst=int(raw.get("WS_MESSAGE_BURST", 60)),
        ws_max_frame_bytes=int(raw.get("WS_MAX_FRAME_BYTES", 4096)),
        ws_max_subscriptions=int(raw.get("WS_MAX_SUBSCRIPTIONS", 50)),
        ws_strikes_to_close=int(raw.get("WS_STRIKES_TO_CLOSE", 10)),
        ws_strike_window=float(raw.get("WS_STRIKE_WINDOW", 10)),
        http_rate_per_minute=int(raw.get("HTTP_RATE_PER_MINUTE", 120)),
        http_rate_paths=tuple(raw.get("HTTP_RATE_PATHS", ("/api/candles", "/api/symbols"))),
        http_rate_cache=raw.get("HTTP_RATE_CACHE", "default"),
        trusted_proxies=trusted,
        ws_flow=_ws_flow(raw),
    )


def _ws_flow(raw: dict) -> FlowLimits:
    try:
        return FlowLimits(
            frames=int(raw.get("WS_WINDOW_FRAMES", FlowLimits.frames)),
            bytes=int(raw.get("WS_WINDOW_BYTES", FlowLimits.bytes)),
            stall_seconds=float(raw.get("WS_STALL_SECONDS", FlowLimits.stall_seconds)),
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"MARKET WS_WINDOW_*/WS_STALL_SECONDS: {exc}") from exc
