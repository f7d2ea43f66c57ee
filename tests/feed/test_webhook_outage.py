"""A webhook receiver outage (issue 13): the receiver is down (its port closed), then
answers 503, then comes back; every event is delivered after, once, and while it lasts
the delivery state (pending, attempts, the last error) shows in the API and the admin.

The issue says "down for a minute": with TICKCHART_LONG_TESTS=1 the outage lasts 60 s;
by default ~15 s, so the suite stays quick. The retry schedule is configurable
(``TICKCHART_WEBHOOK_BACKOFF``), and here it is short (1 s, then 2 s, then 3 s apart) so
retries land inside and just after the outage; the real delivery loop of runfeed
(``runner._deliver_webhooks``) does the sending, woken by the stores and polling.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model

from market import services
from market.core.alerts import Event
from market.models import AlertEvent

OUTAGE = 60.0 if os.environ.get("TICKCHART_LONG_TESTS") == "1" else 15.0
BACKOFF = "1,2" + ",3" * int(OUTAGE)  # more than long enough to outlast the outage


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Answers ``status["code"]``; logs (key, code) of every POST."""

    def __init__(self, port: int) -> None:
        self.log: list[tuple[str, int]] = []
        self.code = 503
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                me.log.append((self.headers["Idempotency-Key"], me.code))
                self.send_response(me.code)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DeliveryLoop:
    """runfeed's delivery task, on an event loop of its own thread."""

    def __init__(self) -> None:
        from market.feed import runner

        self.ready = threading.Event()

        async def main() -> None:
            from channels.db import database_sync_to_async
            from django.db import connections

            self.loop = asyncio.get_running_loop()
            self.stop, self.wake = asyncio.Event(), asyncio.Event()
            self.ready.set()
            await runner._deliver_webhooks(self.stop, self.wake)
            for _ in range(4):  # the executor's threads' connections: PostgreSQL drops the test database after
                await database_sync_to_async(connections.close_all, thread_sensitive=False)()

        self.thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def poke(self) -> None:
        """As a store that recorded events does once it has committed."""
        self.loop.call_soon_threadsafe(self.wake.set)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)


def _record(alert, t: int) -> str:
    ev = Event(f"{alert.id}@{t}", str(alert.id), "NSE:SBIN-EQ", "1m", t, 801.0, 800.0, "crosses_above")
    services.alert_checkpoint(events=[(ev, "up")], states={}, done=())
    return ev.id


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300 + 3 * OUTAGE)
def test_events_wait_out_a_receiver_outage_and_are_delivered_once_after(client, settings):
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True
    settings.TICKCHART_WEBHOOK_BACKOFF = BACKOFF
    port = free_port()  # nothing listens there yet: connections are refused
    user = get_user_model().objects.create_superuser("ada", password="pw")
    client.force_login(user)
    alert = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="crosses_above",
                                  right=800, webhook=f"http://127.0.0.1:{port}/hook")
    loop = DeliveryLoop()
    receiver = None
    try:
        started = time.monotonic()
        keys = [_record(alert, 60), _record(alert, 120)]
        loop.poke()
        time.sleep(OUTAGE / 2 - 1)
        # down: the events wait, with their attempts and the refused connection shown
        shown = client.get(f"/api/alerts/{alert.id}/events").json()["events"]
        assert [e["delivery"] for e in shown] == ["pending", "pending"]
        assert all(e["attempts"] >= 2 and e["last_error"] for e in shown), shown
        page = client.get("/admin/market/alertevent/?delivery__exact=pending").content.decode()
        assert all(k in page for k in keys)
        # up but failing: 503 (and an event fired meanwhile waits with the others)
        receiver = Receiver(port)
        keys.append(_record(alert, 180))
        loop.poke()
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - started)))
        shown = client.get(f"/api/alerts/{alert.id}/events").json()["events"]
        assert {e["delivery"] for e in shown} == {"pending"}
        assert any("HTTP 503" in e["last_error"] for e in shown), shown
        assert {code for _, code in receiver.log} == {503}
        # back: everything is delivered, each once
        receiver.code = 200
        deadline = time.monotonic() + 30
        while AlertEvent.objects.exclude(delivery="delivered").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(4)  # a repeat, if there were one, would come by now (the next retries)
    finally:
        loop.close()
        if receiver is not None:
            receiver.close()
    accepted = [k for k, code in receiver.log if code == 200]
    assert sorted(accepted) == sorted(keys), receiver.log
    shown = client.get(f"/api/alerts/{alert.id}/events").json()["events"]
    assert [e["delivery"] for e in shown] == ["delivered"] * 3
    assert all(e["attempts"] >= 2 for e in shown[:2])  # those fired while it was down were retried
