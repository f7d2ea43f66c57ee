"""Every TickChart setting, resolved in one place into frozen, typed values.

``tickchart/settings.py`` only turns the environment into the namespaced dicts ``MARKET``,
``FYERS``, ``FINNHUB`` and ``PULSE`` (holding just what was set) and a few ``TICKCHART_*``
flags; the defaults live in ``DEFAULTS`` below, as DRF keeps its own. Nothing else in the
project reads ``django.conf.settings`` for TickChart's settings. Results are cached and
dropped when a setting changes (``override_settings`` in tests).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from market.core.alerts import BACKOFF
from market.core.limits import Network, parse_networks
from market.core.outbox import FlowLimits
from market.core.pulse import PulseConfig
from market.core.calendar import DEFAULT_CALENDARS, Spec, specs_from_config
from market.core.sessions import DEFAULT_SESSIONS, SessionBook
from market.core.timeframes import DEFAULT_STORED, TimeframeError, TimeframePlan

#: The defaults of every namespaced setting (README "Configuration" documents each).
DEFAULTS: dict[str, dict[str, Any]] = {
    "MARKET": {
        "STORED_TIMEFRAMES": list(DEFAULT_STORED),
        "SESSIONS": None,                 # None: DEFAULT_SESSIONS (NSE, BSE, NSE_CD, NSE_COM, MCX, US)
        "CALENDARS": None,                # None: DEFAULT_CALENDARS (holiday market per session code)
        "FEED": "simulated",
        "SIM_RATE": 4.0,
        "SIM_BACKFILL_HOURS": 3.0,
        "SIM_SYMBOLS": 0,
        "FLUSH_INTERVAL": 0.5,
        "HISTORY_LIMIT": 1000,
        "MAX_LIMIT": 10_000,
        "MAX_AHEAD_SECONDS": 300.0,
        "MAX_UPDATES_PER_SECOND": 4.0,
        "READY_MAX_FEED_AGE": 0.0,
        "WS_MESSAGES_PER_SECOND": 20.0,
        "WS_MESSAGE_BURST": 60,
        "WS_MAX_FRAME_BYTES": 4096,
        "WS_MAX_SUBSCRIPTIONS": 50,
        "WS_STRIKES_TO_CLOSE": 10,
        "WS_STRIKE_WINDOW": 10.0,
        "HTTP_RATE_PER_MINUTE": 120,
        "HTTP_RATE_PATHS": ["/api/candles", "/api/symbols"],
        "HTTP_RATE_CACHE": "ratelimit",
        "TRUSTED_PROXIES": [],
        "WS_WINDOW_FRAMES": FlowLimits.frames,
        "WS_WINDOW_BYTES": FlowLimits.bytes,
        "WS_STALL_SECONDS": FlowLimits.stall_seconds,
        # prune_candles: days each stored timeframe is kept; a timeframe not listed is kept forever.
        # On PostgreSQL a timeframe listed here when its partition is made is partitioned by
        # time (per day below a minute, else per month), and pruning drops whole partitions.
        "RETENTION_DAYS": {"5s": 30, "1m": 730},
        # Live feeds' tick journal (market.feed.journal). None: "journal" beside the SQLite
        # file (var/journal on PostgreSQL); "": no journal.
        "JOURNAL_DIR": None,
        "JOURNAL_MAX_BYTES": 2 * 1024**3,
        # Candles kept in memory while writes fail; past it they are rebuilt from the journal.
        "WRITE_BUFFER_CANDLES": 50_000,
    },
    "FYERS": {
        "CLIENT_ID": "", "SECRET_KEY": "", "REDIRECT_URI": "",
        "USER_ID": "", "PIN": "", "TOTP_SECRET": "",
        "TOKEN_FILE": str(Path.home() / ".config" / "tickchart" / "fyers_token.json"),
        "LOG_DIR": None,                  # None: <BASE_DIR>/var/log/fyers
        "API_BASE": "https://api-t1.fyers.in",
        "LOGIN_BASE": "https://api-t2.fyers.in",
        "PUBLIC_BASE": "https://public.fyers.in",
        "WS_URL": "wss://socket.fyers.in/hsm/v1-5/prod",
        "RATE_PER_SECOND": 10, "RATE_PER_MINUTE": 200, "RATE_PER_DAY": 100_000,
        # Where every process of the app shares the REST and symbol budgets (market.budget):
        # None: REDIS_URL when set, else "database"; or a redis:// URL, "database", "memory".
        "BUDGET_STORE": None,
        "STALL_SECONDS": 90.0, "BACKOFF_MIN": 2.0, "BACKOFF_MAX": 120.0,
        "REFRESH_SECONDS": 2.0, "QUEUE_MAX": 200_000, "MAX_SYMBOLS": 5000,
        "BACKFILL_DAYS": 5.0,
        "RECONCILE_SECONDS": 300.0, "RECONCILE_LOOKBACK": 1800.0, "RECONCILE_BUDGET": 0.5,
        "RECORD_DIR": "",
        "ON_DEMAND": True, "DEMAND_LINGER_SECONDS": 300.0, "DEMAND_TTL_SECONDS": 90.0,
    },
    "FINNHUB": {
        "API_KEY": "",
        "WS_URL": "wss://ws.finnhub.io",
        "MAX_SYMBOLS": 50,
        "PREFIX_KINDS": None,             # None: market.vendors.finnhub.messages.DEFAULT_PREFIX_KINDS
        "STOCK_EXCHANGE": "US",
        "EXCLUDED_CONDITIONS": [],
        "BACKOFF_MIN": 1.0, "BACKOFF_MAX": 60.0,
        "REFRESH_SECONDS": 30.0,
        "ON_DEMAND": True, "DEMAND_LINGER_SECONDS": 300.0, "DEMAND_TTL_SECONDS": 90.0,
    },
    "PULSE": {
        "SYMBOLS": [],
        "PUBLISH_INTERVAL": 1.0,
        "VOL_WINDOW": 900,
        "REGIME_PERCENTILE": 80.0,
        "REGIME_LOOKBACK": 240,
        "REGIME_MIN_SAMPLES": 20,
        "COOLDOWN": 30.0,
        "THRESHOLDS": {
            "equity": {"move_1m": 0.005, "move_5m": 0.01, "vol_spike": 2.5},
            "index": {"move_1m": 0.003, "move_5m": 0.007, "vol_spike": 2.5},
            "currency": {"move_1m": 0.001, "move_5m": 0.0025, "vol_spike": 2.5},
            "crypto": {"move_1m": 0.01, "move_5m": 0.02, "vol_spike": 2.5},
            "default": {"move_1m": 0.005, "move_5m": 0.01, "vol_spike": 2.5},
        },
        "CORR_BASE": "",
        "CORR_BUCKET": 60,
        "CORR_LOOKBACK": 60,
        "CORR_LOOKBACK_HIGH_VOL": 30,
        "CORR_MIN_POINTS": 5,
        "CORR_TOP": 10,
        "RECENT_EVENTS": 50,
        "WEBHOOK_URL": "",
    },
}

#: Sources whose feeds stream known symbols on demand: the namespaces with ``ON_DEMAND``.
ON_DEMAND_SOURCES: tuple[str, ...] = tuple(ns.lower() for ns, d in DEFAULTS.items() if "ON_DEMAND" in d)


def raw(namespace: str) -> dict[str, Any]:
    """A namespace's defaults overlaid with what ``settings`` sets (None counts as unset)."""
    given = getattr(settings, namespace, None) or {}
    return {**DEFAULTS[namespace], **{k: v for k, v in given.items() if v is not None}}


