"""The admin's alerts, alert events and token scopes (issue 13)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from market import services
from market.core.alerts import Event
from market.models import ApiToken
from market.tokens import api_token_create

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password-9431"


@pytest.fixture
def boss():
    user = get_user_model().objects.create_superuser("boss", password=PASSWORD)
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def rows(make_symbol):
    make_symbol("DEMO:ALPHA", exchange="DEMO")
    users = {n: get_user_model().objects.create_user(n, password=PASSWORD) for n in ("ada", "bob")}
    a = services.alert_create(user=users["ada"], symbol="DEMO:ALPHA", tf="1m", left="price", op="above", right=1,
                              message="ada-breakout", webhook="https://hooks.example/x")
    b = services.alert_create(user=users["bob"], symbol="NSE:SBIN-EQ", tf="5m", left="close", op="crosses",
                              right=2, trigger="once_per_bar_close", message="bob-dip")
    services.alert_pause(alert=b)
    services.alert_event_record(event=Event(f"{a.id}@60", str(a.id), "DEMO:ALPHA", "1m", 60, 2.0, 1.0, "above"),
                                message="ada-breakout")
    services.alert_event_record(event=Event(f"{b.id}@300", str(b.id), "NSE:SBIN-EQ", "5m", 300, 3.0, 2.0, "crosses"),
                                message="bob-dip")
    return users, a, b


def shown_ids(html: str, model: str) -> set[str]:
    return set(re.findall(rf'href="/admin/market/{model}/([^/"]+)/change/', html))


def test_alerts_are_searchable_and_filtered(boss, rows):
    _, a, b = rows
    url = "/admin/market/alert/"
    assert shown_ids(boss.get(url).content.decode(), "alert") == {str(a.id), str(b.id)}
    for q, want in (("ada", {a.id}), ("NSE:SBIN", {b.id}), ("breakout", {a.id}), ("nothing-like-it", set())):
        assert shown_ids(boss.get(url, {"q": q}).content.decode(), "alert") == {str(x) for x in want}, q
    assert shown_ids(boss.get(url, {"status__exact": "paused"}).content.decode(), "alert") == {str(b.id)}
    assert shown_ids(boss.get(url, {"trigger__exact": "once"}).content.decode(), "alert") == {str(a.id)}
    page = boss.get(f"{url}{a.id}/change/").content.decode()
    assert a.secret not in page and "hooks.example" in page
    assert boss.get(f"{url}add/").status_code == 403


def test_alert_events_are_searchable_by_id_user_symbol_and_message(boss, rows):
    _, a, b = rows
    url = "/admin/market/alertevent/"
    ids = {f"{a.id}@60", f"{b.id}@300"}
    assert {i.replace("_40", "@") for i in shown_ids(boss.get(url).content.decode(), "alertevent")} == ids
    for q, want in ((f"{a.id}@60", f"{a.id}@60"), ("bob", f"{b.id}@300"), ("DEMO:ALPHA", f"{a.id}@60"),
                    ("dip", f"{b.id}@300")):
        got = {i.replace("_40", "@") for i in shown_ids(boss.get(url, {"q": q}).content.decode(), "alertevent")}
        assert got == {want}, q
    got = shown_ids(boss.get(url, {"alert__status__exact": "paused"}).content.decode(), "alertevent")
    assert {i.replace("_40", "@") for i in got} == {f"{b.id}@300"}


def test_staff_see_only_their_own_alerts(rows):
    users, a, _ = rows
    ada = users["ada"]
    ada.is_staff = True
    ada.save()
    from django.contrib.auth.models import Permission
    ada.user_permissions.add(*Permission.objects.filter(codename__in=["view_alert", "change_alert", "view_alertevent"]))
    c = Client()
    c.force_login(ada)
    assert shown_ids(c.get("/admin/market/alert/").content.decode(), "alert") == {str(a.id)}
    events = shown_ids(c.get("/admin/market/alertevent/").content.decode(), "alertevent")
    assert {i.replace("_40", "@") for i in events} == {f"{a.id}@60"}


def _token_form(boss, url):
    page = boss.get(url).content.decode()
    assert 'name="scopes"' in page
    assert set(re.findall(r'name="scopes" value="(\w+)"', page)) == {"alerts", "markers", "drawings"}
    return page


def test_the_token_admin_sets_scopes_read_always(boss, rows):
    users, _, _ = rows
    token, _ = api_token_create(user=users["ada"], name="notebook")
    assert token.scope == "read"
    url = f"/admin/market/apitoken/{token.pk}/change/"
    _token_form(boss, url)
    r = boss.post(url, {"name": "notebook", "expires_at_0": "", "expires_at_1": "", "scopes": ["drawings", "alerts"]})
    assert r.status_code == 302, r.content.decode()[:2000]
    token.refresh_from_db()
    assert token.scope == "read alerts drawings"
    page = boss.get(url).content.decode()
    assert re.search(r'value="alerts"[^>]*checked', page) and not re.search(r'value="markers"[^>]*checked', page)
    boss.post(url, {"name": "notebook", "expires_at_0": "", "expires_at_1": ""})
    token.refresh_from_db()
    assert token.scope == "read"


def test_a_token_added_in_the_admin_gets_its_scopes(boss, rows):
    users, _, _ = rows
    _token_form(boss, "/admin/market/apitoken/add/")
    r = boss.post("/admin/market/apitoken/add/", {"user": users["bob"].pk, "name": "bot", "expires_at_0": "",
                                                  "expires_at_1": "", "scopes": ["markers"]}, follow=True)
    assert r.status_code == 200
    token = ApiToken.objects.get(name="bot")
    assert token.scope == "read markers" and token.user == users["bob"]
    assert re.search(r"tc_[A-Za-z0-9_-]{40}", r.content.decode())  # the secret, shown once
    r = boss.post("/admin/market/apitoken/add/", {"user": users["bob"].pk, "name": "bad", "expires_at_0": "",
                                                  "expires_at_1": "", "scopes": ["root"]})
    assert r.status_code == 200 and not ApiToken.objects.filter(name="bad").exists()


def test_channel_admin_never_shows_an_apprise_url(boss, rows):
    from market import services
    users, _, _ = rows
    ch = services.notify_channel_create(user=users["ada"], name="phone", kind="apprise",
                                        target="ntfy://tok3n-s3cret@ntfy.example.com/x")
    assert b"tok3n" not in boss.get("/admin/market/notifychannel/").content
    page = boss.get(f"/admin/market/notifychannel/{ch.pk}/change/")
    assert page.status_code == 200 and b"tok3n" not in page.content and "ntfy://…" in page.content.decode()
    assert shown_ids(boss.get("/admin/market/notifychannel/", {"q": "bob"}).content.decode(), "notifychannel") == set()
