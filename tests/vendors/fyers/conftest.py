"""Fixtures: loopback Fyers servers, settings pointing at them, a stored token."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.test import override_settings

from market.conf import market
from market.vendors.fyers.auth import TokenStore
from tests.vendors.fyers.loopback import FyersHTTP, FyersWS, fake_jwt

CLIENT_ID = "XB12345-100"
SECRET = "SECRET-do-not-log-0f3a9c"


@pytest.fixture
def http():
    server = FyersHTTP().start()
    yield server
    server.stop()


@pytest.fixture
def ws():
    server = FyersWS().start()
    yield server
    server.stop()


@pytest.fixture
def fyers_settings(tmp_path, http):
    """settings.FYERS aimed at the loopback HTTP server; NSE trades round the clock so
    live tests work at any hour (only BSE keeps a session)."""
    values = {
        **settings.FYERS, "CLIENT_ID": CLIENT_ID, "SECRET_KEY": SECRET, "REDIRECT_URI": "http://127.0.0.1/cb",
        "USER_ID": "", "PIN": "", "TOTP_SECRET": "", "TOKEN_FILE": str(tmp_path / "cfg" / "token.json"),
        "LOG_DIR": str(tmp_path / "fylog"), "API_BASE": http.base, "LOGIN_BASE": http.base,
        "PUBLIC_BASE": http.base, "WS_URL": "ws://127.0.0.1:9", "REFRESH_SECONDS": 0.3,
        "BACKOFF_MIN": 0.2, "BACKOFF_MAX": 1.0, "STALL_SECONDS": 90.0, "RECONCILE_SECONDS": 3600.0,
    }
    sessions = {"BSE": {"tz": "Asia/Kolkata", "open": "09:15", "close": "15:30"}}
    with override_settings(FYERS=values, MARKET={**settings.MARKET, "SESSIONS": sessions, "FLUSH_INTERVAL": 0.1}):
        market.cache_clear()
        yield values
    market.cache_clear()


@pytest.fixture
def token(fyers_settings) -> str:
    jwt = fake_jwt(time.time() + 6 * 3600)
    TokenStore(fyers_settings["TOKEN_FILE"]).save(jwt, CLIENT_ID)
    return jwt
