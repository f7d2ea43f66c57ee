"""Known fake secrets never appear in a log line, on stdout/stderr, in the SDK's log files
or in an error page.

Runs, with every logger at DEBUG and every record captured (also those of loggers that
do not propagate, such as the Fyers SDK's):
- the Fyers login flows: the auth-code exchange and the TOTP login (``fyers_login``),
  succeeding and failing, against the loopback server of tests/vendors/fyers;
- the Fyers live feed with the real SDK: a rejected access token, then a new one that
  streams ticks into candles (SDK log files in FYERS LOG_DIR);
- the Finnhub feed with a rejected and then an accepted API key (tests/vendors/finnhub/server.py);
- a server error (500) in production settings, and in DEBUG the technical error page.

Each secret is searched in the forms it travels in: as is, base64 (the PIN and user id
are sent base64-encoded), URL-encoded (the Finnhub key is a query parameter), and
derived values (the app-id hash, the JWT's payload segment).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import time
from io import StringIO
from pathlib import Path
from urllib.parse import quote, quote_plus

import pyotp
import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from django.urls import path

from market.models import FeedState
from market.feed.runner import run_feed
from tests.vendors.finnhub.server import Conn, FakeFinnhub
from tests.vendors.fyers.conftest import CLIENT_ID, fyers_settings, http, ws  # noqa: F401 - fixtures
from tests.vendors.fyers.live import TOKENS, Market, candles, db, eventually, make_symbols
from tests.vendors.fyers.loopback import fake_jwt

# -- the fake secrets ------------------------------------------------------------------------------
SECRET_KEY = "FySecret-7Q2x-do-not-log"
PIN = "9317"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USER_ID = "ZQ98765"
BEARER = "login-bearer-4b1d-do-not-log"
# Characters that URL-encoding changes, so the encoded form is a different string.
FINNHUB_KEY = "fh/live+KEY=9z~do-not-log"


def access_token(n: int) -> str:
    return fake_jwt(time.time() + 6 * 3600, hsm_key=f"hsm-secret-{n}-do-not-log", n=n)


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def forms(secret: str) -> set[str]:
    return {secret, b64(secret), b64(secret).rstrip("="), quote(secret, safe=""), quote_plus(secret)}


def secret_forms(tokens: list[str]) -> dict[str, set[str]]:
    app_hash = hashlib.sha256(f"{CLIENT_ID}:{SECRET_KEY}".encode()).hexdigest()
    found = {
        "FYERS_SECRET_KEY": forms(SECRET_KEY) | {app_hash},
        "FYERS_TOTP_SECRET": forms(TOTP_SECRET),
        "FYERS_PIN": {b64(PIN)},  # as is it is four digits: searched as a whole number below
        "login bearer": forms(BEARER),
        "FINNHUB_API_KEY": forms(FINNHUB_KEY),
    }
    for i, token in enumerate(tokens):
        header, payload, signature = token.split(".")
        found[f"access token {i}"] = forms(token) | {payload, f"{header}.{payload}"}
        found[f"hsm_key {i}"] = {f"hsm-secret-{i}-do-not-log"}
    return found


def _context(text: str, at: int) -> str:
    line_start = text.rfind("\n", 0, at) + 1
    return text[line_start:line_start + 160] + " ... " + text[max(line_start, at - 200):at + 60]


def assert_no_secret(where: str, text: str, tokens: list[str]) -> None:
    for name, variants in secret_forms(tokens).items():
        for form in variants:
            at = text.find(form)
            assert at < 0, f"{name} (as {form!r}) appears in {where}: {_context(text, at)}"
    pin = re.search(rf"(?<![0-9]){PIN}(?![0-9])", text)
    assert pin is None, f"FYERS_PIN appears in {where}: {_context(text, pin.start())}"


# -- capture everything ------------------------------------------------------------------------------
class Everything:
    """Every log record any logger handles (propagating or not), formatted with its
    arguments, extras and traceback."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.formatter = logging.Formatter()

    def add(self, logger: logging.Logger, record: logging.LogRecord) -> None:
        if record.name.startswith(("tests.", "websockets.server")):
            # The fake brokers' own logs show what they received; they are not ours
            # (TickChart runs no websockets server: daphne serves its sockets).
            return
        parts = [record.name, record.levelname, record.getMessage(), repr(record.args), repr(record.__dict__)]
        if record.exc_info:
            parts.append(self.formatter.formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
        self.lines.append(" | ".join(parts))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def everything(monkeypatch, tmp_path):
    captured = Everything()
    original = logging.Logger.callHandlers

    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        captured.add(self, record)
        original(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", call_handlers)
    levels = {}
    for name in [None, *logging.Logger.manager.loggerDict]:
        logger = logging.getLogger(name)
        levels[name] = logger.level
        logger.setLevel(logging.DEBUG)
    # The SDK must not write into the working directory (it does with an empty log path).
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield captured
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def everything_written(captured: Everything, capfd, *dirs: Path) -> dict[str, str]:
    out, err = capfd.readouterr()
    where = {"log records": captured.text, "stdout": out, "stderr": err}
    for d in dirs:
        for f in sorted(p for p in d.rglob("*") if p.is_file()):
            where[str(f)] = f.read_text(errors="replace")
    return where


# -- the Fyers login flows and the live feed ------------------------------------------------------------
def serve_logins(http, token_of: list[str]) -> None:  # noqa: F811 - the fixture's object
    """validate-authcode and the TOTP steps, checking the real (encoded) secrets."""
    app_hash = hashlib.sha256(f"{CLIENT_ID}:{SECRET_KEY}".encode()).hexdigest()

    def validate(body, headers):
        if body.get("appIdHash") == app_hash and body.get("code") == "AUTHCODE-OK":
            return 200, {"s": "ok", "code": 200, "access_token": token_of[0]}
        return 400, {"s": "error", "code": -437, "message": "invalid auth code"}

    def verify_otp(body, headers):
        totp = pyotp.TOTP(TOTP_SECRET)
        if body.get("request_key") == "rk1" and totp.verify(body.get("otp", ""), valid_window=1):
            return 200, {"s": "ok", "request_key": "rk2"}
        return 400, {"s": "error", "code": -1, "message": "wrong OTP"}

    http.routes[("POST", "/api/v3/validate-authcode")] = validate
    http.routes[("POST", "/vagator/v2/send_login_otp_v2")] = lambda b, h: (
        (200, {"s": "ok", "request_key": "rk1"}) if b.get("fy_id") == b64(USER_ID) else (400, {"s": "error"}))
    http.routes[("POST", "/vagator/v2/verify_otp")] = verify_otp
    http.routes[("POST", "/vagator/v2/verify_pin_v2")] = lambda b, h: (
        (200, {"s": "ok", "data": {"access_token": BEARER}}) if b.get("identifier") == b64(PIN)
        else (400, {"s": "error", "code": -2, "message": "wrong PIN"}))
    http.routes[("POST", "/api/v3/token")] = lambda b, h: (
        (308, {"s": "ok", "Url": "http://127.0.0.1/cb?s=ok&code=200&auth_code=AUTHCODE-OK&state=tickchart"})
        if h.get("Authorization") == f"Bearer {BEARER}" else (401, {"s": "error", "message": "bad bearer"}))


@pytest.mark.django_db(transaction=True)
async def test_fyers_logins_and_live_feed_leak_no_secret(http, ws, fyers_settings, everything, capfd,  # noqa: F811
                                                         monkeypatch):
    tokens = [access_token(0), access_token(1)]
    current = [tokens[0]]
    serve_logins(http, current)
    secrets = {"SECRET_KEY": SECRET_KEY, "USER_ID": USER_ID, "PIN": PIN, "TOTP_SECRET": TOTP_SECRET,
               "WS_URL": ws.url}
    log_dir = Path(fyers_settings["LOG_DIR"])
    with override_settings(FYERS={**fyers_settings, **secrets}):
        # Failing logins: a wrong auth code, a wrong PIN (the TOTP steps pass), a wrong TOTP secret.
        with pytest.raises(CommandError, match="invalid auth code"):
            await database_sync_to_async(call_command)("fyers_login", code="WRONG", stdout=StringIO())
        with override_settings(FYERS={**fyers_settings, **secrets, "PIN": "0000"}):
            with pytest.raises(CommandError, match="wrong PIN"):
                await database_sync_to_async(call_command)("fyers_login", totp=True, stdout=StringIO())
        with override_settings(FYERS={**fyers_settings, **secrets, "TOTP_SECRET": "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"}):
            with pytest.raises(CommandError, match="wrong OTP"):
                await database_sync_to_async(call_command)("fyers_login", totp=True, stdout=StringIO())
        # The auth-code flow succeeds; its token is then refused by the data socket.
        out = StringIO()
        await database_sync_to_async(call_command)(
            "fyers_login", code="http://127.0.0.1/cb?s=ok&auth_code=AUTHCODE-OK&state=tickchart", stdout=out)
        assert "valid until" in out.getvalue()

        monkeypatch.setattr("market.vendors.fyers.session.TOKEN_POLL", 0.5)
        http.tokens.update(TOKENS)
        await db(make_symbols, "NSE:SBIN-EQ")
        broker = Market(ws)
        ws.auth_ok = False
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        try:
            await eventually(lambda: FeedState.objects.filter(source="fyers", state="token_expired").exists(), 40)
            # A TOTP login writes a new token; the running feed picks it up and streams.
            ws.auth_ok = True
            current[0] = tokens[1]
            out = StringIO()
            await database_sync_to_async(call_command)("fyers_login", totp=True, stdout=out)
            assert "valid until" in out.getvalue()
            await eventually(lambda: len(ws.subscribed) == 1, 20)
            now = int(time.time())
            broker.trade("NSE:SBIN-EQ", 101.0, 10, now - 2)
            await eventually(lambda: len(candles("NSE:SBIN-EQ", "5s")) >= 2, 10)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    where = everything_written(everything, capfd, log_dir, Path.cwd())
    assert everything.lines, "the flows should have logged something"
    assert any(log_dir.rglob("*")), "the SDK should have written its log files into FYERS LOG_DIR"
    assert not any(Path.cwd().iterdir()), "nothing may be written into the working directory"
    for name, text in where.items():
        assert_no_secret(name, text, tokens)


# -- the Finnhub feed ------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_finnhub_feed_leaks_no_key_in_any_form(settings, everything, capfd):
    from market.models import Symbol

    await database_sync_to_async(Symbol.objects.create)(ticker="AAPL", exchange="US", kind="equity",
                                                        source="finnhub", name="AAPL", active=True)
    done = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.wait_subscribed(1)
        await c.send({"type": "error", "msg": f"echo {FINNHUB_KEY}"})  # even when Finnhub echoes it
        await c.trades(("AAPL", 190.0, int(time.time() * 1000), 1))
        done.set()

    async with FakeFinnhub(FINNHUB_KEY, [script], refuse=[401]) as server:
        settings.FINNHUB = {"API_KEY": FINNHUB_KEY, "WS_URL": server.url, "MAX_SYMBOLS": 50, "BACKOFF_MIN": 0.05,
                            "BACKOFF_MAX": 0.2, "REFRESH_SECONDS": 30, "EXCLUDED_CONDITIONS": []}
        settings.MARKET = {**settings.MARKET, "FLUSH_INTERVAL": 0.05}
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("finnhub", stop))
        try:
            await asyncio.wait_for(done.wait(), 10)
            await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    assert server.tokens_seen[-1] == FINNHUB_KEY  # it did reach the (fake) broker
    state = await database_sync_to_async(lambda: FeedState.objects.get(source="finnhub").detail)()
    where = everything_written(everything, capfd)
    where["feed status"] = state
    assert "token=" in everything.text  # websockets logged the request line (redacted)
    for name, text in where.items():
        assert_no_secret(name, text, [])


# -- error pages --------------------------------------------------------------------------------------
def _boom(request):
    raise RuntimeError("something broke while talking to the broker")


urlpatterns = [path("boom/", _boom)]

SECRET_SETTINGS = {
    "FYERS": {"CLIENT_ID": CLIENT_ID, "SECRET_KEY": SECRET_KEY, "PIN": PIN, "TOTP_SECRET": TOTP_SECRET,
              "USER_ID": USER_ID, "REDIRECT_URI": "http://127.0.0.1/cb"},
    "FINNHUB": {"API_KEY": FINNHUB_KEY, "WS_URL": "ws://127.0.0.1:9"},
    "PULSE": {"WEBHOOK_URL": f"https://hooks.example.com/services/{BEARER}"},
    "DATABASE_URL": f"postgres://tickchart:{BEARER}@db.example.com:5432/tickchart",
    "REDIS_URL": f"redis://:{BEARER}@cache.example.com:6379/0",
    "CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
               "ratelimit": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                             "LOCATION": f"redis://:{BEARER}@cache.example.com:6379/0"}},
}


@pytest.mark.django_db
def test_production_error_page_and_its_log_show_no_secret(everything, capfd):
    with override_settings(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"], **SECRET_SETTINGS):
        response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    assert b"Traceback" not in response.content
    where = everything_written(everything, capfd)
    assert "something broke" in everything.text  # the traceback is logged (django.request)...
    where["500 page"] = response.content.decode(errors="replace")
    for name, text in where.items():  # ...without any secret
        assert_no_secret(name, text, [])


@pytest.mark.django_db
def test_debug_technical_error_page_hides_the_broker_secrets(everything):
    """The embedded default runs with DEBUG on: its error page lists the settings (Django
    hides API|AUTH|TOKEN|KEY|SECRET|PASS names; market.web.reporting adds the PIN, webhook
    URLs and credentials inside URLs)."""
    with override_settings(DEBUG=True, ROOT_URLCONF=__name__, **SECRET_SETTINGS):
        response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    page = response.content.decode(errors="replace")
    assert "Traceback" in page and "FYERS" in page
    assert "cache.example.com" in page  # the URL is shown, its password is not
    assert_no_secret("the DEBUG error page", page, [])
