"""Which Fyers symbols stream, and following that onto the socket.

Owns the ``market.core.demand.DemandBook`` (the recorded symbols, ``always_record``
first, re-read every ``REFRESH_SECONDS``; then the ones browsers watch, by first
request; then those whose last viewer left less than ``DEMAND_LINGER_SECONDS`` ago; up
to ``MAX_SYMBOLS``), the symbol rows, and the map of what streams now. A symbol that
starts streaming is tracked by the engine and queued for a back-fill
(``market.vendors.fyers.catchup``); the session subscribes the difference.

The cap (5,000) is Fyers' per API key, not per socket: every runfeed and ``--shard``
process of the app claims its slots in the shared store (``market.budget``) before it
subscribes, and the book's capacity is what the others leave. A claim lives
``SLOT_TTL`` seconds and is renewed on every follow, so a killed process's slots come back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket as stdlib_socket
import time
import uuid
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async

from market import selectors
from market.conf import DemandConf, FyersConf
from market.core.demand import DemandBook
from market.core.timeframes import BASE
from market.feed.base import FeedContext
from market.vendors.fyers.catchup import CatchUp, Job
from market.vendors.fyers.hours import Hours
from market.vendors.fyers.session import FyersSession, names, wait
from market.vendors.fyers.socket import MAX_SUBSCRIPTION

if TYPE_CHECKING:
    from market.budget import Store
    from market.live.demand import DemandListener
    from market.models import Symbol

logger = logging.getLogger("market.feed")

SOURCE = "fyers"
SLOT_TTL = 60.0  # seconds a symbol claim outlives its last renewal (a killed process's slots)


class Streams:
    """``symbols`` (streamed now: tracked, back-fill queued, by ticker) is shared with the
    catch-up; ``rows`` holds every Fyers symbol recorded or accepted on demand."""

    def __init__(self, ctx: FeedContext, conf: FyersConf, demand: DemandConf | None, *,
                 session: FyersSession, catchup: CatchUp, symbols: dict[str, Symbol], hours: Hours,
                 store: Store | None = None) -> None:
        self.ctx = ctx
        self.conf = conf
        self.demand = demand
        self.session = session
        self.catchup = catchup
        self.symbols = symbols
        self.hours = hours
        self.rows: dict[str, Symbol] = {}
        self.left_out: list[str] = []
        self.cap = min(conf.max_symbols, MAX_SUBSCRIPTION)  # the API key's, all processes together
        self.store = store
        shard = getattr(ctx, "shard", None)
        self.owner = f"{stdlib_socket.gethostname()}:{os.getpid()}:{shard or '-'}:{uuid.uuid4().hex[:8]}"
        self.book = DemandBook(capacity=self.cap,
                               linger=demand.linger if demand else 0.0,
                               ttl=demand.ttl if demand else 90.0, clock=time.monotonic)
        self.listener: DemandListener | None = None
        self._follow_lock = asyncio.Lock()
        self._book_changed = asyncio.Event()

    def wanted(self) -> list[str]:
        """``book.streamed()`` (recorded symbols, then watched, then lingering, capped), as
        far as ``follow`` has prepared it (tracked, back-fill queued)."""
        return [t for t in self.book.streamed() if t in self.symbols]

    def live_detail(self) -> str:
        detail = f"Fyers: {len(self.session.subscribed)} symbols"
        waiting = self.book.waiting()
        if waiting:
            detail += f"; {len(waiting)} watched symbol(s) waiting for a free slot"
        if self.left_out:
            detail += f"; {len(self.left_out)} over the {self.book.capacity}-symbol limit"
        return detail

    def market_open(self) -> bool:
        """Does the calendar expect a session of a subscribed symbol now (NSE's if none)?"""
        return self.hours.open_now([t for t in self.symbols if t in self.session.subscribed] or None)

    async def refresh(self, *, initial: bool = False) -> None:
        """Re-read the recorded symbols (``always_record`` first, then ``active``) into the
        book, and the calendar's overrides."""
        self.hours.use(await database_sync_to_async(selectors.calendar_get)())
        rows = await database_sync_to_async(selectors.symbol_list_recorded)(source=SOURCE)
        owns = getattr(self.ctx, "owns", None)  # sharded runfeed: only this process's share
        recorded = [s for s in rows if owns is None or owns(s.ticker)]
        for symbol in recorded:
            self.rows[symbol.ticker] = symbol
        self.book.set_pinned([s.ticker for s in recorded])
        left_out = self.book.left_out()
        if left_out and left_out != self.left_out:
            logger.error("fyers: %d recorded symbols (active or always record) exceed the %d-symbol limit; "
                         "not streamed: %s", len(recorded), self.book.capacity, names(left_out))
        self.left_out = left_out
        if self.listener is not None:
            await self.listener.resettle()  # pinned changes may displace or admit viewers
        if initial and not recorded:
            logger.warning("fyers: no active symbols with source 'fyers'; import them (import_symbols) "
                           "and activate some in the admin%s",
                           " (inactive ones stream while a browser watches them)" if self.demand else "")

    async def accept(self, ticker: str) -> bool:
        """A browser asks for ``ticker`` the first time: one of ours? (One database read.)"""
        if ticker in self.rows:
            return True
        symbol = await database_sync_to_async(selectors.symbol_get)(ticker=ticker)
        owns = getattr(self.ctx, "owns", None)
        if symbol is None or symbol.source != SOURCE or (owns is not None and not owns(ticker)):
            return False
        self.rows[ticker] = symbol
        logger.info("fyers: %s asked for on demand", ticker)
        return True

    async def changed(self) -> None:
        """The listener's callback (under its lock): wake ``follow_loop``, never block on the
        socket here, so a burst of requests is applied in one subscribe call."""
        self._book_changed.set()

    async def follow_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._book_changed.wait()
            self._book_changed.clear()
            try:
                await self.follow()
            except Exception:  # noqa: BLE001 - e.g. the database is briefly down; next change retries
                logger.exception("fyers: following symbols on demand failed")
                await wait(stop, 1.0)
                self._book_changed.set()

    async def follow(self) -> None:
        """Make ``self.symbols`` what the book streams, then the live socket too.

        A symbol that starts streaming (recorded, asked for, or given a freed slot) is
        tracked by the engine, resuming from its stored candles, and queued for a back-fill
        from its newest stored 5 s candle (or ``BACKFILL_DAYS`` back) through the shared
        rate limiter; its live ticks are held until that is written. One that stops
        streaming is forgotten and its in-flight ticks are dropped and counted."""
        async with self._follow_lock:
            await self.claim(peak=True)
            wanted = self.book.streamed()
            keep = set(wanted)
            for ticker in [t for t in self.symbols if t not in keep]:
                self.symbols.pop(ticker)
                self.catchup.release(ticker, drop=True)
            added = [self.rows[t] for t in wanted if t not in self.symbols and t in self.rows]
            if added:
                await self.ctx.track(added)
                now = time.time()
                for symbol in added:
                    if not self.ctx.knows(symbol.ticker):
                        continue  # another runfeed shard owns it
                    self.symbols[symbol.ticker] = symbol
                    newest = await database_sync_to_async(selectors.candle_newest)(symbol=symbol, tf=BASE)
                    if newest is not None:
                        start = newest.time + BASE.seconds
                    else:  # BACKFILL_DAYS trading days, by the symbol's calendar
                        start = self.hours.backfill_start(symbol, now, self.conf.backfill_days)
                    self.catchup.enqueue(Job(symbol.ticker, start, reopen=True, kind="backfill"))
            await self.session.apply_changes()
            await self.claim(peak=False)

    async def claim(self, *, peak: bool) -> None:
        """Claim this process's symbol slots of the API key's cap and make the book's capacity
        what the other processes leave (a viewer past it gets the usual refusal). Before the
        socket changes (``peak``) the claim covers both what is subscribed and what will be,
        since the session unsubscribes first; after, only what is subscribed."""
        if self.store is None:
            return
        if peak:
            capacity, self.book.capacity = self.book.capacity, self.cap
            count = max(len(self.book.streamed()), len(self.session.subscribed))  # as many as fit
            self.book.capacity = capacity
        elif self.session.authed:
            count = len(self.session.subscribed)
        else:  # not connected: keep the slots the next connection subscribes
            count = len(self.book.streamed())
        try:
            room = await database_sync_to_async(self.store.claim)(
                self.conf.client_id or SOURCE, self.owner, count, self.cap, max(SLOT_TTL, 3 * self.conf.refresh_seconds))
        except Exception as exc:  # noqa: BLE001 - the store is away: keep the last capacity
            logger.warning("fyers: cannot claim symbol slots in the shared store (%s)", type(exc).__name__)
            return
        capacity = min(self.cap, room)
        if capacity != self.book.capacity:
            if capacity < self.book.capacity:
                logger.warning("fyers: other processes of app %s hold %d of its %d symbol slots; this one may "
                               "stream %d", self.conf.client_id, self.cap - room, self.cap, capacity)
            self.book.capacity = capacity
            if self.listener is not None:
                await self.listener.resettle()

    async def release(self) -> None:
        """Give this process's symbol slots back (at exit)."""
        if self.store is not None:
            try:
                await database_sync_to_async(self.store.release)(self.conf.client_id or SOURCE, self.owner)
            except Exception as exc:  # noqa: BLE001 - they expire after SLOT_TTL anyway
                logger.warning("fyers: cannot release symbol slots (%s); they expire in %.0fs",
                               type(exc).__name__, SLOT_TTL)

    async def symbols_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait(stop, self.conf.refresh_seconds)
            if stop.is_set():
                return
            try:
                await self.refresh()
                await self.follow()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the feed
                logger.exception("fyers: refreshing symbols failed")
