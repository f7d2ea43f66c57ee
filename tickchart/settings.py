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


def env_float(name: str) -> float | None:
    value = env(name)
    return None if value is None else float(value)


def env_int(name: str) -> int | None:
    value = env(name)
    return None if value is None else int(value)


def env_flag(name: str) -> bool | None:
    value = env(name)
    return None if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def env_items(name: str) -> list[str] | None:
    value = env(name)
    return None if value is None else [item for item in value.replace(",", " ").split() if item]


def env_json(name: str) -> object:
    value = env(name)
    return None if value is None else json.loads(value)


def given(values: dict[str, object]) -> dict[str, object]:
    """The keys the environment set; market.conf supplies the rest."""
    return {key: value for key, value in values.items() if value is not None}


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
    # django-ninja: its Swagger UI template and static files for /api/docs (market.web.api).
    "ninja",
    "market",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "market.web.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "market.web.ratelimit.RateLimitMiddleware",  # after auth: counts per user, else per address
    "market.web.outage.DatabaseOutageMiddleware",  # a database outage: 503 and a page that says so
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
# TICKCHART_DB_POOL=N (PostgreSQL): this process keeps up to N connections in a pool
# (Django's, on psycopg_pool) instead of one persistent connection per thread. For web
# processes: daphne runs every HTTP request on a thread of its own, so without a pool each
# request connects anew (tickchart/request_connections.py closes it after). 0 = no pool.
TICKCHART_DB_POOL = env_int("TICKCHART_DB_POOL") or 0
if TICKCHART_DB_POOL < 0:
    raise ImproperlyConfigured("TICKCHART_DB_POOL must be 0 (no pool) or the most connections per process")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0 if TICKCHART_DB_POOL else 600)}
    if TICKCHART_DB_POOL:
        if "postgresql" not in DATABASES["default"]["ENGINE"]:
            raise ImproperlyConfigured("TICKCHART_DB_POOL needs PostgreSQL (DATABASE_URL postgres://...)")
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1, "max_size": TICKCHART_DB_POOL, "timeout": 10.0}
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
            # market.live.relay's one channel carries every watched group of the process. (The
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
# ... and sooner once a process has grown by this many MiB since the last one (0: timer only).
TICKCHART_GC_GROWTH_MIB = float(env("TICKCHART_GC_GROWTH_MIB", "64") or 0)

# ---- Cache -------------------------------------------------------------------------
# "ratelimit" holds the HTTP rate-limit counts (market.web.ratelimit): in Redis
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
# Who may read the market (market.web.access). Off in production: the chart and pulse pages,
# /api/* and the sockets need a signed-in user (or, for /api/*, a personal token). The
# default follows DEBUG so the embedded one-command default works without an account.
TICKCHART_PUBLIC_ACCESS = env_bool("TICKCHART_PUBLIC_ACCESS", DEBUG)
# /metrics: a staff session or "Authorization: Bearer <TICKCHART_METRICS_TOKEN>"; open when
# TICKCHART_METRICS_PUBLIC is on (default: DEBUG), e.g. when only a private network reaches it.
TICKCHART_METRICS_TOKEN = env("TICKCHART_METRICS_TOKEN", "") or ""
TICKCHART_METRICS_PUBLIC = env_bool("TICKCHART_METRICS_PUBLIC", DEBUG)
# Alerts (market.conf.alerts_conf): alerts per user, and whether webhooks may reach loopback
# and private addresses (default: only in DEBUG; in production that would be SSRF).
TICKCHART_ALERT_QUOTA = env_int("TICKCHART_ALERT_QUOTA")
# Reconnect storms (issue 17; market.conf.live_cache_conf): None takes the default.
TICKCHART_SNAPSHOT_CACHE_SECONDS = env_float("TICKCHART_SNAPSHOT_CACHE_SECONDS")
TICKCHART_LOOKUP_CACHE_SECONDS = env_float("TICKCHART_LOOKUP_CACHE_SECONDS")
TICKCHART_WEBHOOK_BACKOFF = env("TICKCHART_WEBHOOK_BACKOFF", "")  # "15,30,60": seconds before each retry
TICKCHART_WEBHOOK_ALLOW_PRIVATE = (None if not env("TICKCHART_WEBHOOK_ALLOW_PRIVATE", "")  # None: follow DEBUG
                                   else env_bool("TICKCHART_WEBHOOK_ALLOW_PRIVATE", False))
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
# Content-Security-Policy (market.web.csp): no inline scripts or styles anywhere. The one hash
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
DEFAULT_EXCEPTION_REPORTER_FILTER = "market.web.reporting.SecretSafeExceptionReporterFilter"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}

