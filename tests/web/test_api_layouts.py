"""Layouts (issue 12): services, selectors, /api/layouts and the /layout/ pages."""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from market import selectors, services
from market.core.layouts import MAX_PER_USER
from market.models import Layout
from market.tokens import api_token_create

pytestmark = pytest.mark.django_db

SYMBOL = "NSE:SBIN-EQ"
OTHER = "NSE:TCS-EQ"
SPEC = {"grid": 2, "theme": "light", "charts": [
    {"symbol": SYMBOL, "tf": "5m", "type": "heikin_ashi", "studies": ["ema"], "link_group": "A", "scale": "percent",
     "compare": [OTHER]},
    {"symbol": OTHER, "tf": "1h", "type": "line", "drawings_visible": False, "link_group": "A", "scale": "log"}]}
FULL = {"grid": 2, "theme": "light", "charts": [
    {"symbol": SYMBOL, "tf": "5m", "type": "heikin_ashi", "studies": ["ema:20"], "drawings_visible": True,
     "link_group": "A", "scale": "percent", "compare": [OTHER]},
    {"symbol": OTHER, "tf": "1h", "type": "line", "studies": [], "drawings_visible": False, "link_group": "A",
     "scale": "log"}]}


@pytest.fixture
def ada():
    return get_user_model().objects.create_user(username="ada", password="pw")


@pytest.fixture
def bob():
    return get_user_model().objects.create_user(username="bob", password="pw")


@pytest.fixture
def symbols(make_symbol):
    make_symbol(SYMBOL)
    make_symbol(OTHER)


@pytest.fixture
def signed_in(client, ada, symbols):
    client.force_login(ada)
    return client


def post(client, url, body, **kw):
    return client.post(url, orjson.dumps(body), content_type="application/json", **kw)


def patch(client, url, body, **kw):
    return client.patch(url, orjson.dumps(body), content_type="application/json", **kw)


def test_services_and_selectors(ada, bob):
    a = services.layout_create(owner=ada, name=" Morning ", spec=SPEC)
    assert (a.name, a.spec) == ("Morning", FULL)
    b = services.layout_create(owner=ada, name="Evening", spec={**SPEC, "grid": 1, "charts": SPEC["charts"][:1]})
    services.layout_create(owner=bob, name="Morning", spec=SPEC)  # names are per user
    assert [x.name for x in selectors.layout_list(owner=ada)] == ["Evening", "Morning"]
    assert selectors.layout_last(owner=ada) == b  # never opened: the last saved
    services.layout_opened(layout=a)
    assert selectors.layout_last(owner=ada) == a
    with pytest.raises(services.LayoutNameTaken, match="^name: you already have"):
        services.layout_update(layout=b, name="Morning")
    services.layout_update(layout=a, name="Morning")  # its own name is free
    assert selectors.layout_get(owner=bob, pk=a.pk) is None
    services.layout_delete(layout=a)
    assert selectors.layout_get(owner=ada, pk=a.pk) is None


def test_create_list_get_patch_delete(signed_in):
    r = post(signed_in, "/api/layouts", {"name": "Two", "spec": SPEC})
    assert r.status_code == 201, r.content
    got = r.json()
    assert set(got) == {"id", "name", "spec", "created", "updated", "opened"}
    assert (got["name"], got["spec"], got["opened"]) == ("Two", FULL, None)
    assert signed_in.get("/api/layouts").json() == {"layouts": [got]}
    url = f"/api/layouts/{got['id']}"
    assert signed_in.get(url).json() == got
    one = {"grid": 1, "charts": [{"symbol": OTHER, "tf": "1d"}]}
    r = patch(signed_in, url, {"name": "One", "spec": one})
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "One" and r.json()["spec"]["charts"][0]["tf"] == "1d"
    assert r.json()["spec"]["theme"] == "dark"  # the spec is replaced whole
    r = patch(signed_in, url, {"name": "Renamed"})
    assert r.json()["spec"]["charts"][0]["symbol"] == OTHER
    assert signed_in.delete(url).status_code == 204
    assert signed_in.get(url).status_code == 404
    assert signed_in.get("/api/layouts").json() == {"layouts": []}


