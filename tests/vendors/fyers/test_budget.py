"""One REST budget and one symbol budget per Fyers app, shared by every process, in both
stores (the database, Redis): clients with their own limiter and store connection (as
separate processes have) against the loopback server, which counts arrivals the way
Fyers does and answers 429 past a limit."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid

import pytest
from django.test import override_settings

from market.budget import DatabaseStore, MemoryStore, RedisStore, shared_store
from market.conf import fyers_conf
from market.core.budget import DayExhausted, Limits, day_number, day_start, window_wait
from market.core.timeframes import Timeframe
from market.vendors.fyers.history import BudgetExhausted, HistoryClient
from market.feed.runner import run_feed
from market.vendors.fyers.ratelimit import MARGIN, RateLimiter, shared_limiter
from tests.conftest import REDIS_URL
from tests.vendors.fyers.conftest import CLIENT_ID
from tests.vendors.fyers.live import TOKENS, Market, db, eventually, make_symbols

pytestmark = pytest.mark.django_db(transaction=True)

TF1M = Timeframe.parse("1m")


def redis_store() -> RedisStore:
    store = RedisStore(REDIS_URL)
    try:
        store.redis.ping()
    except Exception:  # noqa: BLE001
        pytest.skip(f"no Redis at {REDIS_URL}")
    return store


@pytest.fixture(params=["database", "redis"])
def new_store(request):
    """A factory: each call is a new store object (its own connection), as another process has."""
    if request.param == "redis":
        redis_store()
        return lambda: RedisStore(REDIS_URL)
    return DatabaseStore


@pytest.fixture
def app() -> str:
    return f"TEST{uuid.uuid4().hex[:8]}-100"


def test_window_rules():
    limits = Limits(10, 200, 1000)
    assert window_wait([], 5.0, limits) == 0.0
    calls = [float(i) / 10 for i in range(10)]  # ten in the last second
    assert window_wait(calls, 0.95, limits) == pytest.approx(0.05)  # the first leaves at 1.0
    assert window_wait(calls, 1.0, limits) == 0.0
    minute = [i * 0.3 for i in range(200)]
    assert window_wait(minute, 60.0, limits) == pytest.approx(0.0)
    assert window_wait(minute, 59.9, limits) == pytest.approx(0.1)
    start = day_start(day_number(1_764_750_000))
    assert time.gmtime(start)[3:5] == (18, 30)  # the budget day starts at 00:00 IST
    assert day_number(start) == day_number(start + 86399) == day_number(start - 1) + 1
    with pytest.raises(ValueError):
        Limits(0, 200, 1)


def test_threads_with_their_own_clients_never_exceed_the_limits_the_server_counts(http, new_store, app):
    """Three clients, each with its own limiter and store connection, 12 requests each:
    the server never sees more than 10 in a second or 20 in its (shortened) minute."""
    http.limits = [(10, 1.0), (20, 3.0)]
    limits = Limits(10, 20, 10_000, second=1 + MARGIN, minute=3 + MARGIN)  # the shared margin, a 3 s "minute"
    errors: list[BaseException] = []

    def run() -> None:
        limiter = RateLimiter(limits=limits, store=new_store(), app=app, clock=time.time)
        client = HistoryClient(client_id=app, access_token="TOKEN", api_base=http.base, limiter=limiter)
        try:
            for i in range(12):
                client.request("NSE:SBIN-EQ", TF1M, 1_700_000_000 + i, 1_700_000_060 + i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert http.breaches == 0
    assert len(http.arrivals) == 36
    assert http.most_in(1.0) <= 10 and http.most_in(3.0) <= 20
    assert time.monotonic() - started >= 3.0  # the third 3 s window had to be waited for
    assert new_store().used_today(app) == 36


def test_the_daily_cap_stops_requests_with_one_clear_log_line(http, new_store, app, caplog):
    caplog.set_level(logging.ERROR, "market.fyers")
    limits = Limits(10, 200, 5)
    clients = [HistoryClient(client_id=app, access_token="TOKEN", api_base=http.base,
                             limiter=RateLimiter(limits=limits, store=new_store(), app=app, clock=time.time))
               for _ in range(2)]
    for i in range(5):
        clients[i % 2].request("NSE:SBIN-EQ", TF1M, 1_700_000_000, 1_700_000_060)
    for client in clients + clients:
        with pytest.raises(BudgetExhausted, match="daily REST budget used up"):
            client.request("NSE:SBIN-EQ", TF1M, 1_700_000_000, 1_700_000_060)
    assert len(http.arrivals) == 5  # nothing reached the server past the cap
    lines = [r.getMessage() for r in caplog.records if "daily REST budget" in r.getMessage()]
    assert len(lines) == 2  # once per process (limiter), not once per refused request
    assert f"the daily REST budget of app {app} is used up (5 of 5 requests today" in lines[0]
    assert "no Fyers REST request until" in lines[0] and "UTC" in lines[0]
    assert new_store().used_today(app) == 5


def test_a_429_pauses_every_process_of_the_app(new_store, app):
    a, b = new_store(), new_store()
    limits = Limits(10, 200, 100)
    assert a.take(app, limits, "one") == 0.0
    a.block(app, 1.5)
    wait = b.take(app, limits, "two")
    assert 1.0 < wait <= 1.5


def test_symbol_slots_are_shared_released_and_expire(new_store, app):
    a, b, c = new_store(), new_store(), new_store()
    assert a.claim(app, "shard0", 3, 5, 30) == 5          # room 5: holds 3
    assert b.claim(app, "shard1", 4, 5, 30) == 2          # only 2 left for shard 1
    assert c.held(app) == 5
    assert a.claim(app, "shard0", 1, 5, 30) == 3          # shard 0 shrinks: renewing is claiming again
    assert c.held(app) == 3
    a.release(app, "shard0")
    assert b.claim(app, "shard1", 4, 5, 30) == 5 and c.held(app) == 4
    assert c.claim(app, "killed", 1, 5, 0.3) == 1         # a process that dies without releasing
    assert a.held(app) == 5
    time.sleep(0.4)
    assert a.held(app) == 4 and a.claim(app, "shard0", 1, 5, 30) == 1


def test_memory_store_is_the_same_budget_in_one_process():
    clock = [100.0]
    store = MemoryStore(clock=lambda: clock[0])
    limits = Limits(1, 3, 4, second=1.0, minute=60.0)
    assert store.take("x", limits, "a") == 0.0
    assert store.take("x", limits, "b") == pytest.approx(1.0)
    clock[0] = 100.5
    store.finish("x", "a")  # "a" was answered at 100.5: it counts from then
    clock[0] = 101.0
    assert store.take("x", limits, "b") == pytest.approx(0.5)
    for t, ticket in ((101.5, "b"), (200.0, "c"), (300.0, "d")):
        clock[0] = t
        assert store.take("x", limits, ticket) == 0.0
    clock[0] = 400.0
    with pytest.raises(DayExhausted):
        store.take("x", limits, "e")
    assert store.used_today("x") == 4


def test_an_answered_call_counts_from_its_answer_in_every_store(new_store, app):
    """However late a request reaches Fyers, it did so before its answer: counting it from
    then keeps the next calls a full window after it."""
    store = new_store()
    limits = Limits(1, 100, 1000, second=2.0, minute=60.0)
    assert store.take(app, limits, "first") == 0.0
    time.sleep(1.0)
    answered = time.monotonic()
    store.finish(app, "first")  # answered 1 s later
    wait = store.take(app, limits, "second")
    took = time.monotonic() - answered  # a loaded machine's database calls take their time
    # two seconds from the answer (counted from the start it would be at most 1 s less)
    assert 2.0 - took - 0.05 < wait <= 2.0


# -- visible in /metrics and the admin; the symbol cap across processes (the live feed) -----

def test_todays_count_is_in_metrics_and_the_admin(fyers_settings, http, admin_client):
    conf = fyers_conf()
    store = shared_store(conf.budget_store)
    before = store.used_today(CLIENT_ID)
    client = HistoryClient(client_id=CLIENT_ID, access_token="TOKEN", api_base=http.base, limiter=shared_limiter(conf))
    for _ in range(3):
        client.request("NSE:SBIN-EQ", TF1M, 1_700_000_000, 1_700_000_060)
    text = admin_client.get("/metrics").content.decode()
    assert f'tickchart_rest_requests_today{{app="{CLIENT_ID}",source="fyers"}} {float(before + 3)}' in text
    assert f'tickchart_rest_requests_day_limit{{app="{CLIENT_ID}",source="fyers"}} 100000.0' in text
    page = admin_client.get("/admin/market/restbudget/").content.decode()
    assert f"Fyers REST budget of {CLIENT_ID}: {before + 3:,} of 100,000 requests today (IST)" in page
    assert f"({store.name})" in page


async def test_another_process_holding_slots_shrinks_this_feeds_share_of_the_cap(http, ws, fyers_settings, token,
                                                                                   caplog):
    """The 5,000-symbol cap is the API key's: with another process (a shard) holding 2 of 3
    slots, the live feed subscribes 1 symbol and names the others; when that process exits,
    the feed takes the freed slots, and it gives them all back when it stops."""
    caplog.set_level(logging.WARNING, "market")
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ", "NSE:TCS-EQ", "NSE:INFY-EQ")
    Market(ws)
    with override_settings(FYERS={**fyers_settings, "WS_URL": ws.url, "MAX_SYMBOLS": 3}):
        store = shared_store(fyers_conf().budget_store)
        await db(store.release, CLIENT_ID, "other-shard")
        assert await db(store.claim, CLIENT_ID, "other-shard", 2, 3, 30) == 3
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)  # standby: another test run may hold the lock
        await asyncio.sleep(1.0)
        assert [len(r) for r in ws.subscribed] == [1]
        assert await db(store.held, CLIENT_ID) == 3
        await db(store.release, CLIENT_ID, "other-shard")  # the other process exits
        await eventually(lambda: sum(len(r) for r in ws.subscribed) == 3, 5)
        assert await db(store.claim, CLIENT_ID, "other-shard", 2, 3, 30) == 0  # now it finds no room
        stop.set()
        await asyncio.wait_for(task, 30)
    assert await db(store.held, CLIENT_ID) == 0  # released at exit
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert f"other processes of app {CLIENT_ID} hold 2 of its 3 symbol slots; this one may stream 1" in text
    assert "exceed the 1-symbol limit; not streamed:" in text


CHILD = """
import sys, time
from market.budget import RedisStore
from market.core.budget import Limits
from market.core.timeframes import Timeframe
from market.vendors.fyers.history import HistoryClient
from market.vendors.fyers.ratelimit import MARGIN, RateLimiter