# ---- TickChart --------------------------------------------------------------------
# Only what the environment sets: the defaults, validation and types are market.conf's
# (its DEFAULTS), and every key is documented in README "Configuration".
MARKET = given({
    # Timeframes kept in the database; the other codes are derived on read.
    "STORED_TIMEFRAMES": env_items("TICKCHART_TIMEFRAMES"),
    # Exchange sessions (JSON); exchanges not listed trade round the clock in UTC.
    "SESSIONS": env_json("TICKCHART_SESSIONS"),
    # Feed used by `runfeed` without --source.
    "FEED": env("TICKCHART_FEED"),
    # Simulated feed: ticks per second per symbol and hours back-filled on first run.
    "SIM_RATE": env_float("TICKCHART_SIM_RATE"),
    "SIM_BACKFILL_HOURS": env_float("TICKCHART_SIM_BACKFILL_HOURS"),
    # Simulated symbols beyond the four demo ones (a bigger universe for load and soak tests).
    "SIM_SYMBOLS": env_int("TICKCHART_SIM_SYMBOLS"),
    # How often runfeed writes changed candles and publishes them (seconds).
    "FLUSH_INTERVAL": env_float("TICKCHART_FLUSH_INTERVAL"),
    # Candles a page or a subscription gets when it asks for "the newest".
    "HISTORY_LIMIT": env_int("TICKCHART_HISTORY_LIMIT"),
    # Conflation: updates per second per (symbol, timeframe) stream; finals always go.
    "MAX_UPDATES_PER_SECOND": env_float("TICKCHART_MAX_UPDATES_PER_SECOND"),
    # /readyz fails when no feed heartbeat is this recent (seconds); 0 = report only.
    "READY_MAX_FEED_AGE": env_float("TICKCHART_READY_MAX_FEED_AGE"),
    # ---- Limits (README "Limits"; market.core.limits) ----
    # WebSocket, per connection: client messages a second and the burst allowed at once (a
    # page re-subscribes its whole watchlist after a reconnect: keep the burst above
    # WS_MAX_SUBSCRIPTIONS), frame size, subscriptions. A message over a limit gets
    # {"type":"error","code":...}; WS_STRIKES_TO_CLOSE of those within WS_STRIKE_WINDOW
    # seconds close the socket with code 4429.
    "WS_MESSAGES_PER_SECOND": env_float("TICKCHART_WS_MESSAGES_PER_SECOND"),
    "WS_MESSAGE_BURST": env_int("TICKCHART_WS_MESSAGE_BURST"),
    "WS_MAX_FRAME_BYTES": env_int("TICKCHART_WS_MAX_FRAME_BYTES"),
    "WS_MAX_SUBSCRIPTIONS": env_int("TICKCHART_WS_MAX_SUBSCRIPTIONS"),
    "WS_STRIKES_TO_CLOSE": env_int("TICKCHART_WS_STRIKES_TO_CLOSE"),
    "WS_STRIKE_WINDOW": env_float("TICKCHART_WS_STRIKE_WINDOW"),
    # HTTP (market.web.ratelimit): requests a minute to /api/candles and /api/symbols per
    # signed-in user, else per client address; 0 turns it off.
    "HTTP_RATE_PER_MINUTE": env_int("TICKCHART_HTTP_RATE_PER_MINUTE"),
    # Peers whose X-Forwarded-For is believed (addresses or networks, e.g. 127.0.0.1 when
    # nginx proxies to daphne without --proxy-headers). Empty: REMOTE_ADDR only.
    "TRUSTED_PROXIES": env_items("TICKCHART_TRUSTED_PROXIES"),
    # Slow clients (docs/deploy.md): live frames a browser may leave unacknowledged (and
    # bytes), then it is "behind" and caught up later; closed (4008) after this many
    # seconds behind without acking. WS_WINDOW_FRAMES=0 disables flow control.
    "WS_WINDOW_FRAMES": env_int("TICKCHART_WS_WINDOW_FRAMES"),
    "WS_WINDOW_BYTES": env_int("TICKCHART_WS_WINDOW_BYTES"),
    "WS_STALL_SECONDS": env_float("TICKCHART_WS_STALL_SECONDS"),
    # prune_candles: days kept per stored timeframe, JSON, e.g. {"5s": 30, "1m": 730}
    # (the default); a timeframe left out, or null, is kept forever.
    "RETENTION_DAYS": env_json("TICKCHART_RETENTION_DAYS"),
    # Live feeds' tick journal (docs/durability.md): its directory ("" turns it off; unset:
    # "journal" beside the SQLite file, or var/journal on PostgreSQL), its size cap in bytes,
    # and the candles a failing database may keep waiting in memory before the writer
    # drops them and rebuilds them from the journal once it works again.
    "JOURNAL_DIR": env("TICKCHART_JOURNAL_DIR"),
    "JOURNAL_MAX_BYTES": env_int("TICKCHART_JOURNAL_MAX_BYTES"),
    "WRITE_BUFFER_CANDLES": env_int("TICKCHART_WRITE_BUFFER_CANDLES"),
})

