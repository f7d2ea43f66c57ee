"""Alerts: services, selectors and the REST API (issue 13)."""

import pytest
from django.contrib.auth import get_user_model

from market import selectors, services
from market.core.alerts import AlertError, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada():
    return get_user_model().objects.create_user(username="ada", password="pw")


def test_create_normalises_and_validates(ada):
    a = services.alert_create(user=ada, symbol="DEMO:ALPHA", tf="1m", left="MACD.hist", op="crosses_above",
                              right="0", trigger="once_per_bar_close")
    assert (a.left, a.right, a.status) == ("macd:12:26:9.hist", "0.0", "active") and len(a.secret) == 64
    with pytest.raises(AlertError, match="op:"):
        services.alert_create(user=ada, symbol="DEMO:ALPHA", tf="1m", left="price", op="x", right=1)
    assert [x.id for x in selectors.alert_list(user=ada)] == [a.id]


def test_pause_resume_delete(ada):
    a = services.alert_create(user=ada, symbol="DEMO:ALPHA", tf="1m", left="price", op="above", right=1)
    a.state = {"prev": 3}
    a.save()
    services.alert_pause(alert=a)
    assert selectors.alert_list_active() == []
    services.alert_resume(alert=a)
    a.refresh_from_db()
    assert a.status == "active" and a.state == {}
    services.alert_delete(alert=a)
    assert selectors.alert_get(user=ada, pk=a.id) is None


def test_event_record_is_idempotent(ada):
    a = services.alert_create(user=ada, symbol="DEMO:ALPHA", tf="1m", left="price", op="above", right=1)
    ev = Event(f"{a.id}@60", str(a.id), "DEMO:ALPHA", "1m", 60, 2.0, 1.0, "above")
    assert services.alert_event_record(event=ev) is True
    assert services.alert_event_record(event=ev) is False
    assert [e["id"] for e in selectors.alert_event_list(alert=a)] == [ev.id]


# ------------------------------------------------------------------ REST

import orjson  # noqa: E402

from market.tokens import api_token_create  # noqa: E402

BODY = {"symbol": "NSE:SBIN-EQ", "tf": "1m", "left": "price", "op": "crosses_above", "right": 800}


@pytest.fixture
def signed_in(client, ada, make_symbol):
    make_symbol()
    client.force_login(ada)
    return client


def post(client, url, body, **kw):
    return client.post(url, orjson.dumps(body), content_type="application/json", **kw)


def test_create_list_get_pause_resume_delete(signed_in):
    r = post(signed_in, "/api/alerts", BODY | {"message": "SBIN up"})
    assert r.status_code == 201, r.content
    a = r.json()
    assert (a["left"], a["op"], a["right"], a["status"], a["message"]) == ("price", "crosses_above", "800.0", "active", "SBIN up")
    assert "secret" not in a
    assert [x["id"] for x in signed_in.get("/api/alerts").json()["alerts"]] == [a["id"]]
    assert signed_in.get(f"/api/alerts/{a['id']}").json()["id"] == a["id"]
    r = signed_in.patch(f"/api/alerts/{a['id']}", orjson.dumps({"status": "paused"}), content_type="application/json")
    assert r.json()["status"] == "paused"
    r = signed_in.patch(f"/api/alerts/{a['id']}", orjson.dumps({"status": "active"}), content_type="application/json")
    assert r.json()["status"] == "active"
    assert signed_in.get(f"/api/alerts/{a['id']}/events").json() == {"alert": a["id"], "events": []}
    assert signed_in.delete(f"/api/alerts/{a['id']}").status_code == 204
    assert signed_in.get(f"/api/alerts/{a['id']}").status_code == 404


@pytest.mark.parametrize("change, msg", [
    ({"op": "nope"}, "op:"), ({"tf": "7m"}, "tf:"), ({"left": "ema:0"}, "left:"), ({"symbol": "NSE:NOPE-EQ"}, "unknown"),
    ({"symbol": "bad symbol"}, "symbol:"), ({"extra": 1}, "unknown field"), ({"webhook": "ftp://x"}, "webhook:"),
    ({"bars": "2"}, "bars:"), ({"trigger": "sometimes"}, "trigger:"),
])
def test_bad_fields_are_clear_400s(signed_in, change, msg):
    r = post(signed_in, "/api/alerts", BODY | change)
    assert r.status_code == 400 and msg in r.json()["error"], r.content


