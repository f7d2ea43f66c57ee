"""The socket refusal through a real daphne process in production settings (DJANGO_DEBUG=0,
public access off): an anonymous handshake gets HTTP 403 (daphne's answer to a close
before accept, which is why the pages ask /api/session), and the session cookie from the
real login form opens the socket."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
import websockets

from tests.servers import ROOT, daphne as serve

PASSWORD = "a-long-test-password-9431"


@pytest.fixture(scope="module")
def daphne(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daphne-access")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith(("PYTEST", "TICKCHART_"))}
    env.update(DJANGO_DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1",
               SECURE_COOKIES="0", TICKCHART_DB_PATH=str(tmp / "db.sqlite3"))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    subprocess.run([sys.executable, "manage.py", "shell", "-c",
                    f"from django.contrib.auth.models import User; User.objects.create_user('viewer', password='{PASSWORD}')"],
                   cwd=ROOT, env=env, check=True, timeout=60)
    with serve(env, tmp / "daphne.log") as (port, _):
        yield f"http://127.0.0.1:{port}", port


def _sign_in(base: str) -> str:
    """The real login form: CSRF cookie and token, then the session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/accounts/login/", timeout=5).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": "viewer", "password": PASSWORD, "csrfmiddlewaretoken": token,
                                   "next": "/api/session"}).encode()
    body = json.loads(opener.open(urllib.request.Request(base + "/accounts/login/", data=form,
                                                         headers={"Referer": base + "/accounts/login/"}),
                                  timeout=5).read())
    assert body["authenticated"] is True and body["user"] == "viewer"
    return next(f"sessionid={c.value}" for c in jar if c.name == "sessionid")


def test_an_anonymous_handshake_gets_403_from_daphne(daphne):
    base, port = daphne

    async def attempt() -> int:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/market/", origin=base):
                return 101
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(attempt()) == 403
    session = json.loads(urllib.request.urlopen(base + "/api/session", timeout=5).read())
    assert (session["may_read"], session["login_url"]) == (False, "/accounts/login/")


def test_the_login_session_opens_both_sockets(daphne):
    base, port = daphne
    cookie = _sign_in(base)

    async def ping(path: str) -> list[str]:
        async with websockets.connect(f"ws://127.0.0.1:{port}{path}", origin=base,
                                      additional_headers={"Cookie": cookie}) as ws:
            await ws.send('{"type": "ping"}')
            kinds: list[str] = []
            while not kinds or kinds[-1] != "pong":
                kinds.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["type"])
            return kinds

    assert asyncio.run(ping("/ws/market/"))[-1] == "pong"
    assert asyncio.run(ping("/ws/pulse/")) == ["hello", "pong"]


def test_production_pages_redirect_and_carry_the_headers(daphne):
    base, _ = daphne
    opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,),
                                              {"redirect_request": lambda *a, **k: None}))
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(base + "/", timeout=5)
    assert refused.value.code == 302 and refused.value.headers["Location"] == "/accounts/login/?next=/"
    login = urllib.request.urlopen(base + "/accounts/login/", timeout=5)
    assert "script-src 'self'" in login.headers["Content-Security-Policy"]
    assert login.headers["X-Frame-Options"] == "DENY"
    with pytest.raises(urllib.error.HTTPError) as api:
        urllib.request.urlopen(base + "/api/symbols?q=a", timeout=5)
    assert api.value.code == 401 and api.value.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(urllib.error.HTTPError) as metrics:
        urllib.request.urlopen(base + "/metrics", timeout=5)
    assert metrics.value.code == 401
