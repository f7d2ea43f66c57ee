"""Fyers login: the auth-code flow, the optional TOTP login, and the token file.

Fyers API v3 has no refresh token: an access token (a JWT) lasts until early the next
morning and must be renewed by logging in again. The expiry is read from the JWT's
``exp`` claim. Secrets (secret key, PIN, TOTP secret, tokens) are never logged; errors
carry Fyers' message, never the request.

HTTP is done here with ``requests`` against configurable base URLs instead of through
``fyers_apiv3.SessionModel``, whose URLs are fixed module constants: the same requests
(paths, bodies, headers as in the SDK 3.2.0 source) and testable against loopback servers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlparse

import requests

logger = logging.getLogger("market.fyers")

API_BASE = "https://api-t1.fyers.in"
LOGIN_BASE = "https://api-t2.fyers.in"
TIMEOUT = 20.0


class LoginError(RuntimeError):
    """Login failed; the message is safe to log (no secrets)."""


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT (unverified: we only read ``exp``; Fyers verifies it)."""
    if ":" in token.split(".")[0]:  # "APPID-100:<jwt>"
        token = token.split(":", 1)[1]
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise ValueError("not a JWT") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JWT")
    return data


def token_expiry(token: str) -> float | None:
    """``exp`` (epoch seconds) of an access token, or None when unreadable."""
    try:
        exp = jwt_claims(token).get("exp")
    except ValueError:
        return None
    return float(exp) if isinstance(exp, (int, float)) else None


def login_url(
    *, client_id: str, redirect_uri: str, state: str = "tickchart", api_base: str = API_BASE,
) -> str:
    """The page where the user logs in; Fyers redirects to ``redirect_uri?auth_code=…``."""
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri,
                       "response_type": "code", "state": state})
    return f"{api_base}/api/v3/generate-authcode?{query}"


def auth_code_from(text: str) -> str:
    """The auth code from the redirected URL the user pastes, or the bare code itself."""
    text = text.strip()
    if "auth_code=" in text:
        query = parse_qs(urlparse(text).query) or parse_qs(text.split("?", 1)[-1])
        values = query.get("auth_code")
        if values and values[0]:
            return values[0]
        raise LoginError("the URL has an empty auth_code")
    if not text or any(c.isspace() for c in text) or text.startswith("http"):
        raise LoginError("paste the whole redirected URL (with auth_code=…) or the auth code")
    return text


def _app_id_hash(client_id: str, secret_key: str) -> str:
    return hashlib.sha256(f"{client_id}:{secret_key}".encode()).hexdigest()


def _json(response: requests.Response, step: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise LoginError(f"{step}: HTTP {response.status_code}, not JSON") from None
    if not isinstance(body, dict):
        raise LoginError(f"{step}: unexpected answer")
    return body


def _fail(step: str, body: dict[str, Any]) -> LoginError:
    message = str(body.get("message") or body.get("s") or "failed")[:200]
    return LoginError(f"{step} failed: {message} (code {body.get('code')})")


def exchange_auth_code(
    *, client_id: str, secret_key: str, auth_code: str, api_base: str = API_BASE,
    session: requests.Session | None = None,
) -> str:
    """Auth code → access token (``POST /api/v3/validate-authcode``, as SessionModel does)."""
    http = session or requests.Session()
    response = http.post(f"{api_base}/api/v3/validate-authcode", timeout=TIMEOUT, json={
        "grant_type": "authorization_code",
        "appIdHash": _app_id_hash(client_id, secret_key),
        "code": auth_code,
    })
    body = _json(response, "validate-authcode")
    token = body.get("access_token")
    if body.get("s") != "ok" or not isinstance(token, str) or not token:
        raise _fail("validate-authcode", body)
    return token


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def totp_login(
    *, client_id: str, secret_key: str, redirect_uri: str, user_id: str, pin: str, totp_secret: str,
    api_base: str = API_BASE, login_base: str = LOGIN_BASE, session: requests.Session | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """Unattended login: user id → TOTP → PIN → auth code → access token.

    The same steps the Fyers web login takes (``vagator/v2`` endpoints, as used by the
    community's headless-login scripts); not an official API, so it may change.
    """
    import pyotp

    http = session or requests.Session()
    step = "send_login_otp"
    body = _json(http.post(f"{login_base}/vagator/v2/send_login_otp_v2", timeout=TIMEOUT,
                           json={"fy_id": _b64(user_id), "app_id": "2"}), step)
    if not body.get("request_key"):
        raise _fail(step, body)
    otp = pyotp.TOTP(totp_secret).at(int(clock()))
    step = "verify_otp"
    body = _json(http.post(f"{login_base}/vagator/v2/verify_otp", timeout=TIMEOUT,
                           json={"request_key": body["request_key"], "otp": otp}), step)
    if not body.get("request_key"):
        raise _fail(step, body)
    step = "verify_pin"
    body = _json(http.post(f"{login_base}/vagator/v2/verify_pin_v2", timeout=TIMEOUT, json={
        "request_key": body["request_key"], "identity_type": "pin", "identifier": _b64(pin)}), step)
    bearer = (body.get("data") or {}).get("access_token") if isinstance(body.get("data"), dict) else None
    if not bearer:
        raise _fail(step, body)
    step = "token"
    app_id, _, app_type = client_id.partition("-")
    response = http.post(f"{api_base}/api/v3/token", timeout=TIMEOUT, allow_redirects=False,
                         headers={"Authorization": f"Bearer {bearer}"}, json={
                             "fyers_id": user_id, "app_id": app_id, "redirect_uri": redirect_uri,
                             "appType": app_type or "100", "code_challenge": "", "state": "tickchart",
                             "scope": "", "nonce": "", "response_type": "code", "create_cookie": True})
    body = _json(response, step)
    url = body.get("Url") or body.get("url") or ""
    if not url or "auth_code=" not in url:
        raise _fail(step, body)
    return exchange_auth_code(client_id=client_id, secret_key=secret_key, auth_code=auth_code_from(url),
                              api_base=api_base, session=http)


@dataclass(frozen=True)
class StoredToken:
    access_token: str
    client_id: str
    expires: float | None
    saved_at: float

    def valid(self, now: float, margin: float = 60.0) -> bool:
        return self.expires is None or self.expires - margin > now


class TokenStore:
    """The access token in a JSON file readable by its owner only (0600, directory 0700)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()

    def save(self, access_token: str, client_id: str, *, now: float | None = None) -> StoredToken:
        token = StoredToken(access_token, client_id, token_expiry(access_token), now or time.time())
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".fyers_token.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"access_token": token.access_token, "client_id": client_id,
                           "expires": token.expires, "saved_at": token.saved_at}, f)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return token

    def load(self) -> StoredToken | None:
        try:
            data = json.loads(self.path.read_text())
            return StoredToken(str(data["access_token"]), str(data.get("client_id", "")),
                               data.get("expires"), float(data.get("saved_at", 0)))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            logger.warning("token file %s is unreadable; log in again", self.path)
            return None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
