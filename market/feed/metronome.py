"""A live-like source whose every tick is a pure function of its number (tests, benchmarks).

Tick ``k`` is at exchange time ``k / RATE`` (a global grid, so any run can be recomputed),
for symbol ``k % len(SYMBOLS)``, with a price and a cumulative day volume computed from
``k`` alone. It streams in real time like a broker, and after a restart it goes on after
the last tick the tick journal kept (``ctx.resume_tick``), catching up at once: so the
candles of a run killed any number of times can be compared with a direct computation over
the same ticks (``tests/feed/test_journal_crash.py``). Without a journaled tick it starts
at the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from market.core.types import Tick
from market.feed.base import Feed

logger = logging.getLogger("market.feed")

SYMBOLS = tuple(f"METRO:S{i}" for i in range(6))
RATE = 50          # ticks per second over all symbols
STEP_SECONDS = 0.02
DAY_TICKS = 86400 * RATE


def metronome_tick(k: int) -> Tick:
    """Tick number ``k``."""
    n = len(SYMBOLS)
    i = k % n
    price = 100.0 + 10 * i + 5 * math.sin(k / 997) + ((k * 2654435761) % 97) / 100
    day_start = (k // DAY_TICKS) * DAY_TICKS
    volume = 10 * ((k - day_start) // n) + k % 7  # rises by at least 4 per tick of a symbol
    t = k / RATE
    return Tick(SYMBOLS[i], t, round(round(price / 0.05) * 0.05, 2), float(volume), t)


class MetronomeFeed(Feed):
    live = True

    async def run(self, stop: asyncio.Event) -> None:
        ctx = self.ctx
        for ticker in SYMBOLS:
            await ctx.register(ticker=ticker, exchange="DEMO", kind="equity", name=ticker)
        last = ctx.resume_tick
        if last is not None and last.symbol in SYMBOLS:
            k = round(last.time * RATE) + 1
            logger.info("metronome: resuming at tick %d", k)
        else:
            k = math.ceil(time.time() * RATE)
            logger.info("metronome: starting at tick %d", k)
        ctx.set_status("live", "metronome")
        try:
            while not stop.is_set():
                now_k = math.floor(time.time() * RATE)
                while k <= now_k:
                    ctx.add(metronome_tick(k))
                    k += 1
                try:
                    await asyncio.wait_for(stop.wait(), timeout=STEP_SECONDS)
                except asyncio.TimeoutError:
                    pass
        finally:
            logger.info("metronome: stopped after tick %d", k - 1)
