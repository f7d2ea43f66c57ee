"""Snapshots from memory (market.live.snapshots, issue 17) are the database's, frame for frame.

A first socket's subscribe reads the database and seeds the process's ring; the candle
events published after that (grown bars, new bars, revisions, a filled gap) keep it up to
date; a second socket is then answered from memory, and a third, with the memory off, from
the database: their snapshots must be equal. Runs on either path (SQLite + in-process
layer, PostgreSQL + Redis).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import override_settings

from market import selectors
from market.conf import live_cache_conf
from market.core.types import Candle
from market.live.broadcast import candles_publish, event_group
from market.live.relay import relay_for
from market.live.snapshots import pooled, snapshots_for
from market.web import consumers
from tests.web.test_consumers import TICKER, T0, alpha, candle, recv, store, subscribe, upd, ws  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_consumer_db_connections():
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


@pytest.fixture
def reads(monkeypatch):
    """Every database snapshot read the consumers make, as (ticker, tf code, since)."""
    seen: list[tuple[str, str, int | None]] = []
    original = consumers._load_snapshot

    def counted(ticker, tf, since):
        seen.append((ticker, tf.code, since))
        return original(ticker, tf, since)

    monkeypatch.setattr(consumers, "_load_snapshot", counted)
    return seen


async def write(symbol, *candles: Candle, revised: bool = False) -> None:
    """As runfeed does: write, then publish."""
    await database_sync_to_async(store)(symbol, *(upd(c) for c in candles))
    await candles_publish(get_channel_layer(), [upd(c) for c in candles], revised=revised)


async def from_database(**extra) -> dict:
    with override_settings(TICKCHART_SNAPSHOT_CACHE_SECONDS=0):
        async with ws() as comm:
            return await subscribe(comm, **extra)


async def settle(comm) -> None:
    """Everything published so far has reached this process's relay (a ping's pong comes after)."""
    while not await comm.receive_nothing(timeout=0.3):
        await recv(comm)


async def test_memory_snapshot_equals_the_database_one_after_updates_revisions_and_gaps(alpha, reads):
    async with ws() as first:
        await subscribe(first)  # reads the database: the ring is seeded
        assert reads == [(TICKER, "1m", None)]
        await write(alpha, candle(6))  # the first candle after the seed
        await write(alpha, candle(6, ticks=99, close=7.0))  # grown
        await write(alpha, candle(9))  # leaves a gap at 7, 8
        await write(alpha, candle(8, ticks=3), revised=True)  # gap repair fills one
        await write(alpha, candle(2, ticks=1, close=1.5), revised=True)  # a correction shrinks a bar
        await settle(first)
        async with ws() as second:
            memory = await subscribe(second)
            memory_since = await subscribe(second, since=T0 + 120)
        assert reads == [(TICKER, "1m", None)]  # both answered from memory
        database = await from_database()
        database_since = await from_database(since=T0 + 120)
    assert len(reads) == 3
    assert memory == database
    assert memory_since == database_since
    times = [c["time"] for c in memory["candles"]]
    assert times == [T0 + 60 * i for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]
    assert memory["candles"][2]["close"] == 1.5 and memory["candles"][6]["ticks"] == 99


async def test_a_memory_snapshot_built_once_follows_later_updates(alpha, reads):
    """The snapshot frame is serialised once per state of the ring, not once per socket."""
    async with ws() as first:
        await subscribe(first)
        async with ws() as second:
            before = await subscribe(second)
        await write(alpha, candle(6))
        await settle(first)
        async with ws() as third:
            after = await subscribe(third)
        assert len(reads) == 1
        assert after["candles"][-1] == candle(6).as_dict() and before["candles"][-1] == candle(5).as_dict()
        assert after == await from_database()


async def test_candle_published_while_the_seed_is_read_is_in_the_next_memory_snapshot(alpha, monkeypatch):
    """Written and published between the first subscribe's join and its read: the ring (seeded
    by that read, then the events seen meanwhile) has it, as the database does."""
    from asgiref.sync import async_to_sync

    original = consumers._load_snapshot
    layer = get_channel_layer()
    grown = candle(5, ticks=500, close=55.0)

    def racing(ticker, tf, since):
        loaded = original(ticker, tf, since)  # read first: the event arrives after the read
        store(alpha, upd(grown))
        async_to_sync(candles_publish)(layer, [upd(grown)])
        return loaded

    monkeypatch.setattr(consumers, "_load_snapshot", racing)
    async with ws() as first:
        snap = await subscribe(first)
        assert snap["candles"][-1] == candle(5).as_dict()  # the read was before the write
        assert (await recv(first))["candle"] == grown.as_dict()  # then live
        monkeypatch.setattr(consumers, "_load_snapshot", original)
        async with ws() as second:
            memory = await subscribe(second)
        assert memory["candles"][-1] == grown.as_dict()
        assert memory == await from_database()


async def test_the_ring_goes_when_the_last_socket_leaves(alpha, reads):
    """Nobody here watches the stream: its events are no longer received, so the next
    subscribe reads the database (a write published to nobody is seen)."""
    async with ws() as comm:
        await subscribe(comm)
    await database_sync_to_async(store)(alpha, upd(candle(7)))  # not published: nobody would hear it
    async with ws() as comm:
        snap = await subscribe(comm)
    assert snap["candles"][-1] == candle(7).as_dict()
    assert len(reads) == 2


async def test_a_layer_loss_drops_every_ring(alpha, reads):
    async with ws() as comm:
        await subscribe(comm)
        await database_sync_to_async(store)(alpha, upd(candle(7)))  # its event "lost"
        snapshots_for(relay_for(get_channel_layer(), event_group)).lost()
        async with ws() as other:
            snap = await subscribe(other)
    assert snap["candles"][-1] == candle(7).as_dict()
    assert len(reads) == 2


async def test_a_since_older_than_the_ring_reads_the_database(alpha, reads, settings):
    settings.MARKET = {**settings.MARKET, "HISTORY_LIMIT": 3}
    async with ws() as comm:
        newest = await subscribe(comm)  # the ring: the newest 3, from T0 + 180
        assert [c["time"] for c in newest["candles"]] == [T0 + 180, T0 + 240, T0 + 300]
        covered = await subscribe(comm, since=T0 + 240)
        older = await subscribe(comm, since=T0 + 60)
    assert covered["candles"] == [candle(4).as_dict(), candle(5).as_dict()]
    assert [c["time"] for c in older["candles"]] == [T0 + 60 * i for i in range(1, 6)]
    assert reads == [(TICKER, "1m", None), (TICKER, "1m", T0 + 60)]


async def test_a_ring_older_than_the_snapshot_ttl_is_read_again(alpha, reads):
    with override_settings(TICKCHART_SNAPSHOT_CACHE_SECONDS=0.2):
        async with ws() as comm:
            await subscribe(comm)
            await database_sync_to_async(store)(alpha, upd(candle(7)))  # an import: nothing published
            assert (await subscribe(comm))["candles"][-1] == candle(5).as_dict()  # within the TTL
            import asyncio
            await asyncio.sleep(0.3)
            assert (await subscribe(comm))["candles"][-1] == candle(7).as_dict()
    assert len(reads) == 2


async def test_derived_timeframes_and_studies_still_read_the_database(alpha, reads):
    async with ws() as comm:
        await subscribe(comm, tf="2m")
        await subscribe(comm, tf="2m")
    assert reads == [(TICKER, "2m", None), (TICKER, "2m", None)]


@pytest.mark.parametrize("value", ["-1", "soon", float("nan")])
def test_a_bad_cache_setting_is_a_clear_error(value):
    with override_settings(TICKCHART_SNAPSHOT_CACHE_SECONDS=value):
        with pytest.raises(ImproperlyConfigured, match="TICKCHART_SNAPSHOT_CACHE_SECONDS"):
            live_cache_conf()
    with override_settings(TICKCHART_LOOKUP_CACHE_SECONDS=value):
        with pytest.raises(ImproperlyConfigured, match="TICKCHART_LOOKUP_CACHE_SECONDS"):
            live_cache_conf()


async def test_a_pooled_read_closes_its_threads_connection(alpha):
    """Else each pool thread keeps a PostgreSQL connection open (CONN_MAX_AGE)."""
    if connections["default"].vendor == "sqlite" and connections["default"].is_in_memory_db():
        pytest.skip("an in-memory SQLite test database is never closed")
    seen = []

    def read():
        seen.append((threading.get_ident(), connections["default"]))
        return selectors.feed_state_list()

    for _ in range(3):
        await pooled(read)
    assert seen and all(wrapper.connection is None for _, wrapper in seen)
    assert threading.get_ident() not in {ident for ident, _ in seen}


async def test_a_burst_of_pooled_reads_reuses_connections_and_closes_them_all_after(alpha):
    """A storm's reads: a thread keeps its connection while more reads wait (one connect per
    thread, not per read), and once the burst is done no thread holds one."""
    if connections["default"].vendor == "sqlite" and connections["default"].is_in_memory_db():
        pytest.skip("an in-memory SQLite test database is never closed")
    opened: list[int] = []
    wrappers = []

    def read():
        wrapper = connections["default"]
        if wrapper.connection is None:
            opened.append(threading.get_ident())
        wrappers.append(wrapper)
        time.sleep(0.002)
        return selectors.feed_state_list()

    await asyncio.gather(*(pooled(read) for _ in range(200)))
    assert len(wrappers) == 200
    assert len(opened) < 100, f"{len(opened)} connects for 200 reads"
    assert all(w.connection is None for w in wrappers)  # every thread's closed after the last read
    from market.live import snapshots

    assert snapshots._queued == 0

    # A cancelled read that never started is not counted as waiting.
    gate = threading.Event()
    blockers = [asyncio.ensure_future(pooled(gate.wait, 5)) for _ in range(40)]
    await asyncio.sleep(0.1)
    extra = asyncio.ensure_future(pooled(read))
    await asyncio.sleep(0.05)
    extra.cancel()
    gate.set()
    await asyncio.gather(*blockers)
    await asyncio.gather(extra, return_exceptions=True)
    assert snapshots._queued == 0