def test_missing_field_and_bad_json(signed_in):
    body = dict(BODY)
    del body["op"]
    assert post(signed_in, "/api/alerts", body).json() == {"error": "op: required"}
    r = signed_in.post("/api/alerts", b"{nope", content_type="application/json")
    assert r.status_code == 400 and r.json() == {"error": "body must be JSON"}
    r = signed_in.patch("/api/alerts/999", b"{}", content_type="application/json")
    assert r.status_code == 404


def test_other_users_alerts_are_invisible(signed_in, client):
    a = post(signed_in, "/api/alerts", BODY).json()
    bob = get_user_model().objects.create_user(username="bob", password="pw")
    client.force_login(bob)
    assert client.get(f"/api/alerts/{a['id']}").status_code == 404
    assert client.get("/api/alerts").json() == {"alerts": []}
    assert client.delete(f"/api/alerts/{a['id']}").status_code == 404


def test_anonymous_is_refused_even_with_public_access(client, make_symbol):
    make_symbol()
    assert client.get("/api/alerts").status_code == 401
    assert post(client, "/api/alerts", BODY).status_code == 401


def test_read_token_reads_but_does_not_write(client, ada, make_symbol):
    make_symbol()
    services.alert_create(user=ada, **BODY)
    _, secret = api_token_create(user=ada, name="t")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert len(client.get("/api/alerts", **auth).json()["alerts"]) == 1
    r = post(client, "/api/alerts", BODY, **auth)
    assert r.status_code == 403 and "alerts" in r.json()["error"]


def test_session_writes_need_csrf(ada, make_symbol):
    from django.test import Client
    make_symbol()
    c = Client(enforce_csrf_checks=True)
    c.force_login(ada)
    r = post(c, "/api/alerts", BODY)
    assert r.status_code == 403 and r.json() == {"error": "CSRF check failed"}


def test_events_listed(signed_in, ada):
    a = post(signed_in, "/api/alerts", BODY).json()
    services.alert_event_record(event=Event(f"{a['id']}@60", str(a["id"]), "NSE:SBIN-EQ", "1m", 60, 801.0, 800.0,
                                            "crosses_above"), message="m", fired_at=70.0)
    ev = signed_in.get(f"/api/alerts/{a['id']}/events").json()["events"]
    assert ev == [{"id": f"{a['id']}@60", "alert": a["id"], "symbol": "NSE:SBIN-EQ", "tf": "1m", "time": 60.0,
                   "value": 801.0, "other": 800.0, "message": "m", "fired_at": 70.0, "delivery": "none",
                   "attempts": 0, "last_error": "", "caught_up": False}]


# ------------------------------------------------------------------ quota, webhook targets

def test_the_quota_refuses_one_alert_too_many_clearly(signed_in, settings):
    settings.TICKCHART_ALERT_QUOTA = 3
    for _ in range(3):
        assert post(signed_in, "/api/alerts", BODY).status_code == 201
    r = post(signed_in, "/api/alerts", BODY)
    assert r.status_code == 409 and r.json() == {"error": "quota: at most 3 alerts per user; delete some first"}
    first = signed_in.get("/api/alerts").json()["alerts"][0]["id"]
    assert signed_in.delete(f"/api/alerts/{first}").status_code == 204
    assert post(signed_in, "/api/alerts", BODY).status_code == 201


def test_the_default_quota_is_200(signed_in, ada):
    from market.conf import alerts_conf
    assert alerts_conf().quota == 200
    for _ in range(200):
        services.alert_create(user=ada, **BODY)
    r = post(signed_in, "/api/alerts", BODY)
    assert r.status_code == 409 and "200" in r.json()["error"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/", "http://192.168.0.1/", "http://172.16.0.9/",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/",
    "http://0.0.0.0/", "http://240.0.0.1/", "http://100.64.0.1/", "http://[fe80::1]/", "http://[fd00::1]/",
])
def test_private_webhook_targets_are_refused_in_production(signed_in, settings, url):
    settings.DEBUG = False
    r = post(signed_in, "/api/alerts", BODY | {"webhook": url})
    assert r.status_code == 400 and r.json()["error"].startswith("webhook:"), r.content


