"""Alerts on a drawn line (issue 13): ``"right": "drawing:<id>"`` through the REST API."""

import pytest
from django.contrib.auth import get_user_model

from market import services
from market.models import Alert
from tests.web.test_api_alerts import BODY, post

pytestmark = pytest.mark.django_db

TREND = [{"time": 1000, "price": 790.0}, {"time": 2000, "price": 810.0}]


@pytest.fixture
def ada():
    return get_user_model().objects.create_user(username="ada", password="pw")


@pytest.fixture
def signed_in(client, ada, make_symbol):
    make_symbol()
    make_symbol("NSE:TCS-EQ")
    client.force_login(ada)
    return client


def line(user, kind="trend", points=TREND, symbol="NSE:SBIN-EQ"):
    return services.drawing_create(user=user, symbol=symbol, kind=kind, points=points)


def test_an_alert_on_a_line_is_created_and_shown_with_its_drawing(signed_in, ada):
    d = line(ada)
    r = post(signed_in, "/api/alerts", BODY | {"right": f"drawing:{d.id}"})
    assert r.status_code == 201, r.content
    assert r.json()["right"] == f"drawing:{d.id}" and r.json()["reason"] == ""
    bar = post(signed_in, "/api/alerts", BODY | {"left": "close", "right": f"drawing:{d.id}",
                                                "trigger": "once_per_bar_close"})
    assert bar.status_code == 201, bar.content


def test_bad_lines_are_clear_400s(signed_in, ada):
    bob = get_user_model().objects.create_user(username="bob", password="pw")
    cases = {
        "drawing:999999": "right: no drawing 999999",
        f"drawing:{line(bob).id}": "is not one of yours",
        f"drawing:{line(ada, symbol='NSE:TCS-EQ').id}": "is on NSE:TCS-EQ, not NSE:SBIN-EQ",
        f"drawing:{line(ada, 'rect').id}": "a rect drawing has no line",
        f"drawing:{line(ada, 'fib').id}": "a fib drawing has no line",
        "drawing:abc": "drawing:<its id>",
    }
    text = services.drawing_create(user=ada, symbol="NSE:SBIN-EQ", kind="text", points=TREND[:1],
                                   style={"text": "hi"})
    cases[f"drawing:{text.id}"] = "a text drawing has no line"
    for right, msg in cases.items():
        r = post(signed_in, "/api/alerts", BODY | {"right": right})
        assert r.status_code == 400 and msg in r.json()["error"], (right, r.content)
    assert Alert.objects.count() == 0


def test_deleting_the_drawing_disables_its_alerts_with_a_reason(signed_in, ada):
    d, other = line(ada), line(ada, "hline", TREND[:1])
    a = post(signed_in, "/api/alerts", BODY | {"right": f"drawing:{d.id}"}).json()
    b = post(signed_in, "/api/alerts", BODY | {"right": f"drawing:{other.id}"}).json()
    assert signed_in.delete(f"/api/drawings/{d.id}").status_code == 204
    got = signed_in.get(f"/api/alerts/{a['id']}").json()
    assert (got["status"], got["reason"]) == ("disabled", f"its drawing {d.id} was deleted")
    assert signed_in.get(f"/api/alerts/{b['id']}").json()["status"] == "active"
    r = signed_in.patch(f"/api/alerts/{a['id']}", b'{"status": "active"}', content_type="application/json")
    assert r.status_code == 400 and "disabled (its drawing" in r.json()["error"]
