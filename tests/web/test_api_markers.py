"""``/api/markers`` (issue 16): a strategy posts a marker with a ``markers`` token and every
open chart of the symbol hears it live; readers list them; only the author deletes."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from market import services
from market.tokens import api_token_create
from tests.web.test_protocol import check
from tickchart.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
TICKER = "NSE:SBIN-EQ"
HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.fixture
def strategy(make_symbol):
    make_symbol(TICKER)
    make_symbol("NSE:TCS-EQ")
    user = get_user_model().objects.create_user("strategy")
    _, secret = api_token_create(user=user, name="bot", scopes="markers")
    _, read_only = api_token_create(user=user, name="notebook")
    return user, secret, read_only


def post(secret: str | None, body: dict, client: Client | None = None):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return (client or Client()).post("/api/markers", orjson.dumps(body), content_type="application/json", **extra)


def test_post_list_and_delete(strategy):
    user, secret, _ = strategy
    made = post(secret, {"symbol": TICKER, "time": 1_700_000_060, "price": 812.5, "shape": "arrowUp",
                         "color": "#26a69a", "text": "long"})
    assert made.status_code == 201, made.content
    m = made.json()
    assert m == {"id": m["id"], "symbol": TICKER, "time": 1_700_000_060, "price": 812.5, "shape": "arrowUp",
                 "position": "atPriceMiddle", "color": "#26a69a", "text": "long", "author": "strategy"}
    post(secret, {"symbol": TICKER, "time": 1_700_000_000, "shape": "circle"})
    post(secret, {"symbol": "NSE:TCS-EQ", "time": 1_700_000_000})
    listed = Client().get(f"/api/markers?symbol={TICKER}").json()  # public read (the embedded default)
    assert [x["time"] for x in listed["markers"]] == [1_700_000_000, 1_700_000_060]
    ranged = Client().get(f"/api/markers?symbol={TICKER}&from=1700000001").json()["markers"]
    assert [x["id"] for x in ranged] == [m["id"]]
    gone = Client().delete(f"/api/markers/{m['id']}", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert gone.status_code == 200
    assert Client().get(f"/api/markers/{m['id']}").status_code == 404


def test_writes_need_the_markers_scope_and_the_author(strategy):
    user, secret, read_only = strategy
    refused = post(read_only, {"symbol": TICKER, "time": 1})
    assert refused.status_code == 403 and "'markers' scope" in refused.json()["error"]
    assert post(None, {"symbol": TICKER, "time": 1}).status_code == 401  # a visitor
    m = post(secret, {"symbol": TICKER, "time": 1}).json()
    other = get_user_model().objects.create_user("other")
    _, theirs = api_token_create(user=other, name="x", scopes="markers")
    assert Client().delete(f"/api/markers/{m['id']}", HTTP_AUTHORIZATION=f"Bearer {theirs}").status_code == 403
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert post(None, {"symbol": TICKER, "time": 2}, browser).status_code == 403  # no CSRF token


@pytest.mark.parametrize("body, status, message", [
    ({"symbol": "NSE:NOPE-EQ", "time": 1}, 400, "unknown symbol"),
    ({"symbol": "not a ticker", "time": 1}, 400, "symbol:"),
    ({"symbol": TICKER, "time": 1, "shape": "star"}, 400, "shape:"),
    ({"symbol": TICKER}, 400, "time:"),
])
def test_bad_markers_are_400s_naming_the_field(strategy, body, status, message):
    response = post(strategy[1], body)
    assert response.status_code == status and message in response.json()["error"]


def test_bad_bodies(strategy):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {strategy[1]}"}
    assert Client().post("/api/markers", b"[1]", content_type="application/json", **extra).status_code == 400
    assert Client().post("/api/markers", b"{", content_type="application/json", **extra).status_code == 400
    big = orjson.dumps({"symbol": TICKER, "time": 1, "text": "x" * 5000})
    assert Client().post("/api/markers", big, content_type="application/json", **extra).status_code == 413
    assert Client().get("/api/markers?symbol=NSE:NOPE-EQ").status_code == 400


def test_a_quota_per_user_and_symbol(strategy, monkeypatch):
    monkeypatch.setattr(services, "MARKERS_PER_SYMBOL", 2)
    assert [post(strategy[1], {"symbol": TICKER, "time": t}).status_code for t in (1, 2, 3)] == [201, 201, 409]
    assert post(strategy[1], {"symbol": "NSE:TCS-EQ", "time": 1}).status_code == 201


async def _frames(comm: WebsocketCommunicator, kind: str, quiet: float = 0.5) -> list[dict]:
    out = []
    while not await comm.receive_nothing(timeout=quiet):
        frame = await comm.receive_json_from(timeout=5)
        if frame["type"] == kind:
            out.append(frame)
    return out


async def test_open_charts_of_the_symbol_hear_markers_live_once_per_socket(strategy):
    _, secret, _ = strategy
    watcher = WebsocketCommunicator(application, "/ws/market/", headers=HEADERS)
    other = WebsocketCommunicator(application, "/ws/market/", headers=HEADERS)
    assert (await watcher.connect(timeout=5))[0] and (await other.connect(timeout=5))[0]
    try:
        for tf in ("1m", "5m", "2m"):  # three streams of one symbol: one marker frame each time
            await watcher.send_json_to({"type": "subscribe", "symbol": TICKER, "tf": tf})
        await other.send_json_to({"type": "subscribe", "symbol": "NSE:TCS-EQ", "tf": "1m"})
        await _frames(watcher, "snapshot")
        await _frames(other, "snapshot")
        made = await sync_to_async(post)(secret, {"symbol": TICKER, "time": 1_700_000_000, "text": "exit"})
        heard = await _frames(watcher, "marker")
        for frame in heard:
            check("market.server", frame)  # market/web/protocol.schema.json
        assert [(f["op"], f["marker"]["id"], f["marker"]["text"]) for f in heard] == [
            ("upsert", made.json()["id"], "exit")]
        assert await _frames(other, "marker", quiet=0.2) == []  # another symbol's chart
        await sync_to_async(Client().delete)(f"/api/markers/{made.json()['id']}",
                                             HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert [f["op"] for f in await _frames(watcher, "marker")] == ["delete"]
        for tf in ("1m", "5m", "2m"):  # no stream of it left: no more markers
            await watcher.send_json_to({"type": "unsubscribe", "symbol": TICKER, "tf": tf})
        await asyncio.sleep(0.2)
        await sync_to_async(post)(secret, {"symbol": TICKER, "time": 1_700_000_060})
        assert await _frames(watcher, "marker", quiet=0.3) == []
    finally:
        await watcher.disconnect()
        await other.disconnect()
