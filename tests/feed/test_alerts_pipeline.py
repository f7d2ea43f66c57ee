"""Alerts in the writer: a replay fires exactly the expected events, once (issue 13)."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from market import selectors, services
from market.models import Alert, AlertEvent
from market.vendors.fyers.recording import session_open
from tests.feed.test_replay import sf, write_lines

OPEN = session_open(dt.date(2026, 11, 20))  # 09:15 IST
LEVEL = 800.0


def prices(n: int) -> list[tuple[int, float]]:
    # a wave around LEVEL: several crossings, some within one 1m bar
    return [(OPEN + 3 * i, round(LEVEL + 6 * math.sin(i / 7) + 2 * math.sin(i * 1.3), 2)) for i in range(n)]


def recording(path, ticks):
    return write_lines(path, [sf("NSE:SBIN-EQ", t, p, 1000 + 10 * i) for i, (t, p) in enumerate(ticks)])


def expected_price_crosses(ticks, alert_id):
    out, bar_fired = [], set()
    for (t0, p0), (t1, p1) in zip(ticks, ticks[1:]):
        bar = OPEN + (t1 - OPEN) // 60 * 60
        if p0 < LEVEL <= p1 and bar not in bar_fired:
            bar_fired.add(bar)
            out.append(f"{alert_id}@{t1}")
    return out


def expected_close_crosses(ticks, alert_id):
    closes: dict[int, float] = {}
    for t, p in ticks:
        closes[OPEN + (t - OPEN) // 60 * 60] = p
    times = sorted(closes)[:-1]  # the last bar is still open at the end of the file
    return [f"{alert_id}@{b}" for a, b in zip(times, times[1:]) if closes[a] < LEVEL <= closes[b]]


def events(alert):
    return list(AlertEvent.objects.filter(alert=alert).order_by("time").values_list("id", flat=True))


def make_alerts():
    user = get_user_model().objects.create_user(username="ada", password="pw")
    price = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="crosses_above",
                                  right=LEVEL, trigger="once_per_bar")
    close = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="close", op="crosses_above",
                                  right=LEVEL, trigger="once_per_bar_close")
    once = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="crosses_above",
                                 right=LEVEL, trigger="once")
    return price, close, once


def replay(path):
    call_command("runfeed", source="replay", file=str(path), speed=0, no_migrate=True)


@pytest.mark.django_db(transaction=True)
def test_replay_fires_the_expected_events_and_a_second_replay_adds_none(tmp_path):
    ticks = prices(400)
    path = recording(tmp_path / "s.jsonl", ticks)
    price, close, once = make_alerts()
    replay(path)
    want_price = expected_price_crosses(ticks, price.id)
    assert len(want_price) >= 3
    assert events(price) == want_price
    assert events(close) == expected_close_crosses(ticks, close.id) and events(close)
    assert events(once) == [want_price[0].replace(f"{price.id}@", f"{once.id}@")]
    once.refresh_from_db()
    assert once.status == "done"
    before = list(AlertEvent.objects.order_by("id").values_list("id", "time", "value"))
    replay(path)
    assert list(AlertEvent.objects.order_by("id").values_list("id", "time", "value")) == before


@pytest.mark.django_db(transaction=True)
def test_a_restart_midway_fires_what_one_run_fires(tmp_path):
    ticks = prices(400)
    price, close, once = make_alerts()
    replay(recording(tmp_path / "s.jsonl", ticks[:173]))   # stops (and checkpoints) midway
    replay(recording(tmp_path / "s.jsonl", ticks))         # resumes at the stored position
    assert events(price) == expected_price_crosses(ticks, price.id)
    assert events(close) == expected_close_crosses(ticks, close.id)
    assert len(events(once)) == 1


@pytest.mark.django_db(transaction=True)
def test_re_evaluating_from_an_older_checkpoint_does_not_fire_twice(tmp_path):
    ticks = prices(400)
    path = recording(tmp_path / "s.jsonl", ticks)
    price, close, _ = make_alerts()
    replay(path)
    first = events(price), events(close)
    # a crash after events were stored but before a later checkpoint: the same input
    # is evaluated again from scratch (every checkpoint forgotten)
    from market.models import Candle, SymbolCheckpoint, WriterCheckpoint
    Candle.objects.all().delete()
    SymbolCheckpoint.objects.all().delete()
    WriterCheckpoint.objects.all().delete()
    Alert.objects.update(state={})
    replay(path)
    assert (events(price), events(close)) == first


# ------------------------------------------------------------------ webhooks

import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from http.server import BaseHTTPRequestHandler, HTTPServer  # noqa: E402

from market.core.alerts import BACKOFF, Event  # noqa: E402
from market.feed.webhooks import deliver_due  # noqa: E402


@pytest.fixture(autouse=True)
def _loopback_webhooks(settings):
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True  # the receivers here are on 127.0.0.1


@pytest.fixture
def receiver():
    got: list = []
    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers, body))  # header names are case-insensitive
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got, status
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_webhook_signed_idempotent_and_retried(receiver):
    url, got, status = receiver
    user = get_user_model().objects.create_user(username="ada", password="pw")
    a = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="above", right=1,
                              message="up", webhook=url)
    ev = Event(f"{a.id}@60", str(a.id), "NSE:SBIN-EQ", "1m", 60, 2.0, 1.0, "above")
    services.alert_checkpoint(events=[(ev, "up")], states={}, done=())
    status["code"] = 500
    assert deliver_due(now=1000.0) == 0
    e = AlertEvent.objects.get(id=ev.id)
    assert (e.delivery, e.attempts, e.next_attempt) == ("pending", 1, 1000.0 + BACKOFF[0])
    assert deliver_due(now=1001.0) == 0 and len(got) == 1  # not due yet
    status["code"] = 200
    assert deliver_due(now=1000.0 + BACKOFF[0]) == 1
    e.refresh_from_db()
    assert (e.delivery, e.attempts) == ("delivered", 2)
    assert deliver_due(now=10**10) == 0 and len(got) == 2
    headers, body = got[-1]
    assert headers["Idempotency-Key"] == ev.id
    assert headers["X-TickChart-Signature"] == "sha256=" + hmac.new(a.secret.encode(), body, hashlib.sha256).hexdigest()
    assert json.loads(body) == {"id": ev.id, "alert": a.id, "symbol": "NSE:SBIN-EQ", "tf": "1m", "time": 60.0,
                                "value": 2.0, "message": "up", "fired_at": e.fired_at}
    assert sum(BACKOFF) >= 600


@pytest.mark.django_db(transaction=True)
def test_webhook_gives_up_after_the_backoff(receiver):
    user = get_user_model().objects.create_user(username="ada", password="pw")
    a = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="above", right=1,
                              webhook="http://127.0.0.1:1/closed")
    ev = Event(f"{a.id}@5", str(a.id), "NSE:SBIN-EQ", "1m", 5, 2.0, 1.0, "above")
    services.alert_checkpoint(events=[(ev, "")], states={}, done=())
    now = 0.0
    for _ in range(len(BACKOFF) + 1):
        deliver_due(now=now)
        now = AlertEvent.objects.get(id=ev.id).next_attempt
    e = AlertEvent.objects.get(id=ev.id)
    assert (e.delivery, e.attempts) == ("failed", len(BACKOFF) + 1) and e.last_error


@pytest.mark.django_db(transaction=True)
def test_runfeed_delivers_the_webhooks_of_a_replay(tmp_path, receiver):
    url, got, _ = receiver
    ticks = prices(400)
    user = get_user_model().objects.create_user(username="ada", password="pw")
    a = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="crosses_above",
                              right=LEVEL, trigger="once_per_bar", webhook=url)
    replay(recording(tmp_path / "s.jsonl", ticks))
    want = expected_price_crosses(ticks, a.id)
    assert sorted(h["Idempotency-Key"] for h, _ in got) == sorted(want)
    assert set(AlertEvent.objects.values_list("delivery", flat=True)) == {"delivered"}


# ------------------------------------------------------------------ the owner's open pages

import asyncio  # noqa: E402

from market.feed import alerting  # noqa: E402


@pytest.fixture
def published(monkeypatch):
    """What runfeed publishes on the user channel, as (user, kind, payload); ``fail`` makes
    every publish raise, as a channel layer outage would."""
    sent: list = []
    mode = {"fail": False}
    real = alerting.user_publish

    async def spy(layer, user_id, kind, payload):
        if mode["fail"]:
            raise ConnectionError("layer down")
        sent.append((user_id, kind, payload))
        await real(layer, user_id, kind, payload)

    monkeypatch.setattr(alerting, "user_publish", spy)
    return sent, mode


@pytest.mark.django_db(transaction=True)
def test_runfeed_tells_the_owner_of_each_stored_event_and_of_a_done_alert(tmp_path, published):
    sent, _ = published
    ticks = prices(400)
    price, close, once = make_alerts()
    replay(recording(tmp_path / "s.jsonl", ticks))
    frames = [p["event"] for u, k, p in sent if k == "alert_event"]
    assert all(u == price.user_id for u, _, _ in sent)
    stored = {e.id: e for e in AlertEvent.objects.all()}
    assert sorted(f["id"] for f in frames) == sorted(stored)
    for f in frames:
        e = stored[f["id"]]
        assert (f["alert"], f["symbol"], f["tf"], f["time"], f["value"], f["message"]) == \
            (e.alert_id, e.symbol, e.tf, e.time, e.value, e.message)
        assert abs(f["fired_at"] - e.fired_at) < 60
    changed = [p for _, k, p in sent if k == "alert"]
    assert changed == [{"op": "upsert", "alert": {**selectors.alert_as_dict(Alert.objects.get(pk=once.id))}}]
    assert changed[0]["alert"]["status"] == "done"


@pytest.mark.django_db(transaction=True)
def test_a_layer_outage_loses_no_event_and_does_not_stop_the_writer(tmp_path, published):
    sent, mode = published
    mode["fail"] = True
    ticks = prices(400)
    price, close, once = make_alerts()
    replay(recording(tmp_path / "s.jsonl", ticks))
    assert sent == []
    assert events(price) == expected_price_crosses(ticks, price.id)
    assert events(close) == expected_close_crosses(ticks, close.id)
    once.refresh_from_db()
    assert once.status == "done"


@pytest.mark.django_db(transaction=True)
def test_an_expired_alert_stops_firing_is_done_and_its_owner_hears_it(tmp_path, published):
    sent, _ = published
    ticks = prices(400)
    user = get_user_model().objects.create_user(username="ada", password="pw")
    crossings = expected_price_crosses(ticks, 0)
    cut = int(crossings[1].split("@")[1])  # expires between the 2nd and 3rd crossing
    a = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="crosses_above",
                              right=LEVEL, trigger="once_per_bar", expires=cut + 1)
    replay(recording(tmp_path / "s.jsonl", ticks))
    assert events(a) == [c.replace("0@", f"{a.id}@") for c in crossings[:2]]
    a.refresh_from_db()
    assert a.status == "done"
    changed = [p for _, k, p in sent if k == "alert"]
    assert changed == [{"op": "upsert", "alert": selectors.alert_as_dict(a) | {"expired": True}}]


@pytest.mark.django_db(transaction=True)
def test_announce_reaches_the_users_group_on_the_channel_layer():
    from channels.layers import get_channel_layer

    from market.core.alerts import Event as Ev
    from market.live.broadcast import user_group

    async def go():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(user_group(7), channel)
        book = alerting.AlertBook(session_of=lambda s: None, stored=set())
        book.rows[3] = {"id": 3, "user": 7}
        book.pending.append((Ev("3@60", "3", "DEMO:ALPHA", "1m", 60, 2.0, 1.0, "above"), "hi"))
        book.stored(book.checkpoint([], book.snapshot_ticks()), 1)
        assert await book.announce(layer) == 1
        msg = await asyncio.wait_for(layer.receive(channel), 5)
        return json.loads(msg["text"])

    frame = asyncio.run(go())
    assert frame["type"] == "alert_event"
    assert {k: v for k, v in frame["event"].items() if k != "fired_at"} == {
        "id": "3@60", "alert": 3, "symbol": "DEMO:ALPHA", "tf": "1m", "time": 60, "value": 2.0, "message": "hi"}


# ------------------------------------------------------------------ drawn lines

@pytest.mark.django_db(transaction=True)
def test_line_crosses_replay_fire_where_an_independent_calculation_says(tmp_path):
    """A flat, noisy price and a rising trend line through it: the replay fires on the ticks
    that reach the line from below (at most once a bar), and nothing outside its span."""
    ticks = [(OPEN + 3 * i, round(LEVEL + 3 * math.sin(i / 5), 2)) for i in range(600)]
    t0, t1 = OPEN + 300, OPEN + 1500  # the segment: 795 → 805 over 20 minutes
    p0, p1 = LEVEL - 5, LEVEL + 5
    user = get_user_model().objects.create_user(username="ada", password="pw")
    d = services.drawing_create(user=user, symbol="NSE:SBIN-EQ", kind="trend",
                                points=[{"time": t0, "price": p0}, {"time": t1, "price": p1}])
    a = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="crosses_above",
                              right=f"drawing:{d.id}", trigger="once_per_bar")
    replay(recording(tmp_path / "s.jsonl", ticks))

    def at(t):
        return p0 + (p1 - p0) * (t - t0) / (t1 - t0) if t0 <= t <= t1 else None

    want, fired_bars = [], set()
    for (ta, pa), (tb, pb) in zip(ticks, ticks[1:]):
        la, lb = at(ta), at(tb)
        if la is not None and lb is not None and pa < la and pb >= lb and (tb - OPEN) // 60 not in fired_bars:
            fired_bars.add((tb - OPEN) // 60)
            want.append(f"{a.id}@{tb}")
    assert len(want) >= 3
    assert events(a) == want
    assert all(t0 <= e.time <= t1 and e.value >= e.other for e in AlertEvent.objects.filter(alert=a))


@pytest.mark.django_db(transaction=True)
def test_the_writer_follows_a_moved_line_and_disables_the_alert_of_a_deleted_one():
    from market.feed.runner import alert_reload
    from market.models import Drawing

    user = get_user_model().objects.create_user(username="ada", password="pw")
    d = services.drawing_create(user=user, symbol="NSE:SBIN-EQ", kind="hline", points=[{"time": 0, "price": 10.0}])
    a = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="crosses_above",
                              right=f"drawing:{d.id}")
    book = alerting.AlertBook(session_of=lambda s: None, stored={"1m"})

    async def reload():
        await alert_reload(book)

    asyncio.run(reload())
    assert book.evaluators[a.id].line == ("hline", [{"time": 0, "price": 10.0}])
    services.drawing_update(drawing=d, points=[{"time": 0, "price": 12.5}])
    asyncio.run(reload())
    assert book.evaluators[a.id].level(99) == 12.5
    Drawing.objects.filter(pk=d.pk).delete()  # e.g. in the admin: no service told the alert
    asyncio.run(reload())
    assert a.id not in book.evaluators
    a.refresh_from_db()
    assert (a.status, a.reason) == ("disabled", f"its drawing {d.id} was deleted")
    assert book.announcing == [(user.id, "alert", {"op": "upsert", "alert": selectors.alert_as_dict(a)})]


# ------------------------------------------------------------------ a restart's catch-up

@pytest.mark.django_db(transaction=True)
def test_a_restart_catches_up_on_candles_stored_while_it_was_down(tmp_path, caplog):
    """runfeed stops; candles that cross the level are stored while it is down (a back-fill
    through ``services.candle_import_batch``); the next start fires exactly what they
    crossed, once, marked caught up, and logs one summary line; a further start adds none."""
    ticks = [(OPEN + 3 * i, 795.0 + (i % 3)) for i in range(100)]  # all below LEVEL
    price, close, once = make_alerts()
    path = recording(tmp_path / "s.jsonl", ticks)
    replay(path)
    assert AlertEvent.objects.count() == 0
    above = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0]  # bars 10 … 19 minutes after the open
    rows = []
    for k, up in enumerate(above):
        bar = OPEN + (10 + k) * 60
        p = LEVEL + 5 if up else LEVEL - 5
        rows.append(("NSE:SBIN-EQ", "1m", bar, p, p, p, p, 10.0, 12))
        rows += [("NSE:SBIN-EQ", "5s", bar + 5 * j, p, p, p, p, 1.0, 1) for j in range(12)]
    services.candle_import_batch(rows=rows)
    # independently: the price crosses at the first 5 s candle of an up bar after a down one;
    # the closes cross between consecutive closed bars (the last bar is not closed)
    prev = [0] + above
    want_price = [f"{price.id}@{OPEN + (10 + k) * 60}" for k in range(10) if above[k] and not prev[k]]
    closes = [0] * 5 + above[:-1]  # the replay's bars (minutes 0-4, below), then the closed ones
    times = [OPEN + m * 60 for m in range(5)] + [OPEN + (10 + k) * 60 for k in range(9)]
    want_close = [f"{close.id}@{times[i]}" for i in range(1, len(times)) if closes[i] and not closes[i - 1]]
    caplog.set_level("INFO", logger="market.feed")
    replay(path)
    assert events(price) == want_price and len(want_price) == 3
    assert events(close) == want_close and len(want_close) == 3
    assert events(once) == [want_price[0].replace(f"{price.id}@", f"{once.id}@")]
    assert set(AlertEvent.objects.values_list("caught_up", flat=True)) == {True}
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alerts: caught up")]
    assert lines == ["alerts: caught up 7 events for 3 alerts over [2026-11-20 03:49:00Z, 2026-11-20 04:04:55Z]"]
    before = list(AlertEvent.objects.order_by("id").values_list("id", "time", "value"))
    replay(path)
    assert list(AlertEvent.objects.order_by("id").values_list("id", "time", "value")) == before


@pytest.mark.django_db(transaction=True)
def test_a_webhook_leaves_right_after_its_event_is_stored_not_at_the_next_poll(tmp_path, monkeypatch):
    """The store that recorded an event wakes the deliverer once it has committed: with the
    safety-net poll pushed out to a minute, the POST still arrives well within a second of
    the event's stored time (``fired_at``), while the replay is still running."""
    from market.feed import runner

    monkeypatch.setattr(runner, "WEBHOOK_POLL_SECONDS", 60.0)
    arrivals: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            arrivals.append((time.time(), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        user = get_user_model().objects.create_user(username="ada", password="pw")
        a = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="crosses_above",
                                  right=LEVEL, trigger="once_per_bar",
                                  webhook=f"http://127.0.0.1:{server.server_port}/hook")
        ticks = [(OPEN + i, LEVEL - 1 if i < 2 else LEVEL + 1) for i in range(6)]  # crosses at the 3rd
        started = time.time()
        call_command("runfeed", source="replay", file=str(recording(tmp_path / "s.jsonl", ticks)), speed=1,
                     no_migrate=True)
        ended = time.time()
    finally:
        server.shutdown()
        server.server_close()
    [(arrived, body)] = arrivals
    assert body["id"] == f"{a.id}@{OPEN + 2}"
    assert arrived < ended - 1.0, (arrived - started, ended - started)  # during the run, not at its end
    assert arrived - body["fired_at"] < 1.0


# ------------------------------------------------------------------ a database outage

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("spill", [False, True], ids=["kept-and-retried", "spilled-and-rebuilt"])
def test_a_database_outage_loses_no_alert_event(tmp_path, monkeypatch, spill):
    """Stores fail for a third of the session (the candles kept and retried; or, past a tiny
    ``buffer_limit``, dropped and rebuilt from the tick journal): the events are those of an
    uninterrupted run, the price alerts' (evaluated on each tick) and the bar-close alerts'
    (evaluated on the candles a store writes: the failed stores' and the rebuild's)."""
    import asyncio

    from django.db import OperationalError

    from market.core.types import Tick
    from market.feed import runner
    from market.feed.journal import TickJournal

    price, close, _ = make_alerts()
    symbol, _ = services.symbol_register(ticker="NSE:SBIN-EQ", exchange="NSE")
    lease = runner.Lease("outage")
    lease.epoch = services.writer_claim(name="outage")
    journal = TickJournal(tmp_path / "journal", max_bytes=1 << 24)
    journal.open()
    pipeline = runner.build_pipeline("outage", live=False, ids={symbol.ticker: symbol.pk}, lease=lease,
                                     journal=journal)
    pipeline.buffer_limit = 5 if spill else 1_000_000
    real, down = services.candle_store_checkpointed, [False]

    def store(**kw):
        if down[0]:
            raise OperationalError("the database is down")
        return real(**kw)

    monkeypatch.setattr(services, "candle_store_checkpointed", store)
    ticks = prices(600)  # 30 min: 30 bars, several crossings of each kind during the outage

    async def run() -> None:
        await runner.alert_reload(pipeline.on_tick)
        pipeline.engine.register(symbol.ticker, "NSE")
        for n, (t, p) in enumerate(ticks):
            pipeline.add(Tick(symbol.ticker, t, p, float(1000 + 10 * n)))
            if n % 20 == 19:
                down[0] = 200 <= n < 400
                await pipeline.flush(force=True)
        down[0] = False
        await pipeline.flush(force=True)
        await pipeline.flush(force=True)

    asyncio.run(run())
    assert pipeline.store_failures >= 10 and pipeline.spills == (1 if spill else 0)
    assert not pipeline.spilled and pipeline.pending == 0
    want_close = expected_close_crosses(ticks, close.id)
    assert sum(OPEN + 600 <= int(e.split("@")[1]) < OPEN + 1200 for e in want_close) >= 2  # in the outage
    assert events(close) == want_close
    assert events(price) == expected_price_crosses(ticks, price.id)
