"""The single-writer guard on whichever database this run uses (SQLite file lock or a
PostgreSQL advisory lock)."""

from __future__ import annotations

import asyncio

import pytest

from market.feed.locks import WriterLock, WriterLockBusy


@pytest.mark.django_db(transaction=True)
async def test_second_writer_refuses_then_standby_takes_over_when_the_first_goes():
    first, second = WriterLock("simulated"), WriterLock("simulated")
    try:
        assert await first.acquire(standby=False)
        with pytest.raises(WriterLockBusy, match="already writing 'simulated'"):
            await second.acquire(standby=False)
        waiting = asyncio.create_task(second.acquire(standby=True, poll=0.05))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # still a standby while the first holds the lock
        await asyncio.to_thread(first.release)
        assert await asyncio.wait_for(waiting, timeout=5) is True
    finally:
        first.release()
        second.release()


@pytest.mark.django_db(transaction=True)
async def test_locks_are_per_source_and_a_stopped_standby_gives_up():
    a, b, c = WriterLock("simulated"), WriterLock("replay"), WriterLock("simulated")
    try:
        assert await a.acquire(standby=False)
        assert await b.acquire(standby=False)  # another source writes independently
        stop = asyncio.Event()
        task = asyncio.create_task(c.acquire(standby=True, poll=0.05, stop=stop))
        await asyncio.sleep(0.1)
        stop.set()
        assert await asyncio.wait_for(task, timeout=2) is False
    finally:
        for lock in (a, b, c):
            lock.release()