def test_private_webhook_targets_are_allowed_when_the_setting_says_so(signed_in, settings):
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True
    assert post(signed_in, "/api/alerts", BODY | {"webhook": "http://127.0.0.1:9/x"}).status_code == 201
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = False
    assert post(signed_in, "/api/alerts", BODY | {"webhook": "http://8.8.8.8/x"}).status_code == 201
    assert post(signed_in, "/api/alerts", BODY | {"webhook": "http://u:p@8.8.8.8/x"}).status_code == 400


# ------------------------------------------------------------------ the owner's open pages hear changes

import asyncio  # noqa: E402

from asgiref.sync import sync_to_async  # noqa: E402
from channels.testing import WebsocketCommunicator  # noqa: E402
from django.test import Client  # noqa: E402

from tickchart.asgi import application  # noqa: E402


async def _frames(comm, kind, quiet=0.5):
    out = []
    while not await comm.receive_nothing(timeout=quiet):
        frame = await comm.receive_json_from(timeout=5)
        if frame["type"] == kind:
            out.append(frame)
    return out


@pytest.mark.django_db(transaction=True)
async def test_create_patch_delete_are_told_to_the_owners_pages_only(make_symbol):
    def setup():
        make_symbol()
        out = []
        for name in ("ada", "bob"):
            user = get_user_model().objects.create_user(username=name, password="pw")
            c = Client()
            c.force_login(user)
            out.append(c)
        return out

    ada_client, bob_client = await sync_to_async(setup)()
    sockets = []
    for c in (ada_client, ada_client, bob_client):
        comm = WebsocketCommunicator(application, "/ws/market/", headers=[
            (b"origin", b"http://localhost"), (b"host", b"localhost"),
            (b"cookie", f"sessionid={c.cookies['sessionid'].value}".encode())])
        assert (await comm.connect(timeout=5))[0]
        sockets.append(comm)
    try:
        await asyncio.sleep(0.2)
        created = (await sync_to_async(post)(ada_client, "/api/alerts", BODY)).json()
        for tab in sockets[:2]:
            assert await _frames(tab, "alert") == [{"type": "alert", "op": "upsert", "alert": created}]
        paused = (await sync_to_async(ada_client.patch)(
            f"/api/alerts/{created['id']}", orjson.dumps({"status": "paused"}), content_type="application/json")).json()
        assert await _frames(sockets[0], "alert") == [{"type": "alert", "op": "upsert", "alert": paused}]
        assert paused["status"] == "paused"
        await sync_to_async(ada_client.delete)(f"/api/alerts/{created['id']}")
        assert await _frames(sockets[1], "alert") == [
            {"type": "alert", "op": "upsert", "alert": paused},
            {"type": "alert", "op": "delete", "alert": {"id": created["id"], "symbol": "NSE:SBIN-EQ"}}]
        assert await _frames(sockets[2], "alert", quiet=0.2) == []
    finally:
        for comm in sockets:
            await comm.disconnect()


def test_alert_frames_match_the_protocol_schema(signed_in):
    import json

    from jsonschema import Draft202012Validator, ValidationError

    from market.web.protocol import SCHEMA_PATH
    schema = json.loads(SCHEMA_PATH.read_text())
    check = Draft202012Validator({**schema, "$ref": "#/$defs/market.server"}).validate
    a = post(signed_in, "/api/alerts", BODY).json()
    check({"type": "alert", "op": "upsert", "alert": a})
    check({"type": "alert", "op": "upsert", "alert": a | {"status": "done", "expired": True}})
    check({"type": "alert", "op": "delete", "alert": {"id": a["id"], "symbol": a["symbol"]}})
    event = {"id": f"{a['id']}@60", "alert": a["id"], "symbol": "NSE:SBIN-EQ", "tf": "1m", "time": 60, "value": 1.5,
             "message": "", "fired_at": 61.5}
    check({"type": "alert_event", "event": event})
    for bad in ({"type": "alert", "op": "upsert", "alert": a | {"secret": "x"}},
                {"type": "alert", "op": "delete", "alert": a},
                {"type": "alert_event", "event": event | {"other": 1}},
                {"type": "alert_event", "event": {k: v for k, v in event.items() if k != "fired_at"}}):
        with pytest.raises(ValidationError):
            check(bad)
