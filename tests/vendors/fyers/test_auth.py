"""Login: auth-code exchange and TOTP login against a loopback server; the token file;
secrets never reach the logs."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from market.vendors.fyers import auth
from market.vendors.fyers.auth import LoginError, TokenStore
from tests.vendors.fyers.conftest import CLIENT_ID, SECRET
from tests.vendors.fyers.loopback import fake_jwt

# RFC 6238 test secret ("12345678901234567890"); its 6-digit TOTP at 1111111109 is 081804.
TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
PIN = "4321"
USER = "XY01234"


def app_hash() -> str:
    return hashlib.sha256(f"{CLIENT_ID}:{SECRET}".encode()).hexdigest()


def serve_validate(http, token: str, code: str = "AUTHCODE-1") -> None:
    def validate(body, headers):
        if body == {"grant_type": "authorization_code", "appIdHash": app_hash(), "code": code}:
            return 200, {"s": "ok", "code": 200, "access_token": token}
        return 400, {"s": "error", "code": -437, "message": "invalid auth code"}
    http.routes[("POST", "/api/v3/validate-authcode")] = validate


def serve_totp(http, token: str) -> None:
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    http.routes[("POST", "/vagator/v2/send_login_otp_v2")] = lambda b, h: (
        (200, {"s": "ok", "request_key": "rk1"}) if b == {"fy_id": b64(USER), "app_id": "2"} else (400, {"s": "error"}))
    http.routes[("POST", "/vagator/v2/verify_otp")] = lambda b, h: (
        (200, {"s": "ok", "request_key": "rk2"}) if b == {"request_key": "rk1", "otp": "081804"}
        else (400, {"s": "error", "code": -1, "message": "wrong OTP"}))
    http.routes[("POST", "/vagator/v2/verify_pin_v2")] = lambda b, h: (
        (200, {"s": "ok", "data": {"access_token": "bearer-xyz"}})
        if b == {"request_key": "rk2", "identity_type": "pin", "identifier": b64(PIN)} else (400, {"s": "error"}))
    http.routes[("POST", "/api/v3/token")] = lambda b, h: (
        (308, {"s": "ok", "Url": "http://127.0.0.1/cb?s=ok&code=200&auth_code=AUTHCODE-1&state=tickchart"})
        if h.get("Authorization") == "Bearer bearer-xyz" and b["app_id"] == "XB12345" and b["appType"] == "100"
        else (401, {"s": "error", "message": "bad bearer"}))
    serve_validate(http, token)


def test_jwt_expiry_is_read_from_the_payload_with_or_without_the_app_prefix():
    jwt = fake_jwt(1_800_000_000)
    assert auth.token_expiry(jwt) == 1_800_000_000
    assert auth.token_expiry(f"{CLIENT_ID}:{jwt}") == 1_800_000_000
    assert auth.token_expiry("not-a-token") is None


def test_login_url_and_pasted_redirects():
    url = auth.login_url(client_id=CLIENT_ID, redirect_uri="https://example.com/cb", api_base="https://api-t1.fyers.in")
    assert url.startswith("https://api-t1.fyers.in/api/v3/generate-authcode?")
    assert "client_id=XB12345-100" in url and "response_type=code" in url and "redirect_uri=https%3A%2F%2Fexample.com%2Fcb" in url
    assert auth.auth_code_from("https://example.com/cb?s=ok&code=200&auth_code=eyJabc.def&state=x") == "eyJabc.def"
    assert auth.auth_code_from("  eyJabc.def \n") == "eyJabc.def"
    for bad in ("https://example.com/cb?auth_code=", "https://example.com/cb?s=error", "two words"):
        with pytest.raises(LoginError):
            auth.auth_code_from(bad)


def test_auth_code_exchange_against_loopback(http):
    jwt = fake_jwt(time.time() + 3600)
    serve_validate(http, jwt)
    assert auth.exchange_auth_code(client_id=CLIENT_ID, secret_key=SECRET, auth_code="AUTHCODE-1",
                                   api_base=http.base) == jwt
    with pytest.raises(LoginError, match="invalid auth code"):
        auth.exchange_auth_code(client_id=CLIENT_ID, secret_key=SECRET, auth_code="WRONG", api_base=http.base)


def test_totp_login_with_a_fixed_clock(http):
    jwt = fake_jwt(time.time() + 3600)
    serve_totp(http, jwt)
    token = auth.totp_login(client_id=CLIENT_ID, secret_key=SECRET, redirect_uri="http://127.0.0.1/cb",
                            user_id=USER, pin=PIN, totp_secret=TOTP_SECRET, api_base=http.base,
                            login_base=http.base, clock=lambda: 1111111109)
    assert token == jwt
    assert http.paths("POST") == ["/vagator/v2/send_login_otp_v2", "/vagator/v2/verify_otp",
                                  "/vagator/v2/verify_pin_v2", "/api/v3/token", "/api/v3/validate-authcode"]
    # another 30 s window gives another code, which the server refuses
    with pytest.raises(LoginError, match="verify_otp failed: wrong OTP"):
        auth.totp_login(client_id=CLIENT_ID, secret_key=SECRET, redirect_uri="http://127.0.0.1/cb", user_id=USER,
                        pin=PIN, totp_secret=TOTP_SECRET, api_base=http.base, login_base=http.base,
                        clock=lambda: 1111111109 + 60)


def test_token_file_is_private_and_round_trips(tmp_path):
    store = TokenStore(tmp_path / "deep" / "token.json")
    jwt = fake_jwt(2_000_000_000)
    saved = store.save(jwt, CLIENT_ID, now=1_900_000_000)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path.parent).st_mode) == 0o700
    loaded = store.load()
    assert loaded == saved and loaded.expires == 2_000_000_000
    assert loaded.valid(1_999_000_000) and not loaded.valid(2_000_000_000)
    store.path.write_text("{garbage")
    assert store.load() is None
    store.clear()
    assert store.load() is None


@pytest.mark.django_db
def test_fyers_login_command_exchanges_the_pasted_url_and_stores_the_token(http, fyers_settings):
    jwt = fake_jwt(time.time() + 3600)
    serve_validate(http, jwt)
    out = StringIO()
    call_command("fyers_login", code="http://127.0.0.1/cb?s=ok&auth_code=AUTHCODE-1&state=tickchart", stdout=out)
    assert "valid until" in out.getvalue()
    assert TokenStore(fyers_settings["TOKEN_FILE"]).load().access_token == jwt
    with pytest.raises(CommandError, match="invalid auth code"):
        call_command("fyers_login", code="WRONG", stdout=StringIO())


def test_fyers_login_needs_the_credentials(fyers_settings, settings):
    settings.FYERS = {**fyers_settings, "SECRET_KEY": ""}
    with pytest.raises(CommandError, match="FYERS_SECRET_KEY"):
        call_command("fyers_login", code="x", stdout=StringIO())


def test_secrets_never_reach_the_logs(http, fyers_settings, caplog, settings):
    """Every login path, failing and succeeding, at DEBUG: no secret in any log record."""
    caplog.set_level(logging.DEBUG)
    jwt = fake_jwt(time.time() + 3600)
    serve_totp(http, jwt)
    settings.FYERS = {**fyers_settings, "USER_ID": USER, "PIN": PIN, "TOTP_SECRET": TOTP_SECRET}
    auth.totp_login(client_id=CLIENT_ID, secret_key=SECRET, redirect_uri="http://127.0.0.1/cb", user_id=USER,
                    pin=PIN, totp_secret=TOTP_SECRET, api_base=http.base, login_base=http.base,
                    clock=lambda: 1111111109)
    for wrong_clock in (1111111109 + 90,):
        with pytest.raises(LoginError):
            auth.totp_login(client_id=CLIENT_ID, secret_key=SECRET, redirect_uri="x", user_id=USER, pin=PIN,
                            totp_secret=TOTP_SECRET, api_base=http.base, login_base=http.base,
                            clock=lambda: wrong_clock)
    with pytest.raises(CommandError, match="wrong OTP"):  # the real clock: the server refuses the OTP
        call_command("fyers_login", totp=True, stdout=StringIO())
    text = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert caplog.records, "the flows should have logged something"
    for secret in (SECRET, TOTP_SECRET, PIN + "\"", "bearer-xyz", jwt, app_hash()):
        assert secret not in text
