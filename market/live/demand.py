"""Symbols on demand over the Channels layer: the messages, and the feed's listener.

Browsers' consumers (web processes) tell a feed (the runfeed process) which symbols
someone watches, through the group ``feed.demand.<source>``; the feed answers a viewer
it cannot serve on that viewer's own channel. Nothing here touches the database on the
tick path: the feed reads a symbol's row once, when it is first asked for.

Messages (Channels events; ``reply`` is the consumer's channel name, the viewer id)::

    consumer -> group feed.demand.<source>
        {"type": "demand.add",     "ticker": "AAPL",     "reply": "<channel>"}
        {"type": "demand.remove",  "ticker": "AAPL",     "reply": "<channel>"}
        {"type": "demand.refresh", "tickers": ["AAPL"],  "reply": "<channel>"}  every ANNOUNCE s
    feed -> the asking consumer's channel only
        {"type": "demand.refused", "ticker": "AAPL", "limit": 50, "message": "…"}

A web worker that dies without saying goodbye stops refreshing, and the feed forgets
its demand after ``DEMAND_TTL_SECONDS`` (90); a feed that restarts relearns everything
from the next refreshes. The decisions themselves (cap, linger, queue) are
``market.core.demand.DemandBook``'s.
"""

from __future__ import annotations

import asyncio
import logging
import string
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from market.conf import ON_DEMAND_SOURCES, demand_conf
from market.core.demand import DemandBook

logger = logging.getLogger("market.feed")

ADD = "demand.add"
REMOVE = "demand.remove"
REFRESH = "demand.refresh"
REFUSED = "demand.refused"

_SAFE = frozenset(string.ascii_letters + string.digits + "-_.")


def demand_group(source: str) -> str:
    """``feed.demand.<source>``: a valid group name for any source name."""
    safe = "".join(ch if ch in _SAFE else "_" for ch in source)[:80]
    return f"feed.demand.{safe}"


def on_demand(source: str) -> bool:
    return demand_conf(source) is not None


def announce_seconds() -> float:
    """How often a consumer re-announces its demand: often enough for every source."""
    confs = [c for c in map(demand_conf, ON_DEMAND_SOURCES) if c is not None]
    return min((c.announce for c in confs), default=30.0)


async def demand_send(layer: Any, kind: str, *, source: str, reply: str, tickers: list[str]) -> None:
    """A consumer's announcement (``ADD``/``REMOVE`` one ticker, ``REFRESH`` a list)."""
    if kind == REFRESH:
        event: dict[str, Any] = {"type": REFRESH, "tickers": tickers, "reply": reply}
        await layer.group_send(demand_group(source), event)
        return
    for ticker in tickers:
        await layer.group_send(demand_group(source), {"type": kind, "ticker": ticker, "reply": reply})


Accept = Callable[[str], Awaitable[bool]]
Changed = Callable[[], Awaitable[None]]


class DemandListener:
    """A feed's ear on ``feed.demand.<source>``: keeps ``book`` and calls back on changes.

    - ``accept(ticker)`` is awaited the first time a ticker is asked for: the feed checks
      that it is one of its symbols (a database read, once) and registers it with the
      engine; False ignores the request.
    - ``changed()`` is awaited whenever ``book.streamed()`` differs from the last call:
      the feed subscribes and unsubscribes upstream.
    - ``refusal(ticker)`` is the sentence sent to a viewer the cap leaves out.

    Expiry (crashed viewers, ended lingers) runs on a timer from ``book.next_deadline``,
    on the same monotonic clock the book was given.
    """

    def __init__(self, *, source: str, book: DemandBook, layer: Any, accept: Accept, changed: Changed,
                 refusal: Callable[[str], str], clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.book = book
        self.layer = layer
        self.accept = accept
        self.changed = changed
        self.refusal = refusal
        self.clock = clock
        self.channel = ""
        self.accepted: set[str] = set()
        self.ignored = 0     # malformed or foreign requests
        self.refused = 0     # refusals sent
        self._last: list[str] | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.ready = asyncio.Event()  # set once the group is joined (tests wait on it)

    async def run(self, stop: asyncio.Event) -> None:
        if self.layer is None:
            await stop.wait()
            return
        group = demand_group(self.source)
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(group, self.channel)
        self.ready.set()
        logger.info("%s: listening for symbols on demand on %s", self.source, group)
        tasks = [asyncio.create_task(self._receive_loop()), asyncio.create_task(self._expire_loop(stop))]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception as exc:  # noqa: BLE001 - shutting down anyway
                logger.debug("%s: leaving %s failed: %s", self.source, group, exc)

    async def _receive_loop(self) -> None:
        # Never cancel layer.receive() between messages: the Redis pub/sub layer
        # unsubscribes a channel whose receive() is cancelled.
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis briefly down: retry, do not die
                logger.warning("%s: receiving demand failed: %s", self.source, exc)
                await asyncio.sleep(1.0)
                continue
            try:
                await self.handle(message)
            except Exception:  # noqa: BLE001 - one bad request must not stop the listener
                logger.exception("%s: handling a demand message failed", self.source)

    async def _expire_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            deadline = self.book.next_deadline()
            delay = 60.0 if deadline is None else max(0.0, deadline - self.clock()) + 0.01
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 60.0))
                continue  # the book changed: recompute the deadline
            except asyncio.TimeoutError:
                pass
            async with self._lock:
                self.book.expire()
                await self._settle()

    async def handle(self, message: dict[str, Any]) -> None:
        """One message from the group (also callable directly)."""
        kind, reply = message.get("type"), message.get("reply")
        if not isinstance(reply, str) or not reply:
            self.ignored += 1
            return
        if kind == REFRESH:
            raw = message.get("tickers")
            tickers = [t for t in raw if isinstance(t, str)] if isinstance(raw, list) else []
        else:
            ticker = message.get("ticker")
            tickers = [ticker] if isinstance(ticker, str) and ticker else []
        if not tickers or kind not in (ADD, REMOVE, REFRESH):
            self.ignored += 1
            return
        async with self._lock:
            if kind == REMOVE:
                for ticker in tickers:
                    self.book.remove(reply, ticker)
            else:
                for ticker in tickers:
                    if ticker not in self.accepted:
                        if not await self.accept(ticker):
                            self.ignored += 1
                            continue
                        self.accepted.add(ticker)
                    self.book.add(reply, ticker)
            await self._settle()
        self._wake.set()

    async def resettle(self) -> None:
        """The feed changed the book itself (e.g. new pinned symbols): apply and notify."""
        async with self._lock:
            await self._settle()
        self._wake.set()

    async def _settle(self) -> None:
        streamed = self.book.streamed()
        if streamed != self._last:
            self._last = streamed
            await self.changed()
        if self.layer is None:
            return
        for refusal in self.book.take_refusals():
            self.refused += 1
            text = self.refusal(refusal.ticker)
            logger.info("%s: refused %s to a viewer: %s", self.source, refusal.ticker, text)
            try:
                await self.layer.send(refusal.viewer, {
                    "type": REFUSED, "ticker": refusal.ticker, "limit": self.book.capacity, "message": text,
                })
            except Exception as exc:  # noqa: BLE001 - e.g. the channel is full or gone
                logger.warning("%s: cannot tell a viewer about %s: %s", self.source, refusal.ticker, exc)
