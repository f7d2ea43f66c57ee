"""Personal API tokens (market.tokens): stored hashed, shown once, read-only, revocable,
expiring; usable as ``Authorization: Bearer`` on /api/* only; managed from the admin and
``manage.py api_token``."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from market import tokens
from market.models import ApiToken
from tickchart.asgi import application

API = "/api/symbols?q=sb"


@pytest.fixture(autouse=True)
def production_policy(settings):
    settings.TICKCHART_PUBLIC_ACCESS = False


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("owner", password="a-long-test-password-9431")


@pytest.fixture
def issued(owner):
    return tokens.api_token_create(user=owner, name="notebook")


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


# -- storage ----------------------------------------------------------------------------
def test_a_new_token_has_a_recognisable_secret_and_only_its_digest_is_stored(issued):
    token, secret = issued
    assert re.fullmatch(r"tc_[A-Za-z0-9_-]{40}", secret)
    row = ApiToken.objects.values().get(pk=token.pk)
    assert row["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["prefix"] == secret[:12] and row["scope"] == "read"
    assert not any(secret in str(value) for value in row.values())


def test_two_tokens_never_share_a_secret(owner):
    secrets = {tokens.api_token_create(user=owner, name=f"t{i}")[1] for i in range(20)}
    assert len(secrets) == 20


# -- the API with a token ---------------------------------------------------------------
def test_a_token_reads_the_api(client, issued, make_symbol):
    make_symbol("NSE:SBIN-EQ")
    _, secret = issued
    assert client.get(API, **bearer(secret)).status_code == 200
    assert client.get("/api/candles?symbol=NSE:SBIN-EQ&tf=1m", **bearer(secret)).status_code == 200
    session = client.get("/api/session", **bearer(secret)).json()
    assert (session["user"], session["via"], session["may_read"]) == ("owner", "token", True)


def test_the_bearer_scheme_is_case_insensitive(client, issued):
    assert client.get(API, HTTP_AUTHORIZATION=f"bearer {issued[1]}").status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_a_token_cannot_write(client, issued, method):
    response = getattr(client, method)(API, **bearer(issued[1]))
    assert response.status_code == 405
    assert response.json()["error"].startswith("the API is read-only")


def _assert_refused(response, reason: str) -> None:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == reason
    assert response["WWW-Authenticate"].startswith('Bearer realm="tickchart", error="invalid_token"')


def test_a_revoked_token_gets_401(client, issued):
    token, secret = issued
    assert tokens.api_token_revoke(token=token) is True
    assert tokens.api_token_revoke(token=token) is False  # idempotent
    _assert_refused(client.get(API, **bearer(secret)), "token revoked")


def test_an_expired_token_gets_401(client, owner):
    _, secret = tokens.api_token_create(user=owner, name="old", expires_at=timezone.now() - dt.timedelta(seconds=1))
    _assert_refused(client.get(API, **bearer(secret)), "token expired")


def test_a_token_that_has_not_expired_yet_works(client, owner):
    _, secret = tokens.api_token_create(user=owner, name="new", expires_at=timezone.now() + dt.timedelta(hours=1))
    assert client.get(API, **bearer(secret)).status_code == 200


@pytest.mark.parametrize("secret", ["", "nonsense", "tc_" + "A" * 40, "tc_" + "A" * 41])
def test_an_unknown_or_malformed_token_gets_401(client, db, secret):
    _assert_refused(client.get(API, **bearer(secret)), "invalid token")


def test_a_token_of_a_deactivated_user_gets_401(client, owner, issued):
    owner.is_active = False
    owner.save()
    _assert_refused(client.get(API, **bearer(issued[1])), "invalid token")


def test_a_bad_token_is_refused_even_when_public_access_is_on(client, db, settings):
    settings.TICKCHART_PUBLIC_ACCESS = True
    assert client.get(API).status_code == 200
    _assert_refused(client.get(API, **bearer("tc_" + "B" * 40)), "invalid token")


def test_a_token_opens_neither_the_pages_nor_the_admin(client, owner, issued, make_symbol):
    make_symbol("NSE:SBIN-EQ")
    owner.is_staff = owner.is_superuser = True
    owner.save()
    assert client.get("/", **bearer(issued[1])).status_code == 302
    assert client.get("/admin/", **bearer(issued[1]))["Location"].startswith("/admin/login/")


@pytest.mark.django_db(transaction=True)
async def test_a_token_opens_the_socket_by_header_only():
    """Scripts (the Python client's stream) send the header; browsers cannot, and a query
    string or subprotocol would put the secret in logs, so those are not read."""
    from asgiref.sync import sync_to_async

    user = await sync_to_async(get_user_model().objects.create_user)("ws-owner")
    _, secret = await sync_to_async(tokens.api_token_create)(user=user, name="ws")
    base = [(b"origin", b"http://localhost"), (b"host", b"localhost")]

    async def connect(path: str, headers: list) -> tuple[bool, int | None]:
        comm = WebsocketCommunicator(application, path, headers=base + headers)
        connected, code = await comm.connect(timeout=5)
        if connected:
            await comm.send_json_to({"type": "ping"})
            assert (await comm.receive_json_from(timeout=5))["type"] in {"pong", "status"}
            await comm.disconnect()
        return connected, code

    assert (await connect("/ws/market/", [(b"authorization", f"Bearer {secret}".encode())]))[0]
    assert await connect("/ws/market/", [(b"authorization", b"Bearer tc_not-a-real-token")]) == (False, 4401)
    assert await connect(f"/ws/market/?token={secret}", []) == (False, 4401)
    assert await connect("/ws/market/", [(b"sec-websocket-protocol", secret.encode())]) == (False, 4401)
    await sync_to_async(tokens.api_token_revoke)(token=(await sync_to_async(
        lambda: user.api_tokens.get())()))
    assert await connect("/ws/market/", [(b"authorization", f"Bearer {secret}".encode())]) == (False, 4401)


# -- last used --------------------------------------------------------------------------
def test_last_used_is_written_at_most_once_a_minute(issued, django_assert_num_queries):
    token, secret = issued
    t0 = timezone.now()
    tokens.api_token_verify(secret=secret, now=t0)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == t0
    with django_assert_num_queries(1):  # the lookup only: no UPDATE within the minute
        tokens.api_token_verify(secret=secret, now=t0 + dt.timedelta(seconds=59))
    assert ApiToken.objects.get(pk=token.pk).last_used_at == t0
    tokens.api_token_verify(secret=secret, now=t0 + dt.timedelta(seconds=61))
    assert ApiToken.objects.get(pk=token.pk).last_used_at == t0 + dt.timedelta(seconds=61)


# -- the management command -------------------------------------------------------------
def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_creates_lists_and_revokes(client, owner):
    out, err = run("create", "--user", "owner", "--name", "cron job", "--expires", "7")
    secret = out.strip()
    assert re.fullmatch(r"tc_[A-Za-z0-9_-]{40}", secret) and "shown only this once" in err
    token = ApiToken.objects.get(name="cron job")
    assert dt.timedelta(days=6.99) < token.expires_at - timezone.now() <= dt.timedelta(days=7)
    assert client.get(API, **bearer(secret)).status_code == 200

    listing, _ = run("list", "--user", "owner")
    assert token.prefix in listing and "active" in listing and secret not in listing

    out, _ = run("revoke", token.prefix + "…")
    assert "Revoked token" in out
    assert "revoked" in run("list")[0]
    assert client.get(API, **bearer(secret)).status_code == 401
    assert "already revoked" in run("revoke", str(token.pk))[0]


def test_the_command_rejects_unknown_users_and_tokens(db):
    with pytest.raises(CommandError, match="no user"):
        run("create", "--user", "nobody", "--name", "x")
    with pytest.raises(CommandError, match="no token"):
        run("revoke", "tc_missing00")
    with pytest.raises(CommandError, match="positive"):
        run("create", "--user", "nobody", "--name", "x", "--expires", "0")


# -- the admin --------------------------------------------------------------------------
@pytest.fixture
def admin_client(owner) -> Client:
    owner.is_staff = owner.is_superuser = True
    owner.save()
    client = Client()
    client.force_login(owner)
    return client


def test_the_admin_shows_a_new_secret_once_and_never_again(admin_client, owner):
    response = admin_client.post("/admin/market/apitoken/add/",
                                 {"user": owner.pk, "name": "from the admin", "expires_at_0": "", "expires_at_1": ""},
                                 follow=True)
    assert response.status_code == 200
    shown = re.findall(rb"tc_[A-Za-z0-9_-]{40}", response.content)
    assert len(shown) == 1
    secret = shown[0].decode()
    token = ApiToken.objects.get(name="from the admin")
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    for page in ("/admin/market/apitoken/", f"/admin/market/apitoken/{token.pk}/change/"):
        body = admin_client.get(page).content
        assert secret.encode() not in body and token.digest.encode() not in body
        assert token.prefix.encode() in body


def test_the_admin_lists_and_revokes_tokens(admin_client, issued):
    token, secret = issued
    listing = admin_client.get("/admin/market/apitoken/").content.decode()
    for text in (token.prefix, "owner", "notebook"):
        assert text in listing
    admin_client.post("/admin/market/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert Client().get(API, **bearer(secret)).status_code == 401
    assert "Not revoked" in admin_client.get("/admin/market/apitoken/").content.decode()  # the filter


def test_staff_who_are_not_superusers_see_only_their_own_tokens(owner, issued):
    from django.contrib.auth.models import Permission

    other = get_user_model().objects.create_user("colleague", is_staff=True)
    other.user_permissions.add(*Permission.objects.filter(codename__endswith="_apitoken"))
    mine, _ = tokens.api_token_create(user=other, name="mine")
    client = Client()
    client.force_login(other)
    listing = client.get("/admin/market/apitoken/").content.decode()
    assert mine.prefix in listing and issued[0].prefix not in listing
    client.post("/admin/market/apitoken/add/", {"name": "added", "expires_at_0": "", "expires_at_1": ""})
    assert ApiToken.objects.get(name="added").user == other


def test_the_symbol_admin_shows_and_filters_always_record(admin_client, make_symbol):
    make_symbol("NSE:SBIN-EQ", always_record=True)
    page = admin_client.get("/admin/market/symbol/").content.decode()
    assert "column-always_record" in page  # list_display
    assert "?always_record__exact=1" in page  # list_filter


def test_a_token_with_the_alerts_scope_writes_alerts_and_a_read_token_does_not(client, owner, make_symbol):
    make_symbol("NSE:SBIN-EQ")
    out, _ = run("create", "--user", owner.username, "--name", "bot", "--scope", "alerts")
    writer = out.strip().splitlines()[-1]
    reader = tokens.api_token_create(user=owner, name="r")[1]
    body = {"symbol": "NSE:SBIN-EQ", "tf": "1m", "left": "price", "op": "crosses_above", "right": 600}
    made = client.post("/api/alerts", body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {writer}")
    assert made.status_code == 201, made.content
    refused = client.post("/api/alerts", body, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {reader}")
    assert refused.status_code == 403 and "alerts" in refused.json()["error"]
    # Every token still reads.
    assert client.get("/api/alerts", HTTP_AUTHORIZATION=f"Bearer {writer}").status_code == 200


def test_an_unknown_scope_is_refused_by_name(db, owner):
    with pytest.raises(CommandError, match="unknown scope 'trade'"):
        run("create", "--user", owner.username, "--name", "bot", "--scope", "trade")
    assert tokens.scope_words("markers,alerts") == "read alerts markers"