url, base, app, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
limits = Limits(10, 200, 100_000, second=1.0 + MARGIN, minute=60.0 + MARGIN)  # what shared_limiter uses
limiter = RateLimiter(limits=limits, store=RedisStore(url), app=app, clock=time.time)
client = HistoryClient(client_id=app, access_token="TOKEN", api_base=base, limiter=limiter)
tf = Timeframe.parse("1m")
for i in range(count):
    client.request("NSE:SBIN-EQ", tf, 1_700_000_000 + i, 1_700_000_060 + i)
print(limiter.calls, limiter.throttled)
"""


def test_two_processes_share_fyers_real_limits_through_redis(http, app):
    """Two OS processes, 105 requests each, against a server enforcing Fyers' 10/s and
    200/min: no 429, and the 201st request waited for the first minute to pass."""
    import subprocess
    import sys

    from tests.servers import ROOT

    redis_store()
    http.limits = [(10, 1.0), (200, 60.0)]
    day = day_number(time.time())
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, REDIS_URL, http.base, app, "105"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o.split() for o, _ in outs] == [["105", "0"], ["105", "0"]]
    assert http.breaches == 0 and len(http.arrivals) == 210
    assert http.most_in(1.0) <= 10 and http.most_in(60.0) <= 200
    arrivals = sorted(http.arrivals)
    assert arrivals[200] - arrivals[0] >= 60.0
    if day_number(time.time()) == day:
        assert RedisStore(REDIS_URL).used_today(app) == 210
    else:  # the run crossed midnight IST: the new day counts only what came after it
        assert RedisStore(REDIS_URL).used_today(app) < 210


async def test_two_shards_share_the_api_keys_symbol_cap(http, ws, fyers_settings, token, monkeypatch, caplog):
    """runfeed ``--shard 1/2`` and ``--shard 0/2`` (two feeds, two SDK sockets) with five
    recorded symbols and a cap of 3 per API key: shard 1 takes its 2, shard 0 gets the one
    slot left, never more in all; when shard 1 stops, shard 0 takes the freed slots."""
    from market.core.shards import Shard
    from tests.vendors.fyers import live

    caplog.set_level(logging.WARNING, "market")
    extra = {"NSE:RELIANCE-EQ": "10100000002885", "NSE:ITC-EQ": "10100000001660"}
    for ticker, fytoken in extra.items():
        monkeypatch.setitem(live.TOKENS, ticker, fytoken)
    http.tokens.update(live.TOKENS)
    # shard 1 of 2 owns SBIN and INFY; shard 0 owns TCS, RELIANCE and ITC
    await db(make_symbols, "NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:TCS-EQ", "NSE:RELIANCE-EQ", "NSE:ITC-EQ")
    Market(ws)

    def held() -> int:  # what the server has subscribed, both connections together
        return sum(len(r) for r in ws.subscribed) - sum(len(r) for r in ws.unsubscribed)

    with override_settings(FYERS={**fyers_settings, "WS_URL": ws.url, "MAX_SYMBOLS": 3}):
        stops = [asyncio.Event(), asyncio.Event()]
        one = asyncio.create_task(run_feed("fyers", stops[1], standby=True, shard=Shard(1, 2)))
        await eventually(lambda: held() == 2, 40)
        zero = asyncio.create_task(run_feed("fyers", stops[0], standby=True, shard=Shard(0, 2)))
        await eventually(lambda: len(ws.subscribed) == 2, 40)
        await asyncio.sleep(1.5)  # a few refresh rounds: nobody grows past the cap
        assert held() == 3 and [len(r) for r in ws.subscribed] == [2, 1]
        stops[1].set()
        await asyncio.wait_for(one, 30)
        await eventually(lambda: sum(len(r) for r in ws.subscribed[2:]) == 2, 10)  # shard 0 takes the 2 freed
        stops[0].set()
        await asyncio.wait_for(zero, 30)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "hold 2 of its 3 symbol slots; this one may stream 1" in text
    store = shared_store(fyers_conf().budget_store)
    assert await db(store.held, CLIENT_ID) == 0
