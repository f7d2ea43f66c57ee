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
                   "attempts": 0, "last_error": ""}]
