"""The Fyers catch-up queue and the live ticks held while a symbol catches up
(``market.vendors.fyers.catchup``), without a socket or a database."""

from __future__ import annotations

from types import SimpleNamespace

from market.conf import fyers_conf
from market.core.types import Tick
from market.vendors.fyers.catchup import CatchUp, Job, JobQueue
from market.vendors.fyers.ratelimit import RateLimiter


async def test_back_fills_run_before_queued_reconciliation():
    jobs = JobQueue()
    for i in range(3):
        jobs.put_nowait(Job(f"R{i}", 0, kind="reconcile"))
    jobs.put_nowait(Job("NEW", 0, kind="backfill"))
    jobs.put_nowait(Job("GAP", 0, kind="repair"))
    order = [(await jobs.get()).ticker for _ in range(jobs.qsize())]
    assert order == ["NEW", "GAP", "R0", "R1", "R2"]


class Ctx:
    def __init__(self) -> None:
        self.added: list[Tick] = []

    def add(self, tick: Tick) -> None:
        self.added.append(tick)


def test_ticks_wait_while_their_symbol_catches_up_and_go_in_in_order():
    ctx = Ctx()
    catchup = CatchUp(ctx, fyers_conf(), session=SimpleNamespace(), symbols={"A": object(), "B": object()},
                      limiter=RateLimiter(10, 200), layer=None)
    catchup.enqueue(Job("A", 0, kind="backfill"))
    ticks = [Tick("A", 100.0, 1.0), Tick("B", 101.0, 2.0), Tick("A", 102.0, 3.0), Tick("GONE", 103.0, 4.0)]
    for tick in ticks:
        catchup.take(tick)
    assert ctx.added == [ticks[1]] and catchup.held_count == 2 and catchup.unwanted == 1
    assert catchup.last_seen == {"B": 101.0}
    catchup.release("A")
    assert ctx.added == [ticks[1], ticks[0], ticks[2]] and catchup.held_count == 0
    assert catchup.last_seen == {"A": 102.0, "B": 101.0}
    catchup.enqueue(Job("B", 0))
    catchup.take(Tick("B", 104.0, 5.0))
    catchup.release("B", drop=True)  # B stopped streaming: its held ticks are dropped
    assert len(ctx.added) == 3 and catchup.held_count == 0
