"""``/api/channels`` and an alert's ``channels`` (issue 13)."""

import orjson
import pytest
from django.contrib.auth import get_user_model

from market.models import NotifyChannel
from market.tokens import api_token_create

pytestmark = pytest.mark.django_db

ALERT = {"symbol": "NSE:SBIN-EQ", "tf": "1m", "left": "price", "op": "crosses_above", "right": 800}
SECRET_URL = "ntfy://tok3n-s3cret@ntfy.example.com/alerts"


@pytest.fixture
def ada():
    return get_user_model().objects.create_user(username="ada", password="pw")


@pytest.fixture
def signed_in(client, ada, make_symbol):
    make_symbol()
    client.force_login(ada)
    return client


def post(client, url, body, **kw):
    return client.post(url, orjson.dumps(body), content_type="application/json", **kw)


def test_create_list_delete_and_the_apprise_url_never_shown(signed_in):
    r = post(signed_in, "/api/channels", {"name": "phone", "kind": "apprise", "target": SECRET_URL})
    assert r.status_code == 201, r.content
    ch = r.json()
    assert ch == {"id": ch["id"], "name": "phone", "kind": "apprise", "target": "ntfy://…", "enabled": True}
    mail = post(signed_in, "/api/channels", {"name": "me", "kind": "email", "target": "ada@example.com"}).json()
    assert mail["target"] == "ada@example.com"
    listed = signed_in.get("/api/channels")
    assert b"tok3n" not in listed.content and [c["id"] for c in listed.json()["channels"]] == [ch["id"], mail["id"]]
    assert b"tok3n" not in signed_in.get(f"/api/channels/{ch['id']}").content
    assert NotifyChannel.objects.get(pk=ch["id"]).target == SECRET_URL
    assert signed_in.delete(f"/api/channels/{ch['id']}").status_code == 204
    assert signed_in.get(f"/api/channels/{ch['id']}").status_code == 404


@pytest.mark.parametrize("body, msg", [
    ({"kind": "sms", "target": "x"}, "kind:"), ({"kind": "email", "target": "not-an-address"}, "e-mail"),
    ({"kind": "apprise", "target": "nosuchscheme://x"}, "apprise"), ({"kind": "apprise", "target": ""}, "target:"),
    ({"kind": "email", "target": "a@b.example", "extra": 1}, "unknown field"),
    ({"kind": "email", "target": "a@b.example", "name": 3}, "name:"),
])
def test_bad_channels_are_clear_400s(signed_in, body, msg):
    r = post(signed_in, "/api/channels", body)
    assert r.status_code == 400 and msg in r.json()["error"], r.content
    assert "nosuchscheme" not in r.json()["error"]


def test_private_apprise_hosts_are_refused_in_production(signed_in, settings):
    settings.DEBUG = False
    for target in ("json://127.0.0.1:8000/", "json://localhost/", "json://10.0.0.7/", "json://[::1]/"):
        r = post(signed_in, "/api/channels", {"kind": "apprise", "target": target})
        assert r.status_code == 400 and "refused" in r.json()["error"], target
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True
    assert post(signed_in, "/api/channels", {"kind": "apprise", "target": "json://127.0.0.1:8000/"}).status_code == 201


def test_an_alert_names_its_own_channels_only(signed_in, client):
    ch = post(signed_in, "/api/channels", {"kind": "email", "target": "ada@example.com"}).json()
    a = post(signed_in, "/api/alerts", ALERT | {"channels": [ch["id"]]}).json()
    assert a["channels"] == [ch["id"]]
    assert signed_in.get("/api/alerts").json()["alerts"][0]["channels"] == [ch["id"]]
    r = signed_in.patch(f"/api/alerts/{a['id']}", orjson.dumps({"channels": []}), content_type="application/json")
    assert r.status_code == 200 and r.json()["channels"] == []
    assert post(signed_in, "/api/alerts", ALERT | {"channels": "1"}).status_code == 400
    bob = get_user_model().objects.create_user(username="bob", password="pw")
    client.force_login(bob)
    r = post(client, "/api/alerts", ALERT | {"channels": [ch["id"]]})
    assert r.status_code == 400 and r.json()["error"] == f"channels: no channel {ch['id']}"
    assert client.get("/api/channels").json() == {"channels": []}
    assert client.delete(f"/api/channels/{ch['id']}").status_code == 404


def test_tokens_need_the_alerts_scope_to_write_and_visitors_get_nothing(client, ada, make_symbol):
    assert client.get("/api/channels").status_code == 401
    _, read = api_token_create(user=ada, name="r")
    _, write = api_token_create(user=ada, name="w", scopes=["alerts"])
    body = {"kind": "email", "target": "ada@example.com"}
    assert post(client, "/api/channels", body, HTTP_AUTHORIZATION=f"Bearer {read}").status_code == 403
    assert post(client, "/api/channels", body, HTTP_AUTHORIZATION=f"Bearer {write}").status_code == 201
    assert len(client.get("/api/channels", HTTP_AUTHORIZATION=f"Bearer {read}").json()["channels"]) == 1
