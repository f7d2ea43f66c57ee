"""The live Fyers feed: ``runfeed --source fyers``.

``FyersFeed`` wires four parts together and is what the runner sees (the ``Feed``
contract):

* ``market.vendors.fyers.session``: the access token and the supervised SDK data socket
  (subscribe in full mode once ``{"type": "cn", "code": 200}`` arrives and after every
  reconnect, backoff, stall watchdog, ``token_expired`` while waiting for a token);
* ``market.vendors.fyers.streams``: which symbols stream (recorded ones, re-read every
  ``REFRESH_SECONDS``; symbols on demand through ``market.live.demand``, the listener on
  ``feed.demand.fyers``; a viewer past ``MAX_SYMBOLS`` gets ``demand.refused``);
* ``market.vendors.fyers.catchup``: back-fill, gap repair after a reconnect and
  reconciliation from history through the app's shared REST budget, with a symbol's live
  ticks held back while its catch-up runs;
* the engine, through the ``FeedContext`` the runner gives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from channels.layers import get_channel_layer

from market.conf import FyersConf, demand_conf, fyers_conf
from market.core.demand import refusal_message
from market.core.types import Tick
from market.feed.base import Feed, FeedContext, Parser
from market.live.demand import DemandListener
from market.vendors.fyers import messages as fyers_messages
from market.vendors.fyers.catchup import CatchUp
from market.vendors.fyers.history import HistoryClient
from market.vendors.fyers.hours import Hours
from market.vendors.fyers.ratelimit import RateLimiter, shared_limiter
from market.vendors.fyers.session import FyersSession
from market.vendors.fyers.streams import SOURCE, Streams

if TYPE_CHECKING:
    from market.models import Symbol

logger = logging.getLogger("market.feed")


class FyersFeed(Feed):
    live = True

    @classmethod
    def parser(cls) -> Parser:
        return fyers_messages.parse

    def __init__(self, ctx: FeedContext, *, record: str | None = None, conf: FyersConf | None = None,
                 limiter: RateLimiter | None = None, clock: Callable[[], float] = time.time,
                 **options: Any) -> None:
        super().__init__(ctx, **options)
        self.conf = conf or fyers_conf()
        self.limiter = limiter or shared_limiter(self.conf)
        self.record_dir = record or self.conf.record_dir or None
        self.layer = get_channel_layer()
        # Symbols on demand (None when FYERS["ON_DEMAND"] is off: recorded symbols only).
        self.demand = demand_conf(SOURCE)
        symbols: dict[str, Symbol] = {}
        # The exchange calendar's expectations (``clock``: the wall clock they are read
        # against; a test runs a simulated week on a faster one).
        self.hours = Hours(symbols, clock=clock)
        self.session = FyersSession(ctx, self.conf, owner=self, limiter=self.limiter)
        self.catchup = CatchUp(ctx, self.conf, session=self.session, symbols=symbols, limiter=self.limiter,
                               layer=self.layer, hours=self.hours)
        self.streams = Streams(ctx, self.conf, self.demand, session=self.session, catchup=self.catchup,
                               symbols=symbols, hours=self.hours, store=self.limiter.store)

    # -- entry point ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        session, catchup, streams = self.session, self.catchup, self.streams
        session.start(self.record_dir)
        if not await session.wait_for_token(stop):
            return
        catchup.history = HistoryClient(client_id=self.conf.client_id, access_token=lambda: session.token or "",
                                        limiter=self.limiter, api_base=self.conf.api_base)
        if self.demand is not None:
            limit = streams.cap  # the API key's, shared with the app's other processes
            streams.listener = DemandListener(
                source=SOURCE, book=streams.book, layer=self.layer, accept=streams.accept,
                changed=streams.changed,
                refusal=lambda ticker: refusal_message(
                    ticker, limit, f"the Fyers feed streams at most {limit} symbols per API key"))
        await streams.refresh(initial=True)
        await streams.follow()
        coros = [streams.symbols_loop(stop), catchup.jobs_loop(stop), catchup.reconcile_loop(stop)]
        if streams.listener is not None:
            coros += [streams.listener.run(stop), streams.follow_loop(stop)]
        tasks = [asyncio.create_task(coro) for coro in coros]
        try:
            await session.supervise(stop)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            catchup.release_all()
            await session.close()
            await streams.release()
            logger.info("fyers: connects=%d reconnects=%d stalls=%d handoff_received=%d handoff_dropped=%d "
                        "held_dropped=%d unsubscribed_ticks=%d repaired=%d reconciled=%d rest_requests=%d "
                        "rate_waited=%.1fs throttled=%d unscheduled_ticks=%d filled_5s=%d filled_1m=%d",
                        session.connects, session.reconnects, session.stalls,
                        session.handoff.received, session.handoff.dropped, catchup.held_dropped,
                        catchup.unwanted, catchup.repaired, catchup.reconciled,
                        catchup.history.requests if catchup.history else 0,
                        self.limiter.waited, self.limiter.throttled, self.hours.unscheduled,
                        catchup.filled.get("5s", 0), catchup.filled.get("1m", 0))

    # -- what the session asks of the feed (session.SessionOwner) ----------------------------
    def on_tick(self, tick: Tick) -> bool:
        fresh = self.hours.clock() - tick.time < self.conf.stall_seconds
        if fresh:
            self.hours.check(tick)  # counted and logged when unexpected; kept all the same
        self.catchup.take(tick)
        return fresh

    def on_reconnect(self) -> None:
        self.catchup.repair_gaps()

    def wanted(self) -> list[str]:
        return self.streams.wanted()

    def tend(self) -> None:
        self.catchup.release_expired()

    def market_open(self) -> bool:
        return self.streams.market_open()

    def closed_detail(self) -> str:
        return self.hours.closed_detail([t for t in self.streams.symbols if t in self.session.subscribed] or None)

    def live_detail(self) -> str:
        return self.streams.live_detail()
