"""Finnhub's trade WebSocket as a live feed (``runfeed --source finnhub``).

Streams the active symbols whose ``source`` is ``finnhub`` (add them in the admin or with
``manage.py add_symbols``): US stocks (``AAPL``, exchange ``US``, 09:30–16:00 New York),
forex (``OANDA:EUR_USD``) and crypto (``BINANCE:BTCUSDT``), the latter round the clock.
Frames are parsed by ``market.vendors.finnhub.messages`` (trade conditions: see there); the
engine contract is unchanged (exchange-time buckets, late and out-of-session drops).

- ``FINNHUB_API_KEY`` comes from the environment and never reaches a log line or the
  feed status: everything logged passes through ``_redact`` and the websockets library
  logs through a redacting logger. A missing key is reported as ``token_expired``.
- At most ``MAX_SYMBOLS`` (50, the free plan) per connection: the rest are named in a
  warning and in the status every browser sees.
- A dropped or refused connection is retried with exponential backoff (``BACKOFF_MIN``
  doubling to ``BACKOFF_MAX``), reset once the new connection delivers a frame; HTTP 401
  or 403 at the handshake means the key was refused (``token_expired``).
- Symbols on demand (``market.live.demand``): the feed listens on ``feed.demand.finnhub``.
  It streams the *recorded* symbols (``always_record`` first, then ``active``), then the
  symbols browsers watch, by first request, up to ``MAX_SYMBOLS``. A watched symbol stays
  subscribed ``DEMAND_LINGER_SECONDS`` after its last viewer left. A viewer past the cap
  gets ``demand.refused`` (its browser an error naming the limit) and waits for a slot.
- Every ``REFRESH_SECONDS`` the recorded symbols are re-read and the difference subscribed
  or unsubscribed on the open connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

from channels.db import database_sync_to_async
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from channels.layers import get_channel_layer

from market import selectors
from market.conf import demand_conf, finnhub_conf, market
from market.vendors.finnhub import messages as finnhub_messages
from market.core.calendar import Calendar
from market.core.demand import DemandBook, refusal_message
from market.core.types import Reject, TickBatch
from market.live.demand import DemandListener
from market.feed.base import Feed, Parser

logger = logging.getLogger("market.feed")
ws_logger = logging.getLogger("market.feed.finnhub.ws")

SOURCE = "finnhub"


def _hide(text: str, secret: str) -> str:
    """``text`` without ``secret``, also in the URL-encoded forms it has in the socket URL."""
    if not secret:
        return text
    for form in (secret, quote_plus(secret), quote(secret, safe="")):
        text = text.replace(form, "***")
    return text


class _Redact(logging.Filter):
    """Replace the API key wherever it would appear in a record (message or arguments)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            text = record.getMessage()
            hidden = _hide(text, self.secret)
            if hidden != text:
                record.msg, record.args = hidden, None
        return True


def limit_message(left_out: list[str], limit: int) -> str:
    """The user-facing sentence for symbols past the per-connection limit."""
    names = ", ".join(left_out)
    return (f"{len(left_out)} symbol(s) not streamed: Finnhub allows {limit} per connection "
            f"(try again later or deactivate others): {names}")


