"""TickChart settings: everything comes from the environment, with documented defaults.

Two ways to run (README, "Configuration"):
- embedded default: no DATABASE_URL, no REDIS_URL -> SQLite (WAL) and the in-process
  channel layer; one process serves the page and runs the simulated feed.
- production: DATABASE_URL=postgres://..., REDIS_URL=redis://..., DJANGO_DEBUG=0 and a
  SECRET_KEY; daphne workers and one `manage.py runfeed` meet on Redis.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item for item in (env(name, default) or "").replace(",", " ").split() if item]


# ---- Core -------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost 127.0.0.1 [::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "market",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "market.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "market.ratelimit_middleware.RateLimitMiddleware",  # after auth: counts per user, else per address
]

ROOT_URLCONF = "tickchart.urls"
ASGI_APPLICATION = "tickchart.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---- Database ---------------------------------------------------------------------
# DATABASE_URL switches to PostgreSQL (or anything dj-database-url reads); without it,
# SQLite in WAL mode at TICKCHART_DB_PATH (default var/tickchart.sqlite3).
DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
else:
    _db_path = Path(env("TICKCHART_DB_PATH", str(BASE_DIR / "var" / "tickchart.sqlite3")))
    _db_path.parent.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _db_path,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---- Channel layer ----------------------------------------------------------------
# REDIS_URL selects channels-redis' pub/sub layer (one PUBLISH per group message; see
# README "Channel layer"); without it the in-process layer, valid only in one process.
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # redis-py 8 defaults socket_timeout to 5 s, which kills idle subscribers
                # blocked in a 5 s read; and caps async pools at 100 connections.
                "hosts": [{"address": REDIS_URL, "socket_timeout": None, "max_connections": 10_000}],
                "prefix": env("TICKCHART_CHANNEL_PREFIX", "tickchart"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            # The default 1-day group expiry would silently drop a chart left open longer.
            # market.relay's one channel carries every watched group of the process. (The
            # in-memory layer uses channel_capacity as given: (compiled pattern, size) pairs.)
            "CONFIG": {"group_expiry": 10 * 365 * 86400, "capacity": 1000,
                       "channel_capacity": [(re.compile(r"relay\..*"), 100_000)]},
        }
    }

# daphne sends a frame at once when its socket buffer is empty (tickchart/eager_writes.py),
# instead of on the reactor's next turn: a third of the CPU of a busy fan-out.
TICKCHART_EAGER_WRITES = env_bool("TICKCHART_EAGER_WRITES", True)
# Seconds between full garbage collections in web processes (tickchart/gc_tuning.py);
# 0 = Python's automatic ones, which paused daphne 60-100 ms mid-fan-out.
TICKCHART_GC_FULL_SECONDS = float(env("TICKCHART_GC_FULL_SECONDS", "300") or 0)

# ---- Cache -------------------------------------------------------------------------
# "ratelimit" holds the HTTP rate-limit counts (market.ratelimit_middleware): in Redis
# (Django's RedisCache) when REDIS_URL is set, so every daphne process shares them; else
# in this process's memory. Short timeouts: a Redis outage must not stall requests (the
# middleware then lets them through and logs it).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    CACHES["ratelimit"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("TICKCHART_CHANNEL_PREFIX", "tickchart"),
        "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
    }
else:
    CACHES["ratelimit"] = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "tickchart-ratelimit",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }

# ---- Auth, i18n, static -----------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# In DEBUG whitenoise serves straight from the finders; in production run collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# ---- Access and security (docs/security.md) --------------------------------------
# Who may read the market (market.access). Off in production: the chart and pulse pages,
# /api/* and the sockets need a signed-in user (or, for /api/*, a personal token). The
# default follows DEBUG so the embedded one-command default works without an account.
TICKCHART_PUBLIC_ACCESS = env_bool("TICKCHART_PUBLIC_ACCESS", DEBUG)
# /metrics: a staff session or "Authorization: Bearer <TICKCHART_METRICS_TOKEN>"; open when
# TICKCHART_METRICS_PUBLIC is on (default: DEBUG), e.g. when only a private network reaches it.
TICKCHART_METRICS_TOKEN = env("TICKCHART_METRICS_TOKEN", "") or ""
TICKCHART_METRICS_PUBLIC = env_bool("TICKCHART_METRICS_PUBLIC", DEBUG)
# Optional second factor for the admin (django-otp: TOTP apps and static backup codes).
TICKCHART_ADMIN_OTP = env_bool("TICKCHART_ADMIN_OTP", False)
if TICKCHART_ADMIN_OTP:
    try:
        import django_otp  # noqa: F401
    except ImportError as exc:
        raise ImproperlyConfigured("TICKCHART_ADMIN_OTP=1 needs django-otp: pip install django-otp") from exc
    INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "django_otp.plugins.otp_static"]
    MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                      "django_otp.middleware.OTPMiddleware")
    OTP_TOTP_ISSUER = "TickChart"

# The admin shows a new API token's secret once, in a message: keep messages server-side.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Cookies only over HTTPS in production (SECURE_COOKIES=0 for a plain-HTTP test bench).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = int(env("SESSION_COOKIE_AGE", str(14 * 86400)) or 14 * 86400)
# TLS: behind nginx, SECURE_PROXY_SSL_HEADER=1 trusts its X-Forwarded-Proto (the example
# config always sets it; never enable this where clients can reach daphne directly).
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Probes and scrapers talk to daphne over loopback HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "0") or 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS: list[str] = []
if not SECURE_HSTS_PRELOAD:
    # security.W021 asks for the HSTS preload flag. Preloading is a one-way commitment of a
    # whole registrable domain (hstspreload.org), not something an app should make for its
    # owner; opt in with SECURE_HSTS_PRELOAD=1 (docs/security.md).
    SILENCED_SYSTEM_CHECKS.append("security.W021")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (market.csp): no inline scripts or styles anywhere. The one hash
# is lightweight-charts' attribution-logo <style> element (tests/security/test_deploy.py
# checks it against the vendored build).
TICKCHART_CSP = env("TICKCHART_CSP", "") or (
    "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# ---- Logging ----------------------------------------------------------------------
# Error pages and reports hide the broker PIN, webhook URLs and URL credentials too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "market.reporting.SecretSafeExceptionReporterFilter"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}

# ---- TickChart --------------------------------------------------------------------
# Resolved and validated by market.conf; every key documented in README "Configuration".
_sessions_env = env("TICKCHART_SESSIONS")
MARKET = {
    # Timeframes kept in the database; the other codes are derived on read.
    "STORED_TIMEFRAMES": env_list("TICKCHART_TIMEFRAMES", "5s 1m 5m 15m 1h 1d"),
    # Exchange sessions (JSON); exchanges not listed trade round the clock in UTC.
    "SESSIONS": json.loads(_sessions_env) if _sessions_env else None,
    # Feed used by `runfeed` without --source: simulated | replay.
    "FEED": env("TICKCHART_FEED", "simulated"),
    # Simulated feed: ticks per second per symbol and hours back-filled on first run.
    "SIM_RATE": float(env("TICKCHART_SIM_RATE", "4") or 4),
    "SIM_BACKFILL_HOURS": float(env("TICKCHART_SIM_BACKFILL_HOURS", "3") or 3),
    # How often runfeed writes changed candles and publishes them (seconds).
    "FLUSH_INTERVAL": float(env("TICKCHART_FLUSH_INTERVAL", "0.5") or 0.5),
    # Candles a page or a subscription gets when it asks for "the newest".
    "HISTORY_LIMIT": int(env("TICKCHART_HISTORY_LIMIT", "1000") or 1000),
    "MAX_LIMIT": 10_000,
    # Live sources reject ticks this far ahead of the wall clock (contract e).
    "MAX_AHEAD_SECONDS": 300,
    # Conflation: updates per second per (symbol, timeframe) stream; finals always go.
    "MAX_UPDATES_PER_SECOND": float(env("TICKCHART_MAX_UPDATES_PER_SECOND", "4") or 4),
    # /readyz fails when no feed heartbeat is this recent (seconds); 0 = report only.
    "READY_MAX_FEED_AGE": float(env("TICKCHART_READY_MAX_FEED_AGE", "0") or 0),
    # ---- Limits (README "Limits"; market.core.limits, resolved in market.conf) ----
    # WebSocket, per connection: client messages a second and the burst allowed at once (a
    # page re-subscribes its whole watchlist after a reconnect: keep the burst above
    # WS_MAX_SUBSCRIPTIONS), frame size, subscriptions. A message over a limit gets
    # {"type":"error","code":...}; WS_STRIKES_TO_CLOSE of those within WS_STRIKE_WINDOW
    # seconds close the socket with code 4429.
    "WS_MESSAGES_PER_SECOND": float(env("TICKCHART_WS_MESSAGES_PER_SECOND", "20") or 20),
    "WS_MESSAGE_BURST": int(env("TICKCHART_WS_MESSAGE_BURST", "60") or 60),
    "WS_MAX_FRAME_BYTES": int(env("TICKCHART_WS_MAX_FRAME_BYTES", "4096") or 4096),
    "WS_MAX_SUBSCRIPTIONS": int(env("TICKCHART_WS_MAX_SUBSCRIPTIONS", "50") or 50),
    "WS_STRIKES_TO_CLOSE": int(env("TICKCHART_WS_STRIKES_TO_CLOSE", "10") or 10),
    "WS_STRIKE_WINDOW": float(env("TICKCHART_WS_STRIKE_WINDOW", "10") or 10),
    # HTTP (market.ratelimit_middleware): requests a minute to these paths per signed-in
    # user, else per client address; 0 turns it off. Counted in CACHES[HTTP_RATE_CACHE].
    "HTTP_RATE_PER_MINUTE": int(env("TICKCHART_HTTP_RATE_PER_MINUTE", "120") or 0),
    "HTTP_RATE_PATHS": ["/api/candles", "/api/symbols"],
    "HTTP_RATE_CACHE": "ratelimit",
    # Peers whose X-Forwarded-For is believed (addresses or networks, e.g. 127.0.0.1 when
    # nginx proxies to daphne without --proxy-headers). Empty: REMOTE_ADDR only.
    "TRUSTED_PROXIES": env_list("TICKCHART_TRUSTED_PROXIES", ""),
    # Slow clients (docs/deploy.md): live frames a browser may leave unacknowledged (and
    # bytes), then it is "behind" and caught up later; closed (4008) after this many
    # seconds behind without acking. WS_WINDOW_FRAMES=0 disables flow control.
    "WS_WINDOW_FRAMES": int(env("TICKCHART_WS_WINDOW_FRAMES", "256") or 256),
    "WS_WINDOW_BYTES": int(env("TICKCHART_WS_WINDOW_BYTES", "524288") or 524288),
    "WS_STALL_SECONDS": float(env("TICKCHART_WS_STALL_SECONDS", "60") or 60),
}

# ---- Finnhub feed (`runfeed --source finnhub`; docs/finnhub.md) -------------------------
# The API key comes from the environment only; it is never logged (the feed redacts it).
FINNHUB = {
    "API_KEY": env("FINNHUB_API_KEY"),
    # Tests point this at a loopback server speaking Finnhub's protocol.
    "WS_URL": env("FINNHUB_WS_URL", "wss://ws.finnhub.io"),
    # Finnhub's free plan: 50 symbols per connection. Symbols past it are named in the log
    # and in the feed status every browser sees; never dropped silently.
    "MAX_SYMBOLS": int(env("FINNHUB_MAX_SYMBOLS", "50") or 50),
    # Exchange prefix -> asset class for "PREFIX:..." symbols; plain tickers are US stocks.
    "PREFIX_KINDS": None,  # None: market.core.finnhub_messages.DEFAULT_PREFIX_KINDS
    "STOCK_EXCHANGE": "US",
    # Trade condition codes whose prints are dropped (counted as excluded_condition).
    "EXCLUDED_CONDITIONS": env_list("FINNHUB_EXCLUDED_CONDITIONS", ""),
    # Reconnect backoff (seconds, doubled per failure up to the maximum).
    "BACKOFF_MIN": float(env("FINNHUB_BACKOFF_MIN", "1") or 1),
    "BACKOFF_MAX": float(env("FINNHUB_BACKOFF_MAX", "60") or 60),
    # How often the feed re-reads which symbols to stream (admin / add_symbols changes).
    "REFRESH_SECONDS": float(env("FINNHUB_REFRESH_SECONDS", "30") or 30),
    # Symbols on demand (docs/finnhub.md): any known finnhub symbol streams while a browser
    # watches it; it stays subscribed this long after the last viewer left; a web worker
    # silent for DEMAND_TTL_SECONDS (it re-announces every third of it) is forgotten.
    "ON_DEMAND": env_bool("FINNHUB_ON_DEMAND", True),
    "DEMAND_LINGER_SECONDS": float(env("FINNHUB_DEMAND_LINGER_SECONDS", "300") or 300),
    "DEMAND_TTL_SECONDS": float(env("FINNHUB_DEMAND_TTL_SECONDS", "90") or 90),
}

# ---- Market Pulse (/pulse/, `runpulse`; docs/pulse.md) ----------------------------------
# Defaults are the ancestor's (SEEDS S1): 1m/5m/15m windows, high_vol above the 80th
# percentile of recent volatility, 30 s cooldown per symbol and event type.
PULSE = {
    # Watched universe: empty = every active symbol.
    "SYMBOLS": env_list("PULSE_SYMBOLS", ""),
    "PUBLISH_INTERVAL": float(env("PULSE_PUBLISH_INTERVAL", "1") or 1),
    "VOL_WINDOW": 900,                 # seconds of 1m closes in the volatility and slope
    "REGIME_PERCENTILE": 80.0,
    "REGIME_LOOKBACK": 240,            # volatility samples (one per closed minute)
    "REGIME_MIN_SAMPLES": 20,
    "COOLDOWN": float(env("PULSE_COOLDOWN", "30") or 30),
    # Per asset class: move_1m / move_5m are absolute returns; vol_spike is the ratio of
    # the 15m volatility to the median of the symbol's recent volatility.
    "THRESHOLDS": {
        "equity": {"move_1m": 0.005, "move_5m": 0.01, "vol_spike": 2.5},
        "index": {"move_1m": 0.003, "move_5m": 0.007, "vol_spike": 2.5},
        "currency": {"move_1m": 0.001, "move_5m": 0.0025, "vol_spike": 2.5},
        "crypto": {"move_1m": 0.01, "move_5m": 0.02, "vol_spike": 2.5},
        "default": {"move_1m": 0.005, "move_5m": 0.01, "vol_spike": 2.5},
    },
    # Correlation card: base symbol (empty: the first watched), time bucket, look-back in
    # buckets (shorter while the base is in the high_vol regime), rows shown.
    "CORR_BASE": env("PULSE_CORR_BASE", "") or "",
    "CORR_BUCKET": int(env("PULSE_CORR_BUCKET", "60") or 60),
    "CORR_LOOKBACK": 60,
    "CORR_LOOKBACK_HIGH_VOL": 30,
    "CORR_MIN_POINTS": 5,
    "CORR_TOP": 10,
    # Stress events shown on /pulse/ after a refresh.
    "RECENT_EVENTS": 50,
    # Optional alert delivery: POST each stress event as JSON to this URL.
    "WEBHOOK_URL": env("PULSE_WEBHOOK_URL", "") or "",
}

# ---- Fyers feed (`runfeed --source fyers`, fyers_login, backfill; docs/fyers.md) ----------
# Credentials come from the environment only; they are never logged or shown in the admin.
FYERS = {
    "CLIENT_ID": env("FYERS_CLIENT_ID", "") or "",          # e.g. "XB12345-100"
    "SECRET_KEY": env("FYERS_SECRET_KEY", "") or "",
    "REDIRECT_URI": env("FYERS_REDIRECT_URI", "") or "",
    # Optional unattended daily login (TOTP): all three must be set.
    "USER_ID": env("FYERS_USER_ID", "") or "",
    "PIN": env("FYERS_PIN", "") or "",
    "TOTP_SECRET": env("FYERS_TOTP_SECRET", "") or "",
    # Access token file (0600, outside the repository).
    "TOKEN_FILE": env("FYERS_TOKEN_FILE", str(Path.home() / ".config" / "tickchart" / "fyers_token.json")),
    # The SDK writes its own log files here (never into the working directory).
    "LOG_DIR": env("FYERS_LOG_DIR", str(BASE_DIR / "var" / "log" / "fyers")),
    # Endpoints: tests point these at loopback servers speaking Fyers' protocols.
    "API_BASE": env("FYERS_API_BASE", "https://api-t1.fyers.in"),
    "LOGIN_BASE": env("FYERS_LOGIN_BASE", "https://api-t2.fyers.in"),
    "PUBLIC_BASE": env("FYERS_PUBLIC_BASE", "https://public.fyers.in"),
    "WS_URL": env("FYERS_WS_URL", "wss://socket.fyers.in/hsm/v1-5/prod"),
    # REST limits shared by every call of the process (Fyers: 10/s, 200/min).
    "RATE_PER_SECOND": int(env("FYERS_RATE_PER_SECOND", "10") or 10),
    "RATE_PER_MINUTE": int(env("FYERS_RATE_PER_MINUTE", "200") or 200),
    # Live socket supervision.
    "STALL_SECONDS": float(env("FYERS_STALL_SECONDS", "90") or 90),
    "BACKOFF_MIN": float(env("FYERS_BACKOFF_MIN", "2") or 2),
    "BACKOFF_MAX": float(env("FYERS_BACKOFF_MAX", "120") or 120),
    "REFRESH_SECONDS": float(env("FYERS_REFRESH_SECONDS", "2") or 2),   # admin changes
    "QUEUE_MAX": int(env("FYERS_QUEUE_MAX", "200000") or 200000),       # SDK -> asyncio
    "MAX_SYMBOLS": int(env("FYERS_MAX_SYMBOLS", "5000") or 5000),
    # Back-fill at start (days back when nothing is stored) and reconciliation pace.
    "BACKFILL_DAYS": float(env("FYERS_BACKFILL_DAYS", "5") or 5),
    "RECONCILE_SECONDS": float(env("FYERS_RECONCILE_SECONDS", "300") or 300),
    "RECONCILE_LOOKBACK": float(env("FYERS_RECONCILE_LOOKBACK", "1800") or 1800),
    "RECONCILE_BUDGET": float(env("FYERS_RECONCILE_BUDGET", "0.5") or 0.5),  # share of 200/min
    # Raw message recording (runfeed --record DIR overrides).
    "RECORD_DIR": env("FYERS_RECORD_DIR", "") or "",
    # Symbols on demand (docs/fyers.md): any known fyers symbol streams while a browser
    # watches it, within MAX_SYMBOLS; it stays subscribed this long after the last viewer
    # left; a web worker silent for DEMAND_TTL_SECONDS (it re-announces every third of it)
    # is forgotten.
    "ON_DEMAND": env_bool("FYERS_ON_DEMAND", True),
    "DEMAND_LINGER_SECONDS": float(env("FYERS_DEMAND_LINGER_SECONDS", "300") or 300),
    "DEMAND_TTL_SECONDS": float(env("FYERS_DEMAND_TTL_SECONDS", "90") or 90),
}
