"""Drawings (issue 12): services, selectors, the REST API and the live ``drawing`` frame."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from jsonschema import Draft202012Validator

from market import selectors, services
from market.core.drawings import MAX_PER_SYMBOL, DrawingError
from market.models import Drawing
from market.tokens import api_token_create
from market.web.protocol import SCHEMA_PATH

pytestmark = pytest.mark.django_db

SYMBOL = "NSE:SBIN-EQ"
T = 1_763_600_000
TREND = {"symbol": SYMBOL, "kind": "trend", "points": [{"time": T, "price": 800.5}, {"time": T + 600, "price": 810}],
         "style": {"color": "#ff9800", "width": 2}}
SCHEMA = json.loads(SCHEMA_PATH.read_text())


def frame_validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{name}"})


@pytest.fixture
def ada():
    return get_user_model().objects.create_user(username="ada", password="pw")


@pytest.fixture
def bob():
    return get_user_model().objects.create_user(username="bob", password="pw")


@pytest.fixture
def signed_in(client, ada, make_symbol):
    make_symbol()
    client.force_login(ada)
    return client


def post(client, url, body, **kw):
    return client.post(url, orjson.dumps(body), content_type="application/json", **kw)


def patch(client, url, body, **kw):
    return client.patch(url, orjson.dumps(body), content_type="application/json", **kw)


def test_services_and_selectors(ada, bob):
    d = services.drawing_create(user=ada, symbol=SYMBOL, kind="hline", points=[{"time": T, "price": 5}])
    assert (d.points, d.style["width"]) == ([{"time": T, "price": 5.0}], 2)
    services.drawing_create(user=bob, symbol=SYMBOL, kind="hline", points=[{"time": T, "price": 6}])
    assert [x.id for x in selectors.drawing_list(user=ada, symbol=SYMBOL)] == [d.id]
    assert selectors.drawing_list(user=ada, symbol="NSE:OTHER-EQ") == []
    services.drawing_update(drawing=d, style={"color": "#00FF00"})
    d.refresh_from_db()
    assert d.style == {"color": "#00ff00", "width": 2, "text": ""}
    with pytest.raises(DrawingError, match="^points: hline takes 1 point"):
        services.drawing_update(drawing=d, points=[{"time": T, "price": 1}] * 2)
    services.drawing_delete(drawing=d)
    assert selectors.drawing_get(user=ada, pk=d.pk) is None


def test_create_list_get_patch_delete(signed_in):
    r = post(signed_in, "/api/drawings", TREND)
    assert r.status_code == 201, r.content
    d = r.json()
    assert set(d) == {"id", "symbol", "kind", "points", "style", "created", "updated"}
    assert (d["symbol"], d["kind"], d["points"]) == (SYMBOL, "trend", [{"time": T, "price": 800.5},
                                                                      {"time": T + 600, "price": 810.0}])
    assert d["style"] == {"color": "#ff9800", "width": 2, "text": ""}
    frame_validator("drawing").validate(d)
    assert signed_in.get(f"/api/drawings?symbol={SYMBOL}").json() == {"drawings": [d]}
    assert signed_in.get(f"/api/drawings/{d['id']}").json() == d
    moved = [{"time": T + 60, "price": 801}, {"time": T + 660, "price": 811}]
    r = patch(signed_in, f"/api/drawings/{d['id']}", {"points": moved, "style": {"width": 4}})
    assert r.status_code == 200, r.content
    got = r.json()
    assert got["points"] == [{"time": T + 60, "price": 801.0}, {"time": T + 660, "price": 811.0}]
    assert got["style"] == {"color": "#ff9800", "width": 4, "text": ""}
    assert got["updated"] >= d["updated"] and got["created"] == d["created"]
    assert signed_in.delete(f"/api/drawings/{d['id']}").status_code == 204
    assert signed_in.get(f"/api/drawings?symbol={SYMBOL}").json() == {"drawings": []}
    assert signed_in.get(f"/api/drawings/{d['id']}").status_code == 404


def test_every_kind_round_trips(signed_in):
    for kind, n in [("hline", 1), ("hray", 1), ("text", 1), ("trend", 2), ("ray", 2), ("rect", 2), ("fib", 2)]:
        body = {"symbol": SYMBOL, "kind": kind, "points": TREND["points"][:n], "style": {"text": "note"}}
        r = post(signed_in, "/api/drawings", body)
        assert r.status_code == 201, (kind, r.content)
    kinds = [d["kind"] for d in signed_in.get(f"/api/drawings?symbol={SYMBOL}").json()["drawings"]]
    assert kinds == ["hline", "hray", "text", "trend", "ray", "rect", "fib"]


def test_another_users_drawing_is_404(signed_in, bob):
    other = services.drawing_create(user=bob, symbol=SYMBOL, kind="hline", points=[{"time": T, "price": 1}])
    url = f"/api/drawings/{other.id}"
    assert signed_in.get(url).status_code == 404
    assert patch(signed_in, url, {"style": {"width": 3}}).status_code == 404
    assert signed_in.delete(url).status_code == 404
    assert signed_in.get(f"/api/drawings?symbol={SYMBOL}").json() == {"drawings": []}
    other.refresh_from_db()
    assert other.style["width"] == 2


@pytest.mark.parametrize("change, field", [
    ({"symbol": None}, "symbol"),
    ({"symbol": "has space"}, "symbol"),
    ({"symbol": "NSE:NOPE-EQ"}, "symbol"),
    ({"kind": "circle"}, "kind"),
    ({"kind": None}, "kind"),
    ({"points": None}, "points"),
    ({"points": [{"time": T, "price": 1}]}, "points"),
    ({"points": [{"time": "now", "price": 1}, {"time": T, "price": 1}]}, "points[0].time"),
    ({"points": [{"time": T, "price": 1}, {"time": T, "price": "high"}]}, "points[1].price"),
    ({"style": {"color": "blue"}}, "style.color"),
    ({"style": {"width": 9}}, "style.width"),
    ({"style": {"text": "x" * 501}}, "style.text"),
    ({"style": {"opacity": 1}}, "style.opacity"),
    ({"style": "red"}, "style"),
    ({"extra": 1}, "extra"),
])
def test_a_bad_field_is_a_400_naming_it(signed_in, change, field):
    body = {k: v for k, v in {**TREND, **change}.items() if v is not None}
    r = post(signed_in, "/api/drawings", body)
    assert r.status_code == 400, r.content
    assert r.json()["error"].startswith(field + ":"), r.json()
    assert Drawing.objects.count() == 0


def test_bad_patch_and_bad_bodies(signed_in):
    d = post(signed_in, "/api/drawings", TREND).json()
    url = f"/api/drawings/{d['id']}"
    assert patch(signed_in, url, {"kind": "hline"}).json()["error"].startswith("kind:")
    assert patch(signed_in, url, {}).json()["error"].startswith("points:")
    assert patch(signed_in, url, {"style": {"color": "#12"}}).json()["error"].startswith("style.color:")
    r = signed_in.post("/api/drawings", b"{nope", content_type="application/json")
    assert (r.status_code, r.json()) == (400, {"error": "body must be JSON"})
    assert post(signed_in, "/api/drawings", [1]).json() == {"error": "body must be a JSON object"}
    big = {**TREND, "style": {"text": "x" * 20_000}}
    assert post(signed_in, "/api/drawings", big).status_code == 413
    assert signed_in.get("/api/drawings").json() == {"error": "symbol: required"}
    assert signed_in.put(url).status_code == 405
    assert signed_in.get(url).json() == d  # unchanged


def test_text_note_needs_text(signed_in):
    body = {"symbol": SYMBOL, "kind": "text", "points": TREND["points"][:1]}
    assert post(signed_in, "/api/drawings", body).json()["error"].startswith("style.text:")


def test_cap_per_user_and_symbol(signed_in, ada, bob, make_symbol):
    Drawing.objects.bulk_create([Drawing(user=ada, symbol=SYMBOL, kind="hline", points=[{"time": T, "price": 1}],
                                         style={"color": "#000000", "width": 1, "text": ""})
                                 for _ in range(MAX_PER_SYMBOL)])
    r = post(signed_in, "/api/drawings", TREND)
    assert r.status_code == 400 and r.json()["error"] == (
        f"symbol: at most {MAX_PER_SYMBOL} drawings per symbol; delete some first")
    make_symbol("NSE:TCS-EQ")
    assert post(signed_in, "/api/drawings", {**TREND, "symbol": "NSE:TCS-EQ"}).status_code == 201
    assert services.drawing_create(user=bob, symbol=SYMBOL, kind="hline", points=[{"time": T, "price": 1}])


@pytest.mark.parametrize("public", [True, False])
def test_anonymous_is_401(client, make_symbol, settings, public):
    settings.TICKCHART_PUBLIC_ACCESS = public
    make_symbol()
    assert client.get(f"/api/drawings?symbol={SYMBOL}").status_code == 401
    r = post(client, "/api/drawings", TREND)
    assert r.status_code == 401 and "login_url" in r.json()
    assert client.delete("/api/drawings/1").status_code == 401


def test_token_reads_and_writes_only_with_the_drawings_scope(client, ada, make_symbol):
    make_symbol()
    services.drawing_create(user=ada, **TREND)
    _, read_only = api_token_create(user=ada, name="r")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {read_only}"}
    assert len(client.get(f"/api/drawings?symbol={SYMBOL}", **auth).json()["drawings"]) == 1
    r = post(client, "/api/drawings", TREND, **auth)
    assert r.status_code == 403 and "'drawings' scope" in r.json()["error"]
    _, alerts_only = api_token_create(user=ada, name="a", scopes=["alerts"])
    assert post(client, "/api/drawings", TREND, HTTP_AUTHORIZATION=f"Bearer {alerts_only}").status_code == 403
    _, writer = api_token_create(user=ada, name="w", scopes=["drawings"])
    r = post(client, "/api/drawings", TREND, HTTP_AUTHORIZATION=f"Bearer {writer}")
    assert r.status_code == 201, r.content
    assert client.get(f"/api/drawings?symbol={SYMBOL}", HTTP_AUTHORIZATION="Bearer tc_bad").status_code == 401
    assert Drawing.objects.filter(user=ada).count() == 2


def test_session_writes_need_csrf(ada, make_symbol):
    make_symbol()
    c = Client(enforce_csrf_checks=True)
    c.force_login(ada)
    r = post(c, "/api/drawings", TREND)
    assert r.status_code == 403 and r.json() == {"error": "CSRF check failed"}
    assert c.get(f"/chart/{SYMBOL}/").status_code == 200  # the page sets the CSRF cookie; the front end sends it back as X-CSRFToken
    token = c.cookies["csrftoken"].value
    assert post(c, "/api/drawings", TREND, HTTP_X_CSRFTOKEN=token).status_code == 201


# ------------------------------------------------------------------ live sync

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


def _login(name: str) -> tuple[Client, str]:
    user = get_user_model().objects.create_user(name, password="a-long-test-password-9431")
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}"


async def _drawing_frames(comm: WebsocketCommunicator, quiet: float = 0.6) -> list[dict]:
    out = []
    while not await comm.receive_nothing(timeout=quiet):
        frame = await comm.receive_json_from(timeout=5)
        if frame["type"] == "drawing":
            out.append(frame)
    return out


@pytest.mark.django_db(transaction=True)
async def test_each_write_reaches_the_users_open_pages_as_a_drawing_frame(make_symbol):
    from tickchart.asgi import application

    await sync_to_async(make_symbol)()
    ada, ada_cookie = await sync_to_async(_login)("ada2")
    _, bob_cookie = await sync_to_async(_login)("bob2")
    socks = []
    for cookie in (ada_cookie, ada_cookie, bob_cookie):
        comm = WebsocketCommunicator(application, "/ws/market/", headers=HEADERS + [(b"cookie", cookie.encode())])
        assert (await comm.connect(timeout=5))[0]
        socks.append(comm)
    tabs, bob = socks[:2], socks[2]
    valid = frame_validator("market.server")
    try:
        await asyncio.sleep(0.3)  # joined (Redis subscribes asynchronously)
        d = (await sync_to_async(post)(ada, "/api/drawings", TREND)).json()
        for tab in tabs:
            frames = await _drawing_frames(tab)
            assert frames == [{"type": "drawing", "op": "upsert", "drawing": d}]
            valid.validate(frames[0])
        moved = (await sync_to_async(patch)(ada, f"/api/drawings/{d['id']}", {"style": {"color": "#00ff00"}})).json()
        assert await _drawing_frames(tabs[0]) == [{"type": "drawing", "op": "upsert", "drawing": moved}]
        await sync_to_async(ada.delete)(f"/api/drawings/{d['id']}")
        frames = await _drawing_frames(tabs[1])
        assert [(f["op"], f["drawing"]["id"]) for f in frames] == [("upsert", d["id"]), ("delete", d["id"])]
        valid.validate(frames[1])
        bad = (await sync_to_async(post)(ada, "/api/drawings", {**TREND, "kind": "x"}))
        assert bad.status_code == 400
        assert await _drawing_frames(tabs[0]) == [{"type": "drawing", "op": "delete", "drawing": frames[1]["drawing"]}]
        assert await _drawing_frames(bob, quiet=0.3) == []
    finally:
        for comm in socks:
            await comm.disconnect()
