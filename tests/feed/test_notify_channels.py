"""Alert events to notification channels (issue 13): real apprise against a loopback HTTP
server (``json://``), e-mail through Django's locmem backend; the webhooks' retries."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from market import selectors, services
from market.core.alerts import BACKOFF, Event
from market.feed.webhooks import deliver_due
from market.models import NotifyDelivery
from tests.feed.test_alerts_pipeline import LEVEL, expected_price_crosses, prices, recording, replay

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver():
    got: list = []
    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.path, self.headers, body))
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, got, status
    server.shutdown()
    server.server_close()


@pytest.fixture
def ada():
    return get_user_model().objects.create_user(username="ada", password="pw")


@pytest.fixture
def loopback(settings):
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True


def alert_with(user, *channels, **kw):
    a = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="above", right=1,
                              message="sbin up", **kw)
    services.alert_channels_set(alert=a, channels=channels)
    return a


def fire(a, t=60):
    ev = Event(f"{a.id}@{t}", str(a.id), "NSE:SBIN-EQ", "1m", t, 2.5, 1.0, "above")
    services.alert_checkpoint(events=[(ev, a.message)], states={}, done=())
    return ev.id


def test_apprise_json_reaches_a_loopback_server_once_and_is_retried(ada, receiver, loopback):
    port, got, status = receiver
    ch = services.notify_channel_create(user=ada, name="hook", kind="apprise", target=f"json://127.0.0.1:{port}/in")
    a = alert_with(ada, ch)
    eid = fire(a)
    status["code"] = 500
    assert deliver_due(now=1000.0) == 0
    d = NotifyDelivery.objects.get(event_id=eid)
    assert (d.status, d.attempts, d.next_attempt) == ("pending", 1, 1000.0 + BACKOFF[0]) and d.last_error
    assert deliver_due(now=1001.0) == 0 and len(got) == 1  # not due yet
    status["code"] = 200
    assert deliver_due(now=1000.0 + BACKOFF[0]) == 1
    assert deliver_due(now=10**10) == 0 and len(got) == 2
    d.refresh_from_db()
    assert (d.status, d.attempts) == ("delivered", 2)
    path, headers, body = got[-1]
    sent = json.loads(body)
    assert path == "/in" and "sbin up" in sent["title"] and eid in sent["message"] and "2.5" in sent["message"]
    # the same event recorded again (a re-evaluation) queues nothing new
    fire(a)
    assert NotifyDelivery.objects.filter(event_id=eid).count() == 1


def test_email_goes_through_djangos_mail_backend(ada, loopback):
    ch = services.notify_channel_create(user=ada, name="me", kind="email", target="ada@example.com")
    eid = fire(alert_with(ada, ch))
    assert deliver_due(now=10**9) == 1
    [msg] = mail.outbox
    assert msg.to == ["ada@example.com"] and "NSE:SBIN-EQ" in msg.subject and "sbin up" in msg.subject
    assert msg.extra_headers["X-TickChart-Event"] == eid and eid in msg.body
    assert deliver_due(now=10**10) == 0 and len(mail.outbox) == 1


def test_a_disabled_channel_or_an_alert_without_channels_queues_nothing(ada, loopback):
    ch = services.notify_channel_create(user=ada, name="me", kind="email", target="ada@example.com")
    ch.enabled = False
    ch.save()
    fire(alert_with(ada, ch))
    fire(alert_with(ada), t=120)
    assert NotifyDelivery.objects.count() == 0
    assert deliver_due(now=10**9) == 0 and mail.outbox == []


def test_a_failing_apprise_target_never_shows_up_in_logs_or_errors(ada, caplog, loopback):
    secret = "tok3n-sup3r-s3cret"
    ch = services.notify_channel_create(user=ada, name="hook", kind="apprise",
                                        target=f"json://user:{secret}@127.0.0.1:1/in")
    eid = fire(alert_with(ada, ch))
    with caplog.at_level(logging.DEBUG):
        assert deliver_due(now=10**9) == 0
    d = NotifyDelivery.objects.get(event_id=eid)
    assert d.attempts == 1 and d.status == "pending"
    assert secret not in d.last_error
    assert all(secret not in r.getMessage() for r in caplog.records)  # apprise's own logs too
    assert selectors.notify_channel_as_dict(ch)["target"] == "json://…"


def test_private_channel_hosts_are_refused_at_send_time_in_production(ada, receiver, settings):
    settings.DEBUG = False
    port, got, _ = receiver
    ch = services.notify_channel_create(user=ada, name="hook", kind="apprise", target=f"json://127.0.0.1:{port}/")
    eid = fire(alert_with(ada, ch))
    assert deliver_due(now=10**9) == 0
    assert "refused" in NotifyDelivery.objects.get(event_id=eid).last_error and got == []


def test_runfeed_sends_a_replays_events_to_the_channels(tmp_path, ada, receiver, loopback):
    port, got, _ = receiver
    hook = services.notify_channel_create(user=ada, name="hook", kind="apprise", target=f"json://127.0.0.1:{port}/")
    me = services.notify_channel_create(user=ada, name="me", kind="email", target="ada@example.com")
    ticks = prices(400)
    a = services.alert_create(user=ada, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="crosses_above",
                              right=LEVEL, trigger="once_per_bar")
    services.alert_channels_set(alert=a, channels=[hook, me])
    replay(recording(tmp_path / "s.jsonl", ticks))
    want = expected_price_crosses(ticks, a.id)
    assert sorted(m.extra_headers["X-TickChart-Event"] for m in mail.outbox) == sorted(want)
    sent = [json.loads(body)["message"] for _, _, body in got]
    assert sorted(next(w for w in want if f"event {w} " in s) for s in sent) == sorted(want)
    assert set(NotifyDelivery.objects.values_list("status", flat=True)) == {"delivered"}
