"""The live Fyers feed: ``runfeed --source fyers``.

One asyncio task supervises the SDK's data socket (``market.vendors.fyers.socket``): it opens
it, subscribes every active Fyers symbol in full mode once ``{"type": "cn", "code":
200}`` arrives (and again after every reconnect), parses messages with the same parser
as the replay feed, and reconnects with backoff on a drop, an authentication failure or
a stall (no data for ``STALL_SECONDS`` while a market is open). Other tasks:

* symbols: re-reads the recorded Fyers symbols (``always_record`` first, then
  ``active``) every ``REFRESH_SECONDS`` and subscribes or unsubscribes the difference
  (admin changes apply within seconds, no restart);
* symbols on demand (``market.live.demand``): the feed listens on ``feed.demand.fyers``. A
  ``market.core.demand.DemandBook`` decides what is streamed: the recorded symbols, then
  the ones browsers watch (by first request), then those whose last viewer left less
  than ``DEMAND_LINGER_SECONDS`` ago, up to ``MAX_SYMBOLS``. A symbol that starts
  streaming is resumed from its stored candles and back-filled like any other; a viewer
  past the cap gets ``demand.refused`` (its browser a ``symbol_limit`` error);
* catch-up: per symbol, history through the shared rate limiter — back-fill at start
  and for newly added symbols, gap repair after every reconnect. A symbol's live ticks
  are held back while its catch-up runs (at most ``HOLD_SECONDS``), so browsers receive
  the repaired candles before the newer live ones;
* reconciliation: every ``RECONCILE_SECONDS``, the recent closed candles of as many
  symbols as the request budget allows are compared with the broker's bars and corrected.

The access token comes from the token file (``fyers_login``) or, when configured, from
an unattended TOTP login. A missing, expired or rejected token is the ``token_expired``
status and one clear log line, and the feed waits for a new token: never a crash loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from market import selectors
from market.live.broadcast import candles_publish
from market.conf import demand_conf, market
from market.core.demand import DemandBook
from market.core.timeframes import BASE
from market.core.types import CandleUpdate, Tick
from market.live.demand import DemandListener
from market.feed.base import Feed, Parser
from market.vendors.fyers import messages as fyers_messages
from market.vendors.fyers import sync
from market.vendors.fyers.auth import LoginError, TokenStore, token_expiry, totp_login
from market.conf import FyersConf, fyers_conf
from market.vendors.fyers.history import HistoryClient, HistoryError, TokenRejected
from market.vendors.fyers.ratelimit import RateLimiter, shared_limiter
from market.vendors.fyers.socket import (CLOSE, ERROR, MAX_SUBSCRIPTION, MSG, PLAN_LIMIT_CODE, FyersSocket, Handoff,
                                 error_code)
from market.models import Symbol
from market.vendors.fyers.recorder import Recorder

logger = logging.getLogger("market.feed")

SOURCE = "fyers"
AUTH_TIMEOUT = 15.0          # seconds from open to the "cn" answer before we retry
YIELD_EVERY = 2000            # messages handled between yields to the event loop
LATENCY = 2.0               # seconds a tick may still be on its way
HOLD_SECONDS = 60.0          # longest a symbol's ticks wait for its catch-up
TOKEN_MARGIN = 120.0         # re-login this long before the token's exp
TOKEN_POLL = 10.0            # how often to look for a new token file while waiting
RELOGIN_MIN_INTERVAL = 300.0  # TOTP login at most this often (never hammer the login)
TOKEN_ERROR_CODES = {-99, -300, 11001}  # expired, invalid, authentication failed
NAME_LIMIT = 20              # symbols named in a log line before "and N more"


def _names(symbols: list[str]) -> str:
    shown = ", ".join(symbols[:NAME_LIMIT])
    return shown + (f" and {len(symbols) - NAME_LIMIT} more" if len(symbols) > NAME_LIMIT else "")


@dataclass
class Job:
    """A catch-up of one symbol: back-fill (``reopen``) or gap repair / reconciliation."""

    ticker: str
    start: int
    end: int | None = None      # None: up to the first held tick, else now
    reopen: bool = False
    hold: bool = True
    daily: bool = True
    kind: str = "repair"


class JobQueue:
    """The catch-up queue: back-fills and gap repairs before reconciliation, each FIFO.

    A back-fill may have a browser waiting for it (a symbol just asked for on demand, its
    live ticks held meanwhile); a reconciliation round can queue hundreds of jobs."""

    def __init__(self) -> None:
        self._urgent: deque[Job] = deque()
        self._later: deque[Job] = deque()
        self._ready = asyncio.Event()

    def put_nowait(self, job: Job) -> None:
        (self._later if job.kind == "reconcile" else self._urgent).append(job)
        self._ready.set()

    def get_nowait(self) -> Job:
        queue = self._urgent or self._later
        if not queue:
            raise asyncio.QueueEmpty
        return queue.popleft()

    async def get(self) -> Job:
        while not (self._urgent or self._later):
            self._ready.clear()
            await self._ready.wait()
        return self.get_nowait()

    def qsize(self) -> int:
        return len(self._urgent) + len(self._later)


def refusal_message(ticker: str, limit: int) -> str:
    """What the browser that asked for ``ticker`` reads when every slot is taken."""
    return (f"{ticker} is not streaming live: the Fyers feed streams at most {limit} symbols and "
            f"all {limit} are in use. History is shown; live updates start when a slot frees up "
            f"(try again later).")


class FyersFeed(Feed):
    live = True

    @classmethod
    def parser(cls) -> Parser:
        return fyers_messages.parse

    def __init__(self, ctx, *, record: str | None = None, conf: FyersConf | None = None,
                 limiter: RateLimiter | None = None, **options: Any) -> None:
        super().__init__(ctx, **options)
        self.conf = conf or fyers_conf()
        self.store = TokenStore(self.conf.token_file)
        self.limiter = limiter or shared_limiter(self.conf.rate_per_second, self.conf.rate_per_minute)
        self.record_dir = record or self.conf.record_dir or None
        self.recorder: Recorder | None = None
        self.token: str | None = None
        self.token_saved_at = 0.0
        self._last_relogin = -math.inf
        self.socket: FyersSocket | None = None
        self.handoff: Handoff | None = None
        self.history: HistoryClient | None = None
        self.symbols: dict[str, Symbol] = {}      # streamed now (tracked, back-fill queued), by ticker
        self.rows: dict[str, Symbol] = {}         # every Fyers symbol recorded or accepted on demand
        self.subscribed: set[str] = set()
        self.left_out: list[str] = []
        self.authed = False
        self.generation = 0
        self.connects = 0
        self.reconnects = 0
        self.stalls = 0
        self.last_data = time.monotonic()
        self.last_seen: dict[str, float] = {}     # exchange time of each symbol's last tick
        self.held: dict[str, list[Tick]] = {}
        self.hold_deadline: dict[str, float] = {}
        self.held_count = 0
        self.held_dropped = 0
        self.unwanted = 0
        self.in_progress: set[str] = set()
        self.jobs = JobQueue()
        self.repaired = 0
        self.reconciled = 0
        self._reconcile_cursor = 0
        self._daily_done: dict[str, int] = {}
        self._sub_lock = asyncio.Lock()
        self._follow_lock = asyncio.Lock()
        self._book_changed = asyncio.Event()
        self._token_bad = False
        self._healthy = False
        self.layer = get_channel_layer()
        # Symbols on demand (None when FYERS["ON_DEMAND"] is off: recorded symbols only).
        self.demand = demand_conf(SOURCE)
        self.book = DemandBook(capacity=min(self.conf.max_symbols, MAX_SUBSCRIPTION),
                               linger=self.demand.linger if self.demand else 0.0,
                               ttl=self.demand.ttl if self.demand else 90.0, clock=time.monotonic)
        self.listener: DemandListener | None = None

    # -- entry point ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self.handoff = Handoff(loop, self.conf.queue_max)
        if self.record_dir:
            self.recorder = Recorder(self.record_dir)
            logger.info("recording raw Fyers messages to %s", self.record_dir)
        if not await self._wait_for_token(stop):
            return
        self.history = HistoryClient(client_id=self.conf.client_id, access_token=lambda: self.token or "",
                                     limiter=self.limiter, api_base=self.conf.api_base)
        if self.demand is not None:
            limit = self.book.capacity
            self.listener = DemandListener(
                source=SOURCE, book=self.book, layer=self.layer, accept=self._accept,
                changed=self._demand_changed, refusal=lambda ticker: refusal_message(ticker, limit))
        await self._refresh_symbols(initial=True)
        await self._follow_book()
        coros = [self._symbols_loop(stop), self._jobs_loop(stop), self._reconcile_loop(stop)]
        if self.listener is not None:
            coros += [self.listener.run(stop), self._follow_loop(stop)]
        tasks = [asyncio.create_task(coro) for coro in coros]
        try:
            await self._supervise(stop)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._release_all()
            if self.socket is not None:
                await asyncio.to_thread(self.socket.close, False)
            if self.recorder is not None:
                self.recorder.close()
            logger.info("fyers: connects=%d reconnects=%d stalls=%d handoff_received=%d handoff_dropped=%d "
                        "held_dropped=%d unsubscribed_ticks=%d repaired=%d reconciled=%d rest_requests=%d "
                        "rate_waited=%.1fs throttled=%d", self.connects, self.reconnects, self.stalls,
                        self.handoff.received, self.handoff.dropped, self.held_dropped, self.unwanted,
                        self.repaired, self.reconciled, self.history.requests if self.history else 0,
                        self.limiter.waited, self.limiter.throttled)

    # -- token -----------------------------------------------------------------------------
    def _token_usable(self) -> bool:
        if not self.token or self._token_bad:
            return False
        exp = token_expiry(self.token)
        return exp is None or exp - TOKEN_MARGIN > time.time()

    async def _wait_for_token(self, stop: asyncio.Event) -> bool:
        """Until a usable token is there: the file, else a TOTP login, else wait and say so."""
        told = False
        while not stop.is_set():
            stored = await asyncio.to_thread(self.store.load)
            if (stored is not None and stored.valid(time.time(), TOKEN_MARGIN)
                    and (not self._token_bad or stored.access_token != self.token)
                    and stored.client_id in ("", self.conf.client_id or stored.client_id)):
                self.token, self.token_saved_at, self._token_bad = stored.access_token, stored.saved_at, False
                if told:
                    logger.info("fyers: new access token found; connecting")
                return True
            if self.conf.totp_configured and time.monotonic() - self._last_relogin >= RELOGIN_MIN_INTERVAL:
                self._last_relogin = time.monotonic()
                try:
                    token = await asyncio.to_thread(
                        totp_login, client_id=self.conf.client_id, secret_key=self.conf.secret_key,
                        redirect_uri=self.conf.redirect_uri, user_id=self.conf.user_id, pin=self.conf.pin,
                        totp_secret=self.conf.totp_secret, api_base=self.conf.api_base,
                        login_base=self.conf.login_base)
                    saved = await asyncio.to_thread(self.store.save, token, self.conf.client_id)
                    self.token, self.token_saved_at, self._token_bad = token, saved.saved_at, False
                    logger.info("fyers: logged in with TOTP; token valid until %s", _when(saved.expires))
                    return True
                except (LoginError, OSError, ValueError) as exc:
                    logger.error("fyers: TOTP login failed: %s", exc)
                    self.ctx.set_status("token_expired", "Fyers TOTP login failed; see the feed log")
                    told = True
                except Exception as exc:  # noqa: BLE001 - requests errors and the like
                    logger.error("fyers: TOTP login failed: %s", type(exc).__name__)
                    self.ctx.set_status("token_expired", "Fyers TOTP login failed; see the feed log")
                    told = True
            elif not told:
                logger.error("fyers: no valid access token (missing, expired or rejected). Run "
                             "`manage.py fyers_login`%s; waiting for a new token in %s",
                             "" if self.conf.totp_configured else " (or set FYERS_USER_ID, FYERS_PIN and "
                             "FYERS_TOTP_SECRET for unattended login)", self.store.path)
                self.ctx.set_status("token_expired", "Fyers login needed: run manage.py fyers_login")
                told = True
            await _wait(stop, TOKEN_POLL)
        return False

    def _token_rejected(self, why: str) -> None:
        if not self._token_bad:
            logger.error("fyers: access token rejected (%s)", why)
        self._token_bad = True

    # -- the socket supervisor ---------------------------------------------------------------
    async def _supervise(self, stop: asyncio.Event) -> None:
        backoff = self.conf.backoff_min
        while not stop.is_set():
            if not self._token_usable():
                if self.socket is not None:
                    await asyncio.to_thread(self.socket.close, False)
                if self.token and not self._token_bad:
                    logger.warning("fyers: access token expired at %s", _when(token_expiry(self.token)))
                if not await self._wait_for_token(stop):
                    return
            assert self.token is not None
            if self.socket is None:
                self.socket = FyersSocket(client_id=self.conf.client_id, access_token=self.token,
                                          handoff=self.handoff, log_dir=self.conf.log_dir,
                                          ws_url=self.conf.ws_url, api_base=self.conf.api_base,
                                          public_base=self.conf.public_base)
            self.socket.access_token = self.token
            self.authed = False
            self.subscribed = set()
            self.ctx.set_status("reconnecting" if self.connects else "starting", "connecting to Fyers")
            self.generation = await asyncio.to_thread(self.socket.open)
            self.connects += 1
            outcome = await self._pump(stop)
            if stop.is_set():
                return
            await asyncio.to_thread(self.socket.close, False)
            if outcome == "token":
                continue
            if self._healthy:  # the connection had worked for a while: start the backoff afresh
                backoff = self.conf.backoff_min
            self.reconnects += 1
            self.ctx.set_status("reconnecting", f"{outcome}; retrying in {backoff:.0f}s")
            logger.warning("fyers: %s; reconnecting in %.0fs", outcome, backoff)
            await _wait(stop, backoff)
            backoff = min(self.conf.backoff_max, backoff * 2)

    async def _pump(self, stop: asyncio.Event) -> str:
        """Handle one connection's events; returns why it ended."""
        assert self.handoff is not None
        opened = time.monotonic()
        self.last_data = opened
        self._healthy = False
        while not stop.is_set():
            events = await self.handoff.get(timeout=0.25)
            now_m = time.monotonic()
            for i, event in enumerate(events):
                if i % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)  # a big burst must not starve the flusher
                if event.generation != self.generation:
                    continue  # late news from a closed connection
                if event.kind == MSG:
                    outcome = await self._on_message(event.payload)
                    if outcome:
                        return outcome
                elif event.kind == ERROR:
                    outcome = self._on_error(event.payload)
                    if outcome:
                        return outcome
                elif event.kind == CLOSE:
                    return "connection closed"
            if self.authed:
                self._healthy = self._healthy or now_m - opened > 60
            elif now_m - opened > AUTH_TIMEOUT:
                return "no authentication answer"
            if not self._token_usable():
                return "token"
            self._release_expired()
            if self.authed and self._market_open() and now_m - self.last_data > self.conf.stall_seconds:
                self.stalls += 1
                logger.warning("fyers: no data for %.0fs while the market is open; forcing a reconnect",
                               now_m - self.last_data)
                self.ctx.set_status("stale", f"no data for {now_m - self.last_data:.0f}s")
                return "stalled"
            if self.authed and not self._market_open() and self.ctx.status != "market_closed":
                self.ctx.set_status("market_closed", "connected; market closed")
            elif self.authed and self._market_open() and self.ctx.status == "market_closed":
                self.ctx.set_status("live", self._live_detail())
        return "stopped"

    async def _on_message(self, message: Any) -> str | None:
        if self.recorder is not None:
            self.recorder.write(message)
        result = self.ctx.parse(message)
        if isinstance(result, Tick):
            self.last_data = time.monotonic()
            ticker = result.symbol
            if ticker not in self.symbols:
                self.unwanted += 1  # deactivated, still in flight, or never asked for
                return None
            held = self.held.get(ticker)
            if held is not None:
                if self.held_count >= self.conf.queue_max:
                    self.held_dropped += 1
                    if self.held_dropped == 1 or self.held_dropped % 10_000 == 0:
                        logger.warning("fyers: %d held ticks dropped (hold buffer full)", self.held_dropped)
                    return None
                held.append(result)
                self.held_count += 1
                return None
            if self.ctx.add(result) is None:
                self.last_seen[ticker] = result.time
            return None
        if isinstance(message, dict) and message.get("type") == "cn":
            if message.get("code") == 200:
                await self._authenticated()
            else:
                self._token_rejected(str(message.get("message", ""))[:100])
                return "token"
        elif isinstance(message, dict) and message.get("type") in ("sub", "ful"):
            self.last_data = time.monotonic()
        return None

    def _on_error(self, payload: Any) -> str | None:
        code = error_code(payload)
        message = str(payload.get("message", "")) if isinstance(payload, dict) else type(payload).__name__
        if code == 11001 or (code in TOKEN_ERROR_CODES and "token" in message.lower()):
            self._token_rejected(f"{code}: {message[:100]}")
            self.ctx.set_status("token_expired", "Fyers rejected the access token: run manage.py fyers_login")
            return "token"
        if code == PLAN_LIMIT_CODE:
            logger.error("fyers: plan symbol limit reached (51001: %s). Subscribed %d symbols; the last "
                         "request's symbols may be left out: %s", message[:200], len(self.subscribed),
                         _names(sorted(self._last_request)))
            self.ctx.set_status("live", f"Fyers plan symbol limit reached: {message[:80]}")
        elif isinstance(payload, dict) and payload.get("invalid_symbols"):
            logger.error("fyers: symbols Fyers does not know (not subscribed): %s",
                         _names(list(payload["invalid_symbols"])))
        elif isinstance(payload, dict):
            logger.warning("fyers socket error %s: %s", code, message[:200])
        else:
            logger.info("fyers socket: %s", message)
        return None

    async def _authenticated(self) -> None:
        self.authed = True
        self.last_data = time.monotonic()
        if self.connects > 1:
            # A reconnect: hold each symbol's ticks (from before the subscription, so the
            # snapshot Fyers re-sends is held too) until its gap is repaired from history.
            now = time.time()
            for ticker in list(self.symbols):
                start = self.last_seen.get(ticker)
                if start is None:
                    continue  # nothing live before the drop: the start-up catch-up covers it
                self._enqueue(Job(ticker, int(start - start % BASE.seconds), kind="repair"), now)
        await self._subscribe_all()
        self.ctx.set_status("live" if self._market_open() else "market_closed", self._live_detail())
        logger.info("fyers: authenticated (connection %d); subscribed %d symbols", self.connects,
                    len(self.subscribed))

    def _live_detail(self) -> str:
        detail = f"Fyers: {len(self.subscribed)} symbols"
        waiting = self.book.waiting()
        if waiting:
            detail += f"; {len(waiting)} watched symbol(s) waiting for a free slot"
        if self.left_out:
            detail += f"; {len(self.left_out)} over the {self.book.capacity}-symbol limit"
        return detail

    # -- subscriptions -------------------------------------------------------------------------
    _last_request: list[str] = []

    def _wanted(self) -> list[str]:
        """``book.streamed()`` (recorded symbols, then watched, then lingering, capped), as
        far as ``_follow_book`` has prepared it (tracked, back-fill queued)."""
        return [t for t in self.book.streamed() if t in self.symbols]

    async def _subscribe_all(self) -> None:
        async with self._sub_lock:
            wanted = self._wanted()
            if wanted and self.socket is not None:
                self._last_request = wanted
                await asyncio.to_thread(self.socket.subscribe, wanted)
            self.subscribed = set(wanted)

    async def _apply_changes(self) -> None:
        """Subscribe symbols added in the admin, unsubscribe deactivated ones (live socket)."""
        if not self.authed or self.socket is None:
            return
        async with self._sub_lock:
            wanted = set(self._wanted())
            added = sorted(wanted - self.subscribed)
            removed = sorted(self.subscribed - wanted)
            # Unsubscribe first: the socket never holds more than the cap, even for a moment
            # (a freed slot handed to a waiting viewer, or a plan limit below MAX_SYMBOLS).
            if removed:
                await asyncio.to_thread(self.socket.unsubscribe, removed)
                logger.info("fyers: unsubscribed %s", _names(removed))
            if added:
                self._last_request = added
                await asyncio.to_thread(self.socket.subscribe, added)
                logger.info("fyers: subscribed %s", _names(added))
            self.subscribed = wanted
            if added or removed:
                self.ctx.set_status(self.ctx.status if self.ctx.status != "starting" else "live",
                                    self._live_detail())

    async def _refresh_symbols(self, *, initial: bool = False) -> None:
        """Re-read the recorded symbols (``always_record`` first, then ``active``) into the book."""
        rows = await database_sync_to_async(selectors.symbol_list_recorded)(source=SOURCE)
        owns = getattr(self.ctx, "owns", None)  # sharded runfeed: only this process's share
        recorded = [s for s in rows if owns is None or owns(s.ticker)]
        for symbol in recorded:
            self.rows[symbol.ticker] = symbol
        self.book.set_pinned([s.ticker for s in recorded])
        left_out = self.book.left_out()
        if left_out and left_out != self.left_out:
            logger.error("fyers: %d recorded symbols (active or always record) exceed the %d-symbol limit; "
                         "not streamed: %s", len(recorded), self.book.capacity, _names(left_out))
        self.left_out = left_out
        if self.listener is not None:
            await self.listener.resettle()  # pinned changes may displace or admit viewers
        if initial and not recorded:
            logger.warning("fyers: no active symbols with source 'fyers'; import them (import_symbols) "
                           "and activate some in the admin%s",
                           " (inactive ones stream while a browser watches them)" if self.demand else "")

    async def _accept(self, ticker: str) -> bool:
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

    async def _demand_changed(self) -> None:
        """The listener's callback (under its lock): wake ``_follow_loop``, never block on the
        socket here, so a burst of requests is applied in one subscribe call."""
        self._book_changed.set()

    async def _follow_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._book_changed.wait()
            self._book_changed.clear()
            try:
                await self._follow_book()
            except Exception:  # noqa: BLE001 - e.g. the database is briefly down; next change retries
                logger.exception("fyers: following symbols on demand failed")
                await _wait(stop, 1.0)
                self._book_changed.set()

    async def _follow_book(self) -> None:
        """Make ``self.symbols`` what the book streams, then the live socket too.

        A symbol that starts streaming (recorded, asked for, or given a freed slot) is
        tracked by the engine, resuming from its stored candles, and queued for a back-fill
        from its newest stored 5 s candle (or ``BACKFILL_DAYS`` back) through the shared
        rate limiter; its live ticks are held until that is written. One that stops
        streaming is forgotten and its in-flight ticks are dropped and counted."""
        async with self._follow_lock:
            wanted = self.book.streamed()
            keep = set(wanted)
            for ticker in [t for t in self.symbols if t not in keep]:
                self.symbols.pop(ticker)
                self._release(ticker, drop=True)
            added = [self.rows[t] for t in wanted if t not in self.symbols and t in self.rows]
            if added:
                await self.ctx.track(added)
                now = time.time()
                for symbol in added:
                    if not self.ctx.knows(symbol.ticker):
                        continue  # another runfeed shard owns it
                    self.symbols[symbol.ticker] = symbol
                    newest = await database_sync_to_async(_newest_base)(symbol)
                    if newest is not None:
                        start = newest + BASE.seconds
                    else:
                        start = int(now - self.conf.backfill_days * 86400)
                    self._enqueue(Job(symbol.ticker, start, reopen=True, kind="backfill"), now)
            await self._apply_changes()

    async def _symbols_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _wait(stop, self.conf.refresh_seconds)
            if stop.is_set():
                return
            try:
                await self._refresh_symbols()
                await self._follow_book()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the feed
                logger.exception("fyers: refreshing symbols failed")

    # -- holding ticks during a catch-up -----------------------------------------------------
    def _enqueue(self, job: Job, now: float) -> None:
        if job.hold and job.ticker not in self.held:
            self.held[job.ticker] = []
            self.hold_deadline[job.ticker] = time.monotonic() + HOLD_SECONDS
        self.jobs.put_nowait(job)

    def _release(self, ticker: str, *, drop: bool = False) -> None:
        ticks = self.held.pop(ticker, None)
        self.hold_deadline.pop(ticker, None)
        if not ticks:
            return
        self.held_count -= len(ticks)
        if drop:
            return
        for tick in ticks:
            if self.ctx.add(tick) is None:
                self.last_seen[ticker] = tick.time

    def _release_expired(self) -> None:
        if not self.hold_deadline:
            return
        now = time.monotonic()
        for ticker, deadline in list(self.hold_deadline.items()):
            if now >= deadline and ticker not in self.in_progress:
                self._release(ticker)

    def _release_all(self) -> None:
        for ticker in list(self.held):
            self._release(ticker)

    # -- history: back-fill, gap repair, reconciliation -------------------------------------
    async def _jobs_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            job = await self.jobs.get()
            try:
                await self._run_job(job)
            except TokenRejected as exc:
                self._token_rejected(str(exc))
                self._release(job.ticker)
            except HistoryError as exc:
                logger.warning("fyers: %s of %s failed: %s", job.kind, job.ticker, exc)
                self._release(job.ticker)
            except Exception:  # noqa: BLE001
                logger.exception("fyers: %s of %s failed", job.kind, job.ticker)
                self._release(job.ticker)

    async def _run_job(self, job: Job) -> None:
        symbol = self.symbols.get(job.ticker)
        if symbol is None or self.history is None:
            self._release(job.ticker)
            return
        self.in_progress.add(job.ticker)
        fetched = None
        written = requests = 0
        try:
            now = time.time()
            end = int(job.end if job.end is not None else now)
            if job.start >= end and not job.daily:
                return
            fetched = await asyncio.to_thread(sync.catch_up_fetch, self.history, symbol.ticker,
                                              symbol.exchange, job.start, end, now=now, daily=job.daily)
            await self.ctx.flush()  # the engine's closed candles are stored before we compare
            # Buckets from the first held tick on are the engine's once the ticks go in, and a
            # tick still on its way may land in the last second's bucket: write only before both.
            held = self.held.get(job.ticker)
            limit = min(t.time for t in held) if held else time.time() - LATENCY
            fetched.end = int(min(fetched.end, limit - limit % BASE.seconds))
            reopen = job.reopen and job.ticker in self.held and not self.last_seen.get(job.ticker)
            engine_open = {} if reopen else self.ctx.open_buckets(job.ticker)
            result = await database_sync_to_async(sync.catch_up_apply)(
                symbol, fetched, now=time.time(), engine_open=engine_open, reopen=reopen)
            if reopen and result.updates:
                await self.ctx.track([symbol])  # resume from the back-filled open candles
            await self._publish(result.updates)
            written = len(result.updates)
            requests = fetched.requests
            if reopen:
                fetched = None  # nothing was skipped: no second pass
        finally:
            self.in_progress.discard(job.ticker)
            if job.hold:
                self._release(job.ticker)
        if fetched is not None and job.kind != "reconcile":
            # Second pass, after the held ticks went in: the candles the engine held open
            # during the first pass are closed and stored now; correct them too.
            await self.ctx.flush()
            again = await database_sync_to_async(sync.catch_up_apply)(
                symbol, fetched, now=time.time(), engine_open=self.ctx.open_buckets(job.ticker))
            await self._publish(again.updates)
            written += len(again.updates)
        if job.kind == "reconcile":
            self.reconciled += written
        else:
            self.repaired += written
        if written or job.kind != "reconcile":
            logger.info("fyers: %s %s: %d candles written from %d history requests", job.kind, job.ticker,
                        written, requests)

    async def _publish(self, updates: list[CandleUpdate]) -> None:
        if updates and self.layer is not None:
            try:
                await candles_publish(self.layer, updates, revised=True)
            except Exception as exc:  # noqa: BLE001 - stored anyway; browsers resync
                logger.error("fyers: publishing %d repaired candles failed: %s", len(updates), exc)

    def reconcile_batch_size(self) -> int:
        """Symbols per round so reconciliation uses at most its share of the per-minute limit."""
        per_minute = self.limiter.capacity_per_minute() * self.conf.reconcile_budget
        return max(1, int(per_minute * self.conf.reconcile_seconds / 60.0))

    async def _reconcile_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _wait(stop, self.conf.reconcile_seconds)
            if stop.is_set() or not self.authed or self._token_bad:
                continue
            now = time.time()
            # only while a session is open or just closed (its last bars); the day bar once
            tickers = sorted(t for t in self.subscribed
                             if self._trading_recently(t, now) or self._daily_due(t, now, peek=True))
            if not tickers or self.jobs.qsize() > len(tickers):
                continue  # nothing trading, or catch-ups first
            batch = self.reconcile_batch_size()
            cursor = self._reconcile_cursor
            chosen = [tickers[(cursor + i) % len(tickers)] for i in range(min(batch, len(tickers)))]
            self._reconcile_cursor = (self._reconcile_cursor + len(chosen)) % len(tickers)
            start = int(now - self.conf.reconcile_lookback)
            for ticker in chosen:
                daily = self._daily_due(ticker, now)
                self.jobs.put_nowait(Job(ticker, start - start % BASE.seconds, end=int(now), hold=False,
                                         daily=daily, kind="reconcile"))

    def _daily_due(self, ticker: str, now: float, *, peek: bool = False) -> bool:
        """The day bar is reconciled once, after the session closes."""
        symbol = self.symbols.get(ticker)
        if symbol is None:
            return False
        day = market().sessions.for_exchange(symbol.exchange).day_of(now)
        if now < day.close or self._daily_done.get(ticker) == day.label:
            return False
        if not peek:
            self._daily_done[ticker] = day.label
        return True

    def _trading_recently(self, ticker: str, now: float) -> bool:
        """In session, or closed less than a look-back ago (its last bars still to check)."""
        symbol = self.symbols.get(ticker)
        if symbol is None:
            return False
        day = market().sessions.for_exchange(symbol.exchange).day_of(now)
        return day.open <= now < day.close + self.conf.reconcile_lookback

    def _market_open(self) -> bool:
        now = time.time()
        sessions = market().sessions
        exchanges = {s.exchange for t, s in self.symbols.items() if t in self.subscribed} or {"NSE"}
        return any(sessions.for_exchange(e).day_of(now).contains(now) for e in exchanges)


def _newest_base(symbol: Symbol) -> int | None:
    from market.models import Candle

    row = (Candle.objects.filter(symbol=symbol, timeframe=BASE.code).order_by("-time")
           .values_list("time", flat=True).first())
    return int(row) if row is not None else None


def _when(t: float | None) -> str:
    if t is None:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except asyncio.TimeoutError:
        pass

