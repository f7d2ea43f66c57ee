"""The default feed: a simulated round-the-clock market, so a fresh install is never empty.

On start it creates the demo symbols, back-fills from the last stored candle (at most
``SIM_BACKFILL_HOURS`` back) up to now through the same engine, then streams live. Each
symbol's walk continues from its stored price and cumulative day volume, so the volume
the engine counts (the rise over its stored baseline) goes on as if nothing had stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async

from market import selectors, services
from market.conf import market
from market.core.simulator import RandomWalk, sim_universe
from market.core.timeframes import BASE
from market.feed.base import Feed

if TYPE_CHECKING:
    from market.models import Symbol

logger = logging.getLogger("market.feed")

BACKFILL_CHUNK = 600.0  # seconds of simulated time between yields to the event loop
LIVE_STEP = 0.1


def _day_volume(symbol: Symbol) -> tuple[int, float] | None:
    """Where ``symbol``'s cumulative day volume stood when it was stored, as ``(day label,
    volume)``: the engine's baseline checkpointed with the candles when there is one, else
    the volume stored for the newest candle's day (the baseline ``CandleEngine.resume`` uses)."""
    state = selectors.symbol_checkpoint_get(symbol=symbol)
    if state and state.get("vol_label") is not None:
        try:
            return int(state["vol_label"]), float(state["vol_max"])
        except (KeyError, TypeError, ValueError):
            pass
    newest = selectors.candle_newest(symbol=symbol, tf=BASE)
    if newest is None:
        return None
    label = market().sessions.for_exchange(symbol.exchange).day_of(newest.time).label
    volume = selectors.candle_day_volume(symbol=symbol, label=label)
    return None if volume is None else (label, volume)


class SimulatedFeed(Feed):
    live = True

    async def run(self, stop: asyncio.Event) -> None:
        conf = market()
        universe = sim_universe(conf.sim_symbols)
        symbols = await database_sync_to_async(services.symbol_ensure_demo)(symbols=universe)
        active = [s for s in symbols if s.active]
        last = await self.ctx.track(active)
        walk = RandomWalk([s for s in universe if s.ticker in last], rate=conf.sim_rate,
                          seed=int(self.options.get("seed") or 7))
        now = time.time()
        start = now - conf.sim_backfill_hours * 3600
        by_ticker = {s.ticker: s for s in active}
        for ticker, candles in last.items():
            newest = candles.get(BASE)
            if newest is not None:
                start = max(start, newest.time + BASE.seconds)
                day_volume = await database_sync_to_async(_day_volume)(by_ticker[ticker])
                walk.start_from(ticker, newest.close, day_volume=day_volume)
        if self.ctx.resume_tick is not None:  # the journal's ticks are in the engine already
            start = max(start, self.ctx.resume_tick.time)
        start = min(start, now)
        ctx = self.ctx
        t, filled = start, 0
        while t < now and not stop.is_set():
            t_next = min(t + BACKFILL_CHUNK, now)
            for tick in walk.ticks_until(t_next, t_start=start):
                ctx.add(tick)
                filled += 1
            t = t_next
            await asyncio.sleep(0)
        if filled:
            logger.info("simulated back-fill: %d ticks over %.1f h for %d symbols",
                        filled, (now - start) / 3600, len(last))
        if t == start:  # nothing to back-fill: start the clock now
            list(walk.ticks_until(now, t_start=now))
        await ctx.flush()  # history stored before anyone is told the feed is live
        self.ctx.set_status("live", "simulated market")
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=LIVE_STEP)
            except asyncio.TimeoutError:
                pass
            for tick in walk.ticks_until(time.time()):
                ctx.add(tick)