@receiver(setting_changed)
def forget(**kwargs: Any) -> None:
    """Drop every resolved value (a setting changed)."""
    for resolver in (market, fyers_settings, finnhub_conf, pulse_settings, access_conf, alerts_conf, live_cache_conf):
        resolver.cache_clear()


# ---- MARKET ------------------------------------------------------------------------
@dataclass(frozen=True)
class MarketConf:
    plan: TimeframePlan
    sessions: SessionBook
    feed: str
    sim_rate: float
    sim_backfill_hours: float
    sim_symbols: int
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
    retention_days: tuple[tuple[str, float], ...] = ()  # (timeframe, days) pairs; absent: forever
    calendars: tuple[tuple[str, Spec], ...] = ()  # (session code, holiday calendar) pairs (market.core.calendar)
    journal_dir: Path | None = None  # None: no tick journal
    journal_max_bytes: int = 2 * 1024**3
    write_buffer_candles: int = 50_000


@lru_cache(maxsize=1)
def market() -> MarketConf:
    r = raw("MARKET")
    try:
        plan = TimeframePlan.build(r["STORED_TIMEFRAMES"])
        sessions = SessionBook.from_config(r["SESSIONS"] or DEFAULT_SESSIONS)
        calendars = tuple(specs_from_config(r["CALENDARS"] or DEFAULT_CALENDARS).items())
    except (TimeframeError, ValueError) as exc:
        raise ImproperlyConfigured(f"MARKET: {exc}") from exc
    if r["MAX_UPDATES_PER_SECOND"] <= 0:
        raise ImproperlyConfigured("MARKET MAX_UPDATES_PER_SECOND must be positive")
    if r["FLUSH_INTERVAL"] <= 0 or r["FLUSH_INTERVAL"] > 1:
        raise ImproperlyConfigured("MARKET FLUSH_INTERVAL must be in (0, 1] seconds")
    for key in ("WS_MESSAGES_PER_SECOND", "WS_MESSAGE_BURST", "WS_MAX_FRAME_BYTES", "WS_MAX_SUBSCRIPTIONS",
                "WS_STRIKES_TO_CLOSE", "WS_STRIKE_WINDOW"):
        if not r[key] > 0:
            raise ImproperlyConfigured(f"MARKET {key} must be positive")
    if r["HTTP_RATE_PER_MINUTE"] < 0:
        raise ImproperlyConfigured("MARKET HTTP_RATE_PER_MINUTE must be 0 (off) or positive")
    try:
        trusted = parse_networks(r["TRUSTED_PROXIES"] or ())
        flow = FlowLimits(frames=int(r["WS_WINDOW_FRAMES"]), bytes=int(r["WS_WINDOW_BYTES"]),
                          stall_seconds=float(r["WS_STALL_SECONDS"]))
    except ValueError as exc:
        raise ImproperlyConfigured(f"MARKET TRUSTED_PROXIES / WS_WINDOW_* / WS_STALL_SECONDS: {exc}") from exc
    retention: list[tuple[str, float]] = []
    stored_codes = {tf.code for tf in plan.stored}
    for code, days in (r["RETENTION_DAYS"] or {}).items():
        if days is None or code not in stored_codes:  # forever / nothing stored to prune
            continue
        if not float(days) > 0:
            raise ImproperlyConfigured(f"MARKET RETENTION_DAYS[{code!r}] must be positive days (or None: forever)")
        retention.append((code, float(days)))
    return MarketConf(
        plan=plan,
        sessions=sessions,
        feed=r["FEED"],
        sim_rate=float(r["SIM_RATE"]),
        sim_backfill_hours=float(r["SIM_BACKFILL_HOURS"]),
        sim_symbols=_sim_symbols(r["SIM_SYMBOLS"]),
        flush_interval=float(r["FLUSH_INTERVAL"]),
        history_limit=int(r["HISTORY_LIMIT"]),
        max_limit=int(r["MAX_LIMIT"]),
        max_ahead_seconds=float(r["MAX_AHEAD_SECONDS"]),
        max_updates_per_second=float(r["MAX_UPDATES_PER_SECOND"]),
        ready_max_feed_age=float(r["READY_MAX_FEED_AGE"]),
        ws_messages_per_second=float(r["WS_MESSAGES_PER_SECOND"]),
        ws_message_burst=int(r["WS_MESSAGE_BURST"]),
        ws_max_frame_bytes=int(r["WS_MAX_FRAME_BYTES"]),
        ws_max_subscriptions=int(r["WS_MAX_SUBSCRIPTIONS"]),
        ws_strikes_to_close=int(r["WS_STRIKES_TO_CLOSE"]),
        ws_strike_window=float(r["WS_STRIKE_WINDOW"]),
        http_rate_per_minute=int(r["HTTP_RATE_PER_MINUTE"]),
        http_rate_paths=tuple(r["HTTP_RATE_PATHS"]),
        http_rate_cache=r["HTTP_RATE_CACHE"],
        trusted_proxies=trusted,
        ws_flow=flow,
        retention_days=tuple(retention),
        calendars=calendars,
        journal_dir=_journal_dir(r["JOURNAL_DIR"]),
        journal_max_bytes=_positive(r, "JOURNAL_MAX_BYTES"),
        write_buffer_candles=_positive(r, "WRITE_BUFFER_CANDLES"),
    )


