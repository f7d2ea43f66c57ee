"""Who may see the market (market.web.access), in production settings: public access off.

Each page, API endpoint and socket is tried anonymously and signed in; /healthz and
/readyz stay open; /metrics wants a staff session or the metrics token; the login flow
works with CSRF; the pages carry no inline script or style and send the security headers.
The embedded default (public access on, as in DEBUG) is pinned at the end.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from market.web import access
from tickchart.asgi import application

WS_HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
PAGES = ["/", "/chart/NSE:SBIN-EQ/", "/pulse/"]
APIS = ["/api/candles?symbol=NSE:SBIN-EQ&tf=1m", "/api/symbols?q=sb"]
SOCKETS = ["/ws/market/", "/ws/pulse/"]
PASSWORD = "a-long-test-password-9431"


@pytest.fixture(autouse=True)
def production_policy(settings):
    """What DJANGO_DEBUG=0 gives by default (the suite itself runs with the embedded default)."""
    settings.TICKCHART_PUBLIC_ACCESS = False
    settings.TICKCHART_METRICS_PUBLIC = False
    settings.TICKCHART_METRICS_TOKEN = ""


@pytest.fixture
def symbol(make_symbol):
    return make_symbol("NSE:SBIN-EQ")


@pytest.fixture
def reader(db):
    return get_user_model().objects.create_user("reader", password=PASSWORD)


@pytest.fixture
def signed_in(reader) -> Client:
    client = Client()
    client.force_login(reader)
    return client


# -- pages ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
def test_an_anonymous_visitor_is_sent_to_the_login_page(client, symbol, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("path", PAGES)
def test_a_signed_in_user_sees_the_page(signed_in, symbol, path):
    assert signed_in.get(path).status_code == 200


def test_an_inactive_user_is_treated_as_anonymous(reader, symbol):
    client = Client()
    client.force_login(reader)
    reader.is_active = False
    reader.save()
    assert client.get("/").status_code == 302


# -- API --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", APIS)
def test_the_api_answers_anonymous_callers_with_401_json(client, symbol, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert "error" in response.json()


@pytest.mark.parametrize("path", APIS)
def test_the_api_answers_a_signed_in_user(signed_in, symbol, path):
    response = signed_in.get(path)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_api_refuses_write_methods_even_signed_in(signed_in, symbol, method):
    response = getattr(signed_in, method)("/api/symbols?q=sb")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_api_session_tells_an_anonymous_page_where_to_sign_in(client, db):
    response = client.get("/api/session")
    assert response.status_code == 200
    assert response.json() == {
        "authenticated": False, "user": None, "via": None, "public": False,
        "may_read": False, "login_url": "/accounts/login/",
    }


def test_api_session_knows_a_signed_in_user(signed_in):
    body = signed_in.get("/api/session").json()
    assert (body["authenticated"], body["user"], body["via"], body["may_read"]) == (True, "reader", "session", True)


# -- operations endpoints ---------------------------------------------------------------
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_stay_open(client, db, path):
    assert client.get(path).status_code == 200


def test_metrics_refuse_anonymous_and_non_staff_users(client, signed_in):
    assert client.get("/metrics").status_code == 401
    assert signed_in.get("/metrics").status_code == 401


def test_metrics_serve_staff(reader):
    reader.is_staff = True
    reader.save()
    client = Client()
    client.force_login(reader)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"tickchart_ws_clients" in response.content


def test_metrics_serve_the_metrics_token_and_nothing_like_it(client, db, settings):
    settings.TICKCHART_METRICS_TOKEN = "metrics-token-for-tests-7f3a"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-for-tests-7f3a").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-for-tests-7f3b").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic metrics-token-for-tests-7f3a").status_code == 401


def test_metrics_can_be_opened_for_a_private_network(client, db, settings):
    settings.TICKCHART_METRICS_PUBLIC = True
    assert client.get("/metrics").status_code == 200


# -- WebSockets -------------------------------------------------------------------------
async def _connect(path: str, cookie: str | None = None) -> tuple[bool, int | None, WebsocketCommunicator]:
    headers = list(WS_HEADERS)
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await comm.connect(timeout=5)
    return connected, code, comm


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", SOCKETS)
async def test_an_anonymous_socket_is_refused_before_accept_with_4401(path):
    connected, code, _ = await _connect(path)
    assert (connected, code) == (False, access.CLOSE_UNAUTHENTICATED)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", SOCKETS)
async def test_a_forged_session_cookie_is_refused(path):
    connected, code, _ = await _connect(path, "sessionid=notarealsessionkey0123456789abcdef")
    assert (connected, code) == (False, access.CLOSE_UNAUTHENTICATED)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", SOCKETS)
async def test_a_signed_in_socket_is_accepted_with_the_session_cookie(path):
    user = await sync_to_async(get_user_model().objects.create_user)("ws-reader", password=PASSWORD)
    cookie = await sync_to_async(_session_cookie)(user)
    connected, _, comm = await _connect(path, cookie)
    try:
        assert connected
        await comm.send_json_to({"type": "ping"})
        kinds = [(await comm.receive_json_from(timeout=5))["type"] for _ in range(2 if "pulse" in path else 1)]
        assert kinds[-1] == "pong", kinds  # the pulse socket says hello first
    finally:
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("public", [False, True])
async def test_the_socket_reads_the_session_only_when_access_depends_on_it(monkeypatch, settings, public):
    import channels.auth

    settings.TICKCHART_PUBLIC_ACCESS = public
    reads = []

    async def get_user(scope):
        reads.append(scope.get("path"))
        return access.AnonymousUser()

    monkeypatch.setattr(channels.auth, "get_user", get_user)
    connected, code, comm = await _connect("/ws/market/", None if public else "sessionid=notarealsessionkey0123456789abcdef")
    if connected:
        await comm.disconnect()
    # Public access: no session read for a visitor (a connect stampede saves a thread hop each).
    assert (connected, len(reads)) == ((True, 0) if public else (False, 1)), (code, reads)
    if public:  # one with a session cookie is read: the socket hears that user's own events
        connected, code, comm = await _connect("/ws/market/", "sessionid=notarealsessionkey0123456789abcdef")
        await comm.disconnect()
        assert (connected, len(reads)) == (True, 1), (code, reads)


@pytest.mark.django_db(transaction=True)
async def test_a_socket_from_another_origin_is_refused_even_signed_in():
    user = await sync_to_async(get_user_model().objects.create_user)("ws-origin", password=PASSWORD)
    cookie = await sync_to_async(_session_cookie)(user)
    comm = WebsocketCommunicator(application, "/ws/market/", headers=[
        (b"origin", b"http://evil.example"), (b"host", b"localhost"), (b"cookie", cookie.encode())])
    connected, _ = await comm.connect(timeout=5)
    assert not connected


# -- the login page ---------------------------------------------------------------------
def test_login_needs_the_csrf_token_and_then_signs_in(reader, symbol):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/accounts/login/?next=/pulse/")
    assert page.status_code == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    form = {"username": "reader", "password": PASSWORD, "next": "/pulse/"}
    assert browser.post("/accounts/login/", form).status_code == 403  # no CSRF token
    response = browser.post("/accounts/login/", {**form, "csrfmiddlewaretoken": token})
    assert (response.status_code, response["Location"]) == (302, "/pulse/")
    assert browser.get("/").status_code == 200


def test_a_wrong_password_does_not_sign_in(client, reader, symbol):
    response = client.post("/accounts/login/", {"username": "reader", "password": "wrong-password"})
    assert response.status_code == 200
    assert b"did not match" in response.content
    assert client.get("/").status_code == 302


def test_logout_is_a_post_and_closes_the_session(signed_in, symbol):
    response = signed_in.post("/accounts/logout/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/")
    assert signed_in.get("/").status_code == 302


def test_login_redirects_only_to_this_site(reader, symbol):
    response = Client().post("/accounts/login/", {"username": "reader", "password": PASSWORD,
                                                  "next": "https://evil.example/"})
    assert response["Location"] == "/"


# -- pages under CSP --------------------------------------------------------------------
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(rb"<[^>]+\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(rb"<[^>]+\sstyle\s*=|<style", re.I)


@pytest.mark.parametrize("path", [*PAGES, "/accounts/login/"])
def test_pages_have_no_inline_code_or_style_and_send_the_security_headers(signed_in, symbol, path):
    response = signed_in.get(path)
    assert response.status_code == 200
    html = response.content
    assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html)
    assert not INLINE_HANDLER.search(html), INLINE_HANDLER.search(html)
    assert not INLINE_STYLE.search(html), INLINE_STYLE.search(html)
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert "ws://testserver" in directives["connect-src"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_the_empty_page_has_no_inline_code_either(signed_in, db):
    response = signed_in.get("/")
    assert b"No symbols yet" in response.content
    assert not INLINE_SCRIPT.search(response.content) and not INLINE_STYLE.search(response.content)


# -- the embedded default ---------------------------------------------------------------
def test_public_access_opens_pages_and_api_read_only(client, symbol, settings):
    settings.TICKCHART_PUBLIC_ACCESS = True
    for path in PAGES + APIS:
        assert client.get(path).status_code == 200, path
    assert client.post("/api/symbols").status_code == 405
    assert client.get("/api/session").json()["may_read"] is True


@pytest.mark.django_db(transaction=True)
async def test_public_access_opens_the_socket(settings):
    settings.TICKCHART_PUBLIC_ACCESS = True
    connected, _, comm = await _connect("/ws/market/")
    assert connected
    await comm.disconnect()


def test_public_access_defaults_to_debug(tmp_path):
    """DEBUG on: open (the one-command default); DEBUG off: closed unless asked for."""
    import os
    import subprocess
    import sys

    from tests.security.test_deploy import ROOT, production_env

    code = "from django.conf import settings; print(settings.TICKCHART_PUBLIC_ACCESS, settings.TICKCHART_METRICS_PUBLIC)"

    def read(**env: str) -> str:
        run = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT,
                             env={**{k: v for k, v in os.environ.items() if not k.startswith("TICKCHART_")},
                                  "DJANGO_SETTINGS_MODULE": "tickchart.settings", **env},
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    prod = {k: v for k, v in production_env(tmp_path).items() if not k.startswith("TICKCHART_")}
    assert read(DJANGO_DEBUG="1", TICKCHART_DB_PATH=str(tmp_path / "d.sqlite3")) == "True True"
    assert read(**prod) == "False False"
    assert read(**{**prod, "TICKCHART_PUBLIC_ACCESS": "1"}) == "True False"