@pytest.mark.parametrize("body, field", [
    ({"spec": SPEC}, "name"),
    ({"name": "x"}, "spec"),
    ({"name": "", "spec": SPEC}, "name"),
    ({"name": "x", "spec": {**SPEC, "grid": 3}}, "spec.grid"),
    ({"name": "x", "spec": {**SPEC, "charts": [SPEC["charts"][0], {"symbol": "NSE:NOPE-EQ"}]}},
     "spec.charts[1].symbol"),
    ({"name": "x", "spec": {**SPEC, "charts": [SPEC["charts"][0], {"symbol": OTHER, "tf": "7m"}]}},
     "spec.charts[1].tf"),
    ({"name": "x", "spec": SPEC, "owner": 2}, "owner"),
])
def test_a_bad_field_is_a_400_naming_it(signed_in, body, field):
    r = post(signed_in, "/api/layouts", body)
    assert r.status_code == 400, r.content
    assert r.json()["error"].startswith(field + ":"), r.json()
    assert Layout.objects.count() == 0


def test_unknown_symbol_is_named(signed_in):
    bad = {**SPEC, "charts": [SPEC["charts"][0], {"symbol": "NSE:NOPE-EQ"}]}
    assert post(signed_in, "/api/layouts", {"name": "x", "spec": bad}).json() == {
        "error": "spec.charts[1].symbol: unknown symbol NSE:NOPE-EQ"}


def test_an_unknown_compared_symbol_is_named_on_create_and_on_patch(signed_in):
    first = SPEC["charts"][0]
    bad = {**SPEC, "charts": [first, {"symbol": OTHER, "compare": [first["symbol"], "NSE:NOPE-EQ"]}]}
    r = post(signed_in, "/api/layouts", {"name": "x", "spec": bad})
    assert (r.status_code, r.json()) == (400, {"error": "spec.charts[1].compare[1]: unknown symbol NSE:NOPE-EQ"})
    assert Layout.objects.count() == 0
    good = {**SPEC, "charts": [first, {"symbol": OTHER, "compare": [first["symbol"]]}]}
    url = f"/api/layouts/{post(signed_in, '/api/layouts', {'name': 'x', 'spec': good}).json()['id']}"
    r = patch(signed_in, url, {"spec": bad})
    assert r.status_code == 400 and r.json()["error"].startswith("spec.charts[1].compare[1]:")
    assert signed_in.get(url).json()["spec"]["charts"][1]["compare"] == [first["symbol"]]  # kept as it was


def test_bad_patch_and_bodies(signed_in):
    url = f"/api/layouts/{post(signed_in, '/api/layouts', {'name': 'A', 'spec': SPEC}).json()['id']}"
    post(signed_in, "/api/layouts", {"name": "B", "spec": SPEC})
    assert patch(signed_in, url, {}).json()["error"].startswith("name:")
    r = patch(signed_in, url, {"name": "B"})
    assert r.status_code == 409 and r.json()["error"] == "name: you already have a layout named 'B'"
    assert patch(signed_in, url, {"spec": {"grid": 1}}).json()["error"].startswith("spec.charts:")
    r = signed_in.post("/api/layouts", b"{", content_type="application/json")
    assert (r.status_code, r.json()) == (400, {"error": "body must be JSON"})
    big = {"name": "x" * 20_000, "spec": SPEC}
    assert post(signed_in, "/api/layouts", big).status_code == 413
    assert signed_in.put(url).status_code == 405
    assert signed_in.get(url).json()["name"] == "A"
    assert post(signed_in, "/api/layouts", {"name": "A", "spec": SPEC}).status_code == 409


def test_another_users_layout_is_404(signed_in, bob):
    other = services.layout_create(owner=bob, name="Bob's", spec=SPEC)
    url = f"/api/layouts/{other.id}"
    assert signed_in.get(url).status_code == 404
    assert patch(signed_in, url, {"name": "Mine"}).status_code == 404
    assert signed_in.delete(url).status_code == 404
    assert signed_in.get("/api/layouts").json() == {"layouts": []}
    assert signed_in.get(f"/layout/{other.id}/").status_code == 404
    other.refresh_from_db()
    assert other.name == "Bob's"