# ---- Finnhub feed (`runfeed --source finnhub`; docs/finnhub.md) -------------------------
# The API key comes from the environment only; it is never logged (the feed redacts it).
FINNHUB = given({
    "API_KEY": env("FINNHUB_API_KEY"),
    # Tests point this at a loopback server speaking Finnhub's protocol.
    "WS_URL": env("FINNHUB_WS_URL"),
    # Finnhub's free plan: 50 symbols per connection. Symbols past it are named in the log
    # and in the feed status every browser sees; never dropped silently.
    "MAX_SYMBOLS": env_int("FINNHUB_MAX_SYMBOLS"),
    # Trade condition codes whose prints are dropped (counted as excluded_condition).
    "EXCLUDED_CONDITIONS": env_items("FINNHUB_EXCLUDED_CONDITIONS"),
    # Reconnect backoff (seconds, doubled per failure up to the maximum).
    "BACKOFF_MIN": env_float("FINNHUB_BACKOFF_MIN"),
    "BACKOFF_MAX": env_float("FINNHUB_BACKOFF_MAX"),
    # How often the feed re-reads which symbols to stream (admin / add_symbols changes).
    "REFRESH_SECONDS": env_float("FINNHUB_REFRESH_SECONDS"),
    # Symbols on demand (docs/finnhub.md): any known finnhub symbol streams while a browser
    # watches it; it stays subscribed this long after the last viewer left; a web worker
    # silent for DEMAND_TTL_SECONDS (it re-announces every third of it) is forgotten.
    "ON_DEMAND": env_flag("FINNHUB_ON_DEMAND"),
    "DEMAND_LINGER_SECONDS": env_float("FINNHUB_DEMAND_LINGER_SECONDS"),
    "DEMAND_TTL_SECONDS": env_float("FINNHUB_DEMAND_TTL_SECONDS"),
})

# ---- Market Pulse (/pulse/, `runpulse`; docs/pulse.md) ----------------------------------
# The thresholds, windows and correlation card's shape are market.conf DEFAULTS["PULSE"].
PULSE = given({
    # Watched universe: empty = every active symbol.
    "SYMBOLS": env_items("PULSE_SYMBOLS"),
    "PUBLISH_INTERVAL": env_float("PULSE_PUBLISH_INTERVAL"),
    "COOLDOWN": env_float("PULSE_COOLDOWN"),
    # Correlation card: base symbol (empty: the first watched) and time bucket (seconds).
    "CORR_BASE": env("PULSE_CORR_BASE"),
    "CORR_BUCKET": env_int("PULSE_CORR_BUCKET"),
    # Optional alert delivery: POST each stress event as JSON to this URL.
    "WEBHOOK_URL": env("PULSE_WEBHOOK_URL"),
})