def _sim_symbols(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if not 0 <= n <= 10_000 or n != value:
        raise ImproperlyConfigured(f"MARKET SIM_SYMBOLS must be a whole number from 0 to 10000, not {value!r}")
    return n


def _positive(r: dict[str, Any], key: str) -> int:
    if not int(r[key]) > 0:
        raise ImproperlyConfigured(f"MARKET {key} must be positive")
    return int(r[key])


def _journal_dir(value: str | None) -> Path | None:
    """The journal's directory: given, or "journal" in the data directory (the SQLite file's)."""
    if value == "":
        return None
    if value is not None:
        return Path(value)
    db = settings.DATABASES.get("default", {})
    if "sqlite" in db.get("ENGINE", "") and str(db.get("NAME", "")) not in ("", ":memory:"):
        return Path(db["NAME"]).resolve().parent / "journal"
    return Path(settings.BASE_DIR) / "var" / "journal"


# ---- FYERS -------------------------------------------------------------------------
@dataclass(frozen=True)
class FyersConf:
    client_id: str
    secret_key: str
    redirect_uri: str
    user_id: str
    pin: str
    totp_secret: str
    token_file: str
    log_dir: str
    api_base: str
    login_base: str
    public_base: str
    ws_url: str
    rate_per_second: int
    rate_per_minute: int
    rate_per_day: int
    budget_store: str
    stall_seconds: float
    backoff_min: float
    backoff_max: float
    refresh_seconds: float
    queue_max: int
    max_symbols: int
    backfill_days: float
    reconcile_seconds: float
    reconcile_lookback: float
    reconcile_budget: float
    record_dir: str

    @property
    def totp_configured(self) -> bool:
        return bool(self.user_id and self.pin and self.totp_secret and self.secret_key and self.client_id)

    def __repr__(self) -> str:  # never print secrets, even in a traceback's locals
        return f"FyersConf(client_id={self.client_id!r}, token_file={self.token_file!r}, ...)"


@lru_cache(maxsize=1)
def fyers_settings() -> dict[str, Any]:
    r = raw("FYERS")
    if not r["LOG_DIR"]:
        r["LOG_DIR"] = str(Path(settings.BASE_DIR) / "var" / "log" / "fyers")
    if not r["BUDGET_STORE"]:
        r["BUDGET_STORE"] = getattr(settings, "REDIS_URL", None) or "database"
    return r


def fyers_conf(**overrides: Any) -> FyersConf:
    """The Fyers settings; ``overrides`` (any case) replace single values, as tests need."""
    values = {k.lower(): v for k, v in {**fyers_settings(), **overrides}.items()}
    return FyersConf(**{f.name: values[f.name] for f in fields(FyersConf)})


# ---- FINNHUB -----------------------------------------------------------------------
@dataclass(frozen=True)
class FinnhubConf:
    api_key: str
    ws_url: str
    max_symbols: int
    prefix_kinds: dict[str, str] | None  # None: the Finnhub parser's own table
    stock_exchange: str
    excluded_conditions: tuple[str, ...]
    backoff_min: float
    backoff_max: float
    refresh_seconds: float

    def __repr__(self) -> str:  # the key stays out of tracebacks too
        return f"FinnhubConf(ws_url={self.ws_url!r}, max_symbols={self.max_symbols}, ...)"


@lru_cache(maxsize=1)
def finnhub_conf() -> FinnhubConf:
    r = raw("FINNHUB")
    return FinnhubConf(
        api_key=r["API_KEY"] or "",
        ws_url=r["WS_URL"],
        max_symbols=int(r["MAX_SYMBOLS"]),
        prefix_kinds=dict(r["PREFIX_KINDS"]) if r["PREFIX_KINDS"] else None,
        stock_exchange=r["STOCK_EXCHANGE"],
        excluded_conditions=tuple(r["EXCLUDED_CONDITIONS"] or ()),
        backoff_min=float(r["BACKOFF_MIN"]),
        backoff_max=float(r["BACKOFF_MAX"]),
        refresh_seconds=float(r["REFRESH_SECONDS"]),
    )


# ---- Symbols on demand (FYERS and FINNHUB) -----------------------------------------
@dataclass(frozen=True)
class DemandConf:
    linger: float     # seconds a symbol stays subscribed after its last viewer left
    ttl: float        # seconds without a refresh after which a viewer is forgotten
    announce: float   # how often consumers re-announce (a third of ttl)


def demand_conf(source: str) -> DemandConf | None:
    """The on-demand settings of ``source``; None if its feed does not stream on demand."""
    if source not in ON_DEMAND_SOURCES:
        return None
    r = raw(source.upper())
    if not r["ON_DEMAND"]:
        return None
    ttl = float(r["DEMAND_TTL_SECONDS"])
    return DemandConf(linger=float(r["DEMAND_LINGER_SECONDS"]), ttl=ttl, announce=ttl / 3)


# ---- PULSE -------------------------------------------------------------------------
@lru_cache(maxsize=1)
def pulse_settings() -> dict[str, Any]:
    return raw("PULSE")


def pulse_conf() -> PulseConfig:
    return PulseConfig.from_mapping(pulse_settings())


# ---- Access and the pages ----------------------------------------------------------
@dataclass(frozen=True)
class AccessConf:
    public: bool          # anyone may read pages, /api/* and the sockets (read-only)
    metrics_public: bool  # /metrics open to anyone who reaches it
    metrics_token: str    # bearer secret that opens /metrics
    csp: str              # the Content-Security-Policy ('' = none)
    login_url: str

    def __repr__(self) -> str:
        return f"AccessConf(public={self.public}, metrics_public={self.metrics_public}, ...)"


@lru_cache(maxsize=1)
def access_conf() -> AccessConf:
    # Both follow DEBUG unless set (tickchart/settings.py), so the embedded default needs no account.
    return AccessConf(
        public=bool(getattr(settings, "TICKCHART_PUBLIC_ACCESS", False)),
        metrics_public=bool(getattr(settings, "TICKCHART_METRICS_PUBLIC", False)),
        metrics_token=getattr(settings, "TICKCHART_METRICS_TOKEN", "") or "",
        csp=getattr(settings, "TICKCHART_CSP", "") or "",
        login_url=settings.LOGIN_URL,
    )


# ---- Alerts (issue 13) ----------------------------------------------------------------
@dataclass(frozen=True)
class AlertsConf:
    quota: int                   # alerts one user may hold (TICKCHART_ALERT_QUOTA)
    webhook_allow_private: bool  # webhooks/channels may target loopback/private hosts
    backoff: tuple[float, ...]   # seconds before each retry (TICKCHART_WEBHOOK_BACKOFF)


@lru_cache(maxsize=1)
def alerts_conf() -> AlertsConf:
    # Private targets are allowed by default only in DEBUG: in production a webhook must not
    # reach the server's own network (SSRF).
    allow = getattr(settings, "TICKCHART_WEBHOOK_ALLOW_PRIVATE", None)
    quota = getattr(settings, "TICKCHART_ALERT_QUOTA", None)
    backoff = getattr(settings, "TICKCHART_WEBHOOK_BACKOFF", None) or ""
    return AlertsConf(
        quota=200 if quota in (None, "") else int(quota),
        webhook_allow_private=bool(settings.DEBUG) if allow in (None, "") else bool(allow),
        backoff=tuple(float(x) for x in str(backoff).split(",") if x.strip()) or BACKOFF,
    )


# ---- Reconnect storms (issue 17) ------------------------------------------------------
@dataclass(frozen=True)
class LiveCacheConf:
    # How long a stream's in-memory candles (market.live.snapshots) answer subscribes before
    # they are read again: bounds how long a write that published nothing (an import, a
    # prune) stays unseen by new subscribers. 0: every snapshot from the database.
    snapshot_seconds: float
    # How long a socket's per-connect lookups (symbol, session, feed states, the session
    # cookie's user) are reused by the next connects of the process. 0: read every time.
    lookup_seconds: float


@lru_cache(maxsize=1)
def live_cache_conf() -> LiveCacheConf:
    values = {}
    for name, default in (("TICKCHART_SNAPSHOT_CACHE_SECONDS", 30.0), ("TICKCHART_LOOKUP_CACHE_SECONDS", 2.0)):
        given = getattr(settings, name, None)
        try:
            value = default if given in (None, "") else float(given)
        except (TypeError, ValueError):
            raise ImproperlyConfigured(f"{name} must be seconds (a number), not {given!r}") from None
        if not value >= 0:  # (NaN too)
            raise ImproperlyConfigured(f"{name} must be 0 (off) or positive seconds, not {given!r}")
        values[name] = value
    return LiveCacheConf(snapshot_seconds=values["TICKCHART_SNAPSHOT_CACHE_SECONDS"],
                         lookup_seconds=values["TICKCHART_LOOKUP_CACHE_SECONDS"])
