"""What the pipeline does when the database or the channel layer fails: nothing is lost."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.db import database_sync_to_async
from channels_redis.pubsub import RedisPubSubChannelLayer

from market import services
from market.live.broadcast import candles_publish
from market.core.engine import CandleEngine
from market.core.sessions import SessionBook
from market.core.timeframes import TimeframePlan
from market.core.types import CandleUpdate, Tick
from market.models import Candle
from market.feed.pipeline import Pipeline
from market.vendors.fyers import messages as fyers_messages

T0 = 1_795_000_000


def engine() -> CandleEngine:
    e = CandleEngine(TimeframePlan.build(["5s", "1m"]).stored, SessionBook())
    e.register("DEMO:X", "DEMO")
    return e


async def test_failed_write_keeps_candles_and_the_next_flush_writes_them(caplog):
    written: list[list[CandleUpdate]] = []
    published: list[list[CandleUpdate]] = []
    attempts = 0

    async def store(updates, checkpoint=None):
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database is down")
        written.append(updates)
        return len(updates)

    async def publish(updates):
        published.append(updates)
        return len(updates)

    p = Pipeline(engine(), store=store, publish=publish, source="test")
    p.add(Tick("DEMO:X", T0, 10.0, None, None, 1.0))
    with caplog.at_level(logging.ERROR, logger="market.feed"):
        assert await p.flush() == 0
    assert "kept (2 pending), next try in 0.5s" in caplog.text
    assert p.pending == 2 and p.store_failures == 1 and p.store_failing_since is not None
    assert len(published) == 1  # open charts stay live while the database is down
    p.add(Tick("DEMO:X", T0 + 1, 11.0, None, None, 2.0))
    assert await p.flush() == 0 and attempts == 1  # backing off: not tried again yet
    assert len(published) == 2
    await asyncio.sleep(0.55)
    assert await p.flush() == 2
    (batch,) = written
    assert {(u.timeframe, u.candle.close, u.candle.volume, u.candle.ticks) for u in batch} == {
        ("5s", 11.0, 3.0, 2), ("1m", 11.0, 3.0, 2)
    }
    assert p.pending == 0 and p.store_failing_since is None


async def test_each_write_carries_the_states_and_position_of_the_same_instant():
    checkpoints = []

    async def store(updates, checkpoint):
        checkpoints.append((len(updates), checkpoint))
        return len(updates)

    async def publish(updates):
        return len(updates)

    p = Pipeline(engine(), store=store, publish=publish, source="test")
    p.position = ("file", 1)
    p.add(Tick("DEMO:X", T0, 10.0, None, None, 1.0))
    await p.flush()
    p.position = ("file", 2)
    await p.flush()  # nothing new but the position: still stored
    await p.flush()  # nothing at all: no write
    (n1, c1), (n2, c2) = checkpoints
    assert n1 == 2 and c1.position == ("file", 1) and set(c1.states) == {"DEMO:X"}
    assert c1.states["DEMO:X"]["ohlcv"][3] == 10.0
    assert n2 == 0 and c2.position == ("file", 2) and c2.states == {}


async def test_a_fenced_writer_stops_storing_and_stops_its_flusher():
    from market.core.types import WriterFenced

    async def store(updates, checkpoint):
        raise WriterFenced("another runfeed took over")

    async def publish(updates):
        return len(updates)

    p = Pipeline(engine(), store=store, publish=publish, source="test")
    p.add(Tick("DEMO:X", T0, 10.0, None, None, 1.0))
    stop = asyncio.Event()
    await asyncio.wait_for(p.run_flusher(0.01, stop), timeout=5)
    assert p.fenced and stop.is_set() and p.written == 0


async def test_a_failing_parser_input_never_raises():
    async def noop(updates, checkpoint=None):
        return len(updates)

    p = Pipeline(engine(), store=noop, publish=noop, source="test", parser=fyers_messages.parse)
    for bad in (None, 42, "x", [], {"type": "sf"}, {"type": "sf", "symbol": "DEMO:X", "ltp": float("inf")}):
        p.parse(bad)
    assert p.messages == 6
    assert sum(p.parse_rejects.values()) == 6


@pytest.mark.django_db(transaction=True)
async def test_dead_redis_layer_loses_no_candle(make_symbol, caplog):
    """A real pub/sub layer pointed at a closed port: publishing fails, the write stands."""
    symbol = await database_sync_to_async(make_symbol)("DEMO:X", "DEMO")
    layer = RedisPubSubChannelLayer(hosts=[{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 0.5}])

    async def store(updates, checkpoint=None):
        return await database_sync_to_async(services.candle_upsert_many)(
            updates=updates, symbol_ids={"DEMO:X": symbol.pk})

    async def publish(updates):
        return await asyncio.wait_for(candles_publish(layer, updates), timeout=5)

    p = Pipeline(engine(), store=store, publish=publish, source="test")
    p.add(Tick("DEMO:X", T0, 10.0, None, None, 1.0))
    with caplog.at_level(logging.ERROR, logger="market.feed"):
        assert await p.flush() == 2
    assert p.publish_failures == 1 and p.pending == 0
    assert "publishing 2 candles failed" in caplog.text
    count = await database_sync_to_async(Candle.objects.filter(symbol=symbol).count)()
    assert count == 2


async def test_a_tick_the_engine_cannot_handle_is_counted_not_raised():
    async def noop(updates, checkpoint=None):
        return len(updates)

    p = Pipeline(engine(), store=noop, publish=noop, source="test")
    assert p.add(Tick("DEMO:X", float("nan"), 10.0)) is not None
    assert p.add(Tick("DEMO:X", T0, 10.0)) is None
    assert p.engine.accepted == 1
    assert sum(p.rejected().values()) == 1


async def test_conflated_updates_are_sent_at_a_later_flush_even_without_new_ticks():
    published: list[list[CandleUpdate]] = []

    async def store(updates, checkpoint=None):
        return len(updates)

    async def publish(updates):
        published.append(list(updates))
        return len(updates)

    from market.core.conflate import Conflator

    p = Pipeline(engine(), store=store, publish=publish, source="test", conflator=Conflator(5))
    p.add(Tick("DEMO:X", T0, 10.0, None, None, 1.0))
    await p.flush()
    p.add(Tick("DEMO:X", T0 + 1, 11.0, None, None, 1.0))
    await p.flush()  # within 0.2 s of the last send: held
    assert [u.candle.close for u in published[-1]] == [10.0, 10.0]
    await asyncio.sleep(0.25)
    await p.flush()  # nothing new, but the held state is now due
    assert sorted((u.timeframe, u.candle.close) for u in published[-1]) == [("1m", 11.0), ("5s", 11.0)]


async def test_the_summary_reports_the_slowest_write():
    """bench/replay.py --sustained reads the write lag from this field."""
    delays = iter([0.05, 0.01])

    async def store(updates, checkpoint=None):
        await asyncio.sleep(next(delays))
        return len(updates)

    async def publish(updates):
        return len(updates)

    p = Pipeline(engine(), store=store, publish=publish, source="test")
    for i in range(2):
        p.add(Tick("DEMO:X", T0 + i, 10.0 + i, None, None, 1.0))
        await p.flush()
    assert 0.05 <= p.max_write_seconds < 1.0 and p.last_write_seconds < p.max_write_seconds
    assert f"slowest_write={p.max_write_seconds:.2f}s" in p.summary()


async def test_past_the_buffer_limit_a_failing_write_spills_to_the_journal_and_rebuilds_after(tmp_path, caplog):
    from market.feed.journal import TickJournal

    journal = TickJournal(tmp_path / "j", max_bytes=1 << 20)
    journal.open()
    down = True
    stored: list[tuple[int, dict]] = []
    rebuilt: list[dict] = []

    async def store(updates, checkpoint):
        if down:
            raise ConnectionError("database is down")
        stored.append((len(updates), checkpoint.position))
        return len(updates)

    async def rebuild(upto, extra):
        if down:
            raise ConnectionError("database is down")
        rebuilt.append(upto)
        return 7

    async def publish(updates):
        return len(updates)

    p = Pipeline(engine(), store=store, publish=publish, source="test", journal=journal, rebuild=rebuild,
                 buffer_limit=3)
    p.resume({"journal": journal.id, "seq": 0})  # a checkpoint before any tick
    with caplog.at_level(logging.WARNING, logger="market.feed"):
        for i in range(4):  # a new 5 s candle each time: the pending candles grow
            p.add(Tick("DEMO:X", T0 + 5 * i, 10.0 + i, None, None, 1.0))
            await p.flush(force=True)
        assert p.spilled and p.pending == 0 and p.spills == 1
        assert 0 < p.max_pending <= 3
        assert "dropped from memory" in caplog.text
        p.add(Tick("DEMO:X", T0 + 25, 20.0, None, None, 1.0))
        await p.flush(force=True)  # still down: nothing kept, nothing lost (the journal has it)
        assert p.pending == 0 and rebuilt == []
        down = False
        assert await p.flush(force=True) == 7
    assert rebuilt == [{"journal": journal.id, "seq": 5}] and not p.spilled and stored == []
    assert [s for s, _ in journal.read(0)] == [1, 2, 3, 4, 5]
    p.add(Tick("DEMO:X", T0 + 30, 21.0, None, None, 1.0))
    await p.flush(force=True)  # back to normal writes, after the rebuilt position
    assert stored and stored[-1][1] == {"journal": journal.id, "seq": 6}


async def test_publishing_does_not_wait_for_the_write():
    """A slow write (a catch-up batch, a slow database) does not hold the new candles back
    from the browsers: the flush publishes while the write is still in flight."""
    write_may_end = asyncio.Event()
    order = []

    async def store(updates, checkpoint=None):
        order.append("store started")
        await asyncio.wait_for(write_may_end.wait(), timeout=5)  # published meanwhile, or this times out
        order.append("stored")
        return len(updates)

    async def publish(updates):
        order.append("published")
        write_may_end.set()
        return len(updates)

    p = Pipeline(engine(), store=store, publish=publish, source="test")
    p.add(Tick("DEMO:X", T0, 10.0, None, None, 1.0))
    written = await p.flush()  # before: the write timed out waiting, was counted failed, then published
    assert p.store_failures == 0 and order.index("published") < order.index("stored")
    assert written == p.written > 0 and p.published > 0 and p.pending == 0
