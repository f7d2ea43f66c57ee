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