# ---- Fyers feed (`runfeed --source fyers`, fyers_login, backfill; docs/fyers.md) ----------
# Credentials come from the environment only; they are never logged or shown in the admin.
FYERS = given({
    "CLIENT_ID": env("FYERS_CLIENT_ID"),          # e.g. "XB12345-100"
    "SECRET_KEY": env("FYERS_SECRET_KEY"),
    "REDIRECT_URI": env("FYERS_REDIRECT_URI"),
    # Optional unattended daily login (TOTP): all three must be set.
    "USER_ID": env("FYERS_USER_ID"),
    "PIN": env("FYERS_PIN"),
    "TOTP_SECRET": env("FYERS_TOTP_SECRET"),
    # Access token file (0600, outside the repository).
    "TOKEN_FILE": env("FYERS_TOKEN_FILE"),
    # The SDK writes its own log files here (never into the working directory).
    "LOG_DIR": env("FYERS_LOG_DIR"),
    # Endpoints: tests point these at loopback servers speaking Fyers' protocols.
    "API_BASE": env("FYERS_API_BASE"),
    "LOGIN_BASE": env("FYERS_LOGIN_BASE"),
    "PUBLIC_BASE": env("FYERS_PUBLIC_BASE"),
    "WS_URL": env("FYERS_WS_URL"),
    # REST limits of the app, shared by every process (Fyers: 10/s, 200/min, 100,000/day).
    "RATE_PER_SECOND": env_int("FYERS_RATE_PER_SECOND"),
    "RATE_PER_MINUTE": env_int("FYERS_RATE_PER_MINUTE"),
    "RATE_PER_DAY": env_int("FYERS_RATE_PER_DAY"),
    "BUDGET_STORE": env("FYERS_BUDGET_STORE"),  # default: REDIS_URL, else the database
    # Live socket supervision.
    "STALL_SECONDS": env_float("FYERS_STALL_SECONDS"),
    "BACKOFF_MIN": env_float("FYERS_BACKOFF_MIN"),
    "BACKOFF_MAX": env_float("FYERS_BACKOFF_MAX"),
    "REFRESH_SECONDS": env_float("FYERS_REFRESH_SECONDS"),   # admin changes
    "QUEUE_MAX": env_int("FYERS_QUEUE_MAX"),                 # SDK -> asyncio
    "MAX_SYMBOLS": env_int("FYERS_MAX_SYMBOLS"),
    # Back-fill at start (days back when nothing is stored) and reconciliation pace.
    "BACKFILL_DAYS": env_float("FYERS_BACKFILL_DAYS"),
    "RECONCILE_SECONDS": env_float("FYERS_RECONCILE_SECONDS"),
    "RECONCILE_LOOKBACK": env_float("FYERS_RECONCILE_LOOKBACK"),
    "RECONCILE_BUDGET": env_float("FYERS_RECONCILE_BUDGET"),  # share of 200/min
    # Raw message recording (runfeed --record DIR overrides).
    "RECORD_DIR": env("FYERS_RECORD_DIR"),
    # Symbols on demand (docs/fyers.md): any known fyers symbol streams while a browser
    # watches it, within MAX_SYMBOLS; it stays subscribed this long after the last viewer
    # left; a web worker silent for DEMAND_TTL_SECONDS (it re-announces every third of it)
    # is forgotten.
    "ON_DEMAND": env_flag("FYERS_ON_DEMAND"),
    "DEMAND_LINGER_SECONDS": env_float("FYERS_DEMAND_LINGER_SECONDS"),
    "DEMAND_TTL_SECONDS": env_float("FYERS_DEMAND_TTL_SECONDS"),
})