def test_quota_per_user(signed_in, ada, bob):
    Layout.objects.bulk_create([Layout(owner=ada, name=f"L{i}", spec=FULL) for i in range(MAX_PER_USER)])
    r = post(signed_in, "/api/layouts", {"name": "one more", "spec": SPEC})
    assert r.status_code == 409 and r.json()["error"] == (
        f"name: at most {MAX_PER_USER} layouts per user; delete some first")
    assert services.layout_create(owner=bob, name="one more", spec=SPEC)


@pytest.mark.parametrize("public", [True, False])
def test_anonymous_is_401(client, symbols, settings, public):
    settings.TICKCHART_PUBLIC_ACCESS = public
    assert client.get("/api/layouts").status_code == 401
    r = post(client, "/api/layouts", {"name": "x", "spec": SPEC})
    assert r.status_code == 401 and "login_url" in r.json()
    assert client.delete("/api/layouts/1").status_code == 401


def test_token_reads_and_writes_only_with_the_drawings_scope(client, ada, symbols):
    services.layout_create(owner=ada, name="A", spec=SPEC)
    _, read_only = api_token_create(user=ada, name="r")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {read_only}"}
    assert len(client.get("/api/layouts", **auth).json()["layouts"]) == 1
    r = post(client, "/api/layouts", {"name": "B", "spec": SPEC}, **auth)
    assert r.status_code == 403 and "'drawings' scope" in r.json()["error"]
    _, writer = api_token_create(user=ada, name="w", scopes=["drawings"])
    r = post(client, "/api/layouts", {"name": "B", "spec": SPEC}, HTTP_AUTHORIZATION=f"Bearer {writer}")
    assert r.status_code == 201, r.content


def test_session_writes_need_csrf(ada, symbols):
    c = Client(enforce_csrf_checks=True)
    c.force_login(ada)
    assert post(c, "/api/layouts", {"name": "A", "spec": SPEC}).status_code == 403
    c.get("/layout/")  # the page sets the CSRF cookie
    token = c.cookies["csrftoken"].value
    assert post(c, "/api/layouts", {"name": "A", "spec": SPEC}, HTTP_X_CSRFTOKEN=token).status_code == 201


def _config(response) -> dict:
    return response.context["layout_config"]


def test_layout_page_renders_each_panes_history_and_is_remembered(signed_in, ada):
    from market.core.types import Candle, CandleUpdate

    sym = selectors.symbol_get(ticker=SYMBOL)
    updates = [CandleUpdate(SYMBOL, "5m", Candle(1_763_600_100 + 300 * i, 1, 2, 0.5, 1.5, 10.0, 1), True)
               for i in range(3)]
    services.candle_upsert_many(updates=updates, symbol_ids={SYMBOL: sym.pk})
    a = services.layout_create(owner=ada, name="A", spec=SPEC)
    b = services.layout_create(owner=ada, name="B", spec=SPEC)
    r = signed_in.get(f"/layout/{a.id}/")
    assert r.status_code == 200
    config = _config(r)
    assert config["layout"]["id"] == a.id and config["layout"]["spec"] == FULL
    assert [p["symbol"] for p in config["panes"]] == [SYMBOL, OTHER]
    assert [len(p["candles"]) for p in config["panes"]] == [3, 0]
    assert all("tz" in p for p in config["panes"])
    assert b'id="layout-config"' in r.content
    r = signed_in.get("/layout/")
    assert (r.status_code, r["Location"]) == (302, f"/layout/{a.id}/")
    signed_in.get(f"/layout/{b.id}/")
    assert signed_in.get("/layout/")["Location"] == f"/layout/{b.id}/"


def test_layout_page_for_visitors_and_users_without_layouts(client, ada, symbols, settings):
    settings.TICKCHART_PUBLIC_ACCESS = True
    r = client.get("/layout/")
    assert r.status_code == 200 and _config(r)["layout"] is None and not _config(r)["signed_in"]
    assert client.get("/layout/1/").status_code == 404
    client.force_login(ada)
    r = client.get("/layout/")
    assert r.status_code == 200 and _config(r)["signed_in"] and _config(r)["panes"] is None