class FinnhubFeed(Feed):
    live = True

    @classmethod
    def parser(cls) -> Parser:
        return partial(finnhub_messages.parse, excluded_conditions=finnhub_conf().excluded_conditions)

    def __init__(self, ctx: Any, **options: Any) -> None:
        super().__init__(ctx, **options)
        self.conf = finnhub_conf()
        self.streamed: list[str] = []      # what we want subscribed (<= max_symbols)
        self.left_out: list[str] = []      # recorded finnhub symbols past the limit
        self.subscribed: set[str] = set()  # what the open connection is subscribed to
        self.connections = 0
        self.last_error = ""
        self._exchanges: dict[str, str] = {}
        self._calendar: Calendar | None = None  # the exchange calendars, re-read with the symbols
        self._filter = _Redact(self.conf.api_key)
        # Symbols on demand (None when FINNHUB["ON_DEMAND"] is off: recorded symbols only).
        self.demand = demand_conf(SOURCE)
        self.book = DemandBook(capacity=self.conf.max_symbols,
                               linger=self.demand.linger if self.demand else 0.0,
                               ttl=self.demand.ttl if self.demand else 90.0, clock=time.monotonic)
        self.listener: DemandListener | None = None
        self._ws: ClientConnection | None = None
        self._sync_lock = asyncio.Lock()

    # -- helpers ---------------------------------------------------------------------
    def _redact(self, text: object) -> str:
        return _hide(str(text), self.conf.api_key or "")

    def _url(self) -> str:
        sep = "&" if "?" in self.conf.ws_url else "?"
        return f"{self.conf.ws_url}{sep}{urlencode({'token': self.conf.api_key})}"

    def _detail(self, head: str) -> str:
        parts = [head]
        waiting = self.book.waiting()
        if waiting:
            parts.append(f"{len(waiting)} watched symbol(s) waiting for a free slot "
                         f"(Finnhub allows {self.conf.max_symbols} per connection)")
        if self.left_out:
            parts.append(limit_message(self.left_out, self.conf.max_symbols))
        if self.last_error:
            parts.append(f"Finnhub error: {self.last_error}")
        return self._redact("; ".join(p for p in parts if p))

    def _set_live(self) -> None:
        """Live, or market_closed when the exchange calendar (XNYS for US stocks: weekends and
        holidays included; forex and crypto round the clock) has every streamed symbol shut."""
        now = time.time()
        calendar = self._calendar or Calendar(market().sessions, dict(market().calendars))
        codes = {self._exchanges.get(t, "") for t in self.streamed}
        open_ = [c for c in codes if calendar.for_exchange(c).session_at(now) is not None]
        if self.streamed and not open_:
            opens = [o for o in (calendar.next_open(c, now) for c in codes) if o is not None]
            when = f"; opens {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(min(opens)))}" if opens else ""
            self.ctx.set_status("market_closed",
                                self._detail(f"{len(self.streamed)} symbols, all closed now{when}"))
        else:
            self.ctx.set_status("live", self._detail(f"streaming {len(self.subscribed)} symbols"))

    # -- symbols ---------------------------------------------------------------------
    async def _load_symbols(self) -> None:
        """Re-read the recorded symbols (``always_record`` first, then ``active``)."""
        symbols = await database_sync_to_async(selectors.symbol_list_recorded)(source=SOURCE)
        self._calendar = await database_sync_to_async(selectors.calendar_get)()  # overrides re-read too
        limit = self.conf.max_symbols
        keep, rest = symbols[:limit], [s.ticker for s in symbols[limit:]]
        if rest != self.left_out and rest:
            logger.warning("finnhub: %s", limit_message(rest, limit))
        self.left_out = rest
        new = [s for s in keep if not self.ctx.knows(s.ticker)]
        if new:
            await self.ctx.track(new)
        for s in keep:
            self._exchanges[s.ticker] = s.exchange
        self.book.set_pinned([s.ticker for s in symbols])
        self.streamed = self.book.streamed()

    async def _accept(self, ticker: str) -> bool:
        """A browser asks for ``ticker`` the first time: one of ours? Track it (one read)."""
        if self.ctx.knows(ticker):
            return True
        symbol = await database_sync_to_async(selectors.symbol_get)(ticker=ticker)
        if symbol is None or symbol.source != SOURCE or not self.ctx.owns(ticker):
            return False
        await self.ctx.track([symbol])
        self._exchanges[ticker] = symbol.exchange
        logger.info("finnhub: %s asked for on demand", ticker)
        return self.ctx.knows(ticker)

    async def _apply(self) -> None:
        """The book's streamed set changed: follow it on the open connection."""
        self.streamed = self.book.streamed()
        ws = self._ws
        if ws is None:
            return  # the next connection subscribes self.streamed
        try:
            await self._sync_subscriptions(ws)
        except ConnectionClosed:
            return  # the reconnect subscribes everything again
        self._set_live()

    async def _sync_subscriptions(self, ws: ClientConnection) -> None:
        # Called from the session, the refresh loop and the demand listener: one at a time.
        async with self._sync_lock:
            wanted = set(self.streamed)
            for ticker in sorted(self.subscribed - wanted):
                await ws.send(finnhub_messages.unsubscribe_frame(ticker))
                self.subscribed.discard(ticker)
            for ticker in list(self.streamed):
                if ticker not in self.subscribed and self.ctx.knows(ticker):
                    await ws.send(finnhub_messages.subscribe_frame(ticker))
                    self.subscribed.add(ticker)

    # -- frames ----------------------------------------------------------------------
    def handle(self, frame: str | bytes) -> None:
        """One frame from Finnhub: ticks to the pipeline; pings and errors noted; bad input counted."""
        ctx = self.ctx
        parsed = ctx.parse(frame)
        if not isinstance(parsed, TickBatch):
            return  # the parser failed (counted as malformed)
        for control in parsed.controls:
            if control.kind == "error":
                self.last_error = self._redact(control.message)
                logger.warning("finnhub error message: %s", self.last_error)
                self._set_live()
        for tick in parsed.ticks:
            if not ctx.knows(tick.symbol):
                ctx.reject(Reject.UNKNOWN_SYMBOL.value)
                continue
            ctx.add(tick)

    # -- connection ------------------------------------------------------------------
    async def _close_on_stop(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        await stop.wait()
        await ws.close()

    async def _refresh(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.conf.refresh_seconds)
                return
            except asyncio.TimeoutError:
                pass
            try:
                await self._load_symbols()
                if self.listener is not None:
                    await self.listener.resettle()  # pinned changes may displace or admit viewers
                await self._sync_subscriptions(ws)
                self._set_live()
            except ConnectionClosed:
                return
            except Exception as exc:  # noqa: BLE001 - e.g. the database is briefly down
                logger.warning("finnhub: refreshing symbols failed: %s", self._redact(exc))

    async def _session(self, ws: ClientConnection, stop: asyncio.Event) -> bool:
        """Subscribe and read until the connection ends; True if any frame arrived."""
        self.subscribed = set()
        self._ws = ws  # first: demand arriving during the initial sync is synced after it
        self.streamed = self.book.streamed()
        await self._sync_subscriptions(ws)
        self._set_live()
        helpers = [asyncio.create_task(self._close_on_stop(ws, stop)),
                   asyncio.create_task(self._refresh(ws, stop))]
        received = False
        try:
            async for frame in ws:
                received = True
                self.handle(frame)
        finally:
            self._ws = None
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        return received

    async def run(self, stop: asyncio.Event) -> None:
        conf = self.conf
        if not conf.api_key:
            # Stay up (and say so to every browser) rather than exit: in embedded mode the
            # site keeps serving history, and the status tells the user what to fix.
            logger.error("finnhub: FINNHUB_API_KEY is not set; the feed cannot start")
            self.ctx.set_status("token_expired", "FINNHUB_API_KEY is not set")
            await stop.wait()
            return
        if self._filter not in ws_logger.filters:
            ws_logger.addFilter(self._filter)
        try:
            await self._run(stop)
        finally:
            ws_logger.removeFilter(self._filter)

    async def _run(self, stop: asyncio.Event) -> None:
        await self._load_symbols()
        if not self.streamed:
            logger.warning("finnhub: no active symbols with source=finnhub; add some with "
                           "`manage.py add_symbols AAPL BINANCE:BTCUSDT` or in the admin%s",
                           " (inactive ones stream while someone watches them)" if self.demand else "")
        listening = None
        if self.demand is not None:
            limit = self.conf.max_symbols
            self.listener = DemandListener(
                source=SOURCE, book=self.book, layer=get_channel_layer(), accept=self._accept,
                changed=self._apply,
                refusal=lambda ticker: refusal_message(ticker, limit, f"Finnhub allows {limit} symbols per connection"))
            listening = asyncio.create_task(self.listener.run(stop))
        try:
            await self._connect_loop(stop)
        finally:
            if listening is not None:
                stop.set()
                await asyncio.gather(listening, return_exceptions=True)

    async def _connect_loop(self, stop: asyncio.Event) -> None:
        conf = self.conf
        backoff = conf.backoff_min
        while not stop.is_set():
            reason = "connection closed"
            try:
                self.ctx.set_status("reconnecting" if self.connections else "starting",
                                    f"connecting to {conf.ws_url}")
                async with connect(self._url(), logger=ws_logger, open_timeout=10,
                                   max_size=2**22) as ws:
                    self.connections += 1
                    logger.info("finnhub: connected to %s (connection %d), subscribing %d symbols",
                                conf.ws_url, self.connections, len(self.streamed))
                    if await self._session(ws, stop):
                        backoff = conf.backoff_min
                    code = ws.close_code
                    reason = f"connection closed by Finnhub (code {code})"
            except InvalidStatus as exc:
                status = exc.response.status_code
                reason = f"Finnhub refused the connection (HTTP {status})"
                if status in (401, 403):
                    reason = f"Finnhub rejected the API key (HTTP {status})"
                    logger.error("finnhub: %s; check FINNHUB_API_KEY", reason)
                    self.ctx.set_status("token_expired", reason)
            except ConnectionClosed as exc:
                reason = f"connection lost ({self._redact(exc)})"
            except (OSError, InvalidHandshake, InvalidURI, asyncio.TimeoutError) as exc:
                reason = f"cannot connect: {type(exc).__name__}: {self._redact(exc)}"
            if stop.is_set():
                break
            logger.warning("finnhub: %s; reconnecting in %.1fs", reason, backoff)
            if self.ctx.status != "token_expired" or "API key" not in reason:
                self.ctx.set_status("reconnecting", self._redact(f"{reason}; retrying in {backoff:.0f}s"))
            try:
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            except asyncio.TimeoutError:
                pass
            backoff = min(backoff * 2, conf.backoff_max)
