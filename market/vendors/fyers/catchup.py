"""Catch-up from Fyers history, and the live ticks held back while it runs.

Owns the job queue (``Job``, ``JobQueue``: back-fill at start and for newly streamed
symbols, gap repair after a reconnect, reconciliation every ``RECONCILE_SECONDS`` within
its share of the request budget), the held ticks (a symbol's live ticks wait, at most
``HOLD_SECONDS``, until its catch-up is written, so browsers receive the repaired candles
before the newer live ones), where each symbol's live stream last was (``last_seen``: the
start of a gap), and publishing the written candles. The database half is
``market.vendors.fyers.sync``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from channels.db import database_sync_to_async

from market.conf import FyersConf
from market.core.timeframes import BASE
from market.core.types import CandleUpdate, Tick
from market.feed.base import FeedContext
from market.live.broadcast import candles_publish
from market.vendors.fyers import sync
from market.vendors.fyers.history import BudgetExhausted, HistoryClient, HistoryError, TokenRejected
from market.vendors.fyers.hours import Hours
from market.vendors.fyers.ratelimit import RateLimiter
from market.vendors.fyers.session import FyersSession, wait

if TYPE_CHECKING:
    from market.models import Symbol

logger = logging.getLogger("market.feed")

LATENCY = 2.0               # seconds a tick may still be on its way
HOLD_SECONDS = 60.0          # longest a symbol's ticks wait for its catch-up
SECONDS_RETRY = 3600.0       # after 5S history is refused for a symbol, 1m only for this long
FILLS_KEPT = 1000            # recent (ticker, kind, start, end, resolution) kept in ``fills``


@dataclass(frozen=True)
class Fill:
    """Which history resolution filled which range of a symbol (``None``: neither had bars)."""

    ticker: str
    kind: str
    start: int
    end: int
    resolution: str | None
    refused: str = ""


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


class CatchUp:
    """``symbols`` is the feed's map of the streamed symbols (shared, not copied)."""

    def __init__(self, ctx: FeedContext, conf: FyersConf, *, session: FyersSession,
                 symbols: Mapping[str, Symbol], limiter: RateLimiter, layer: Any,
                 hours: Hours | None = None) -> None:
        self.ctx = ctx
        self.conf = conf
        self.session = session
        self.symbols = symbols
        self.limiter = limiter
        self.layer = layer
        self.hours = hours or Hours(symbols)
        self.history: HistoryClient | None = None
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
        self.budget_resumes = 0.0  # epoch seconds: the app's daily REST budget is used up until then
        self._reconcile_cursor = 0
        self._daily_done: dict[str, int] = {}
        self.fills: deque[Fill] = deque(maxlen=FILLS_KEPT)
        self.filled: dict[str, int] = {}              # resolution -> catch-ups it filled
        self._seconds_refused: dict[str, float] = {}  # ticker -> monotonic time 5S may be tried again

    # -- live ticks, held during a catch-up --------------------------------------------------
    def take(self, tick: Tick) -> None:
        """A live tick: to the engine, or held while its symbol catches up."""
        ticker = tick.symbol
        if ticker not in self.symbols:
            self.unwanted += 1  # deactivated, still in flight, or never asked for
            return
        held = self.held.get(ticker)
        if held is not None:
            if self.held_count >= self.conf.queue_max:
                self.held_dropped += 1
                if self.held_dropped == 1 or self.held_dropped % 10_000 == 0:
                    logger.warning("fyers: %d held ticks dropped (hold buffer full)", self.held_dropped)
                return
            held.append(tick)
            self.held_count += 1
            return
        if self.ctx.add(tick) is None:
            self.last_seen[ticker] = tick.time

    def enqueue(self, job: Job) -> None:
        if job.hold and job.ticker not in self.held:
            self.held[job.ticker] = []
            self.hold_deadline[job.ticker] = time.monotonic() + HOLD_SECONDS
        self.jobs.put_nowait(job)

    def repair_gaps(self) -> None:
        """After a reconnect: hold each symbol's ticks (from before the subscription, so the
        snapshot Fyers re-sends is held too) until its gap is repaired from history."""
        for ticker in list(self.symbols):
            start = self.last_seen.get(ticker)
            if start is None:
                continue  # nothing live before the drop: the start-up catch-up covers it
            self.enqueue(Job(ticker, int(start - start % BASE.seconds), kind="repair"))

    def release(self, ticker: str, *, drop: bool = False) -> None:
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

    def release_expired(self) -> None:
        if not self.hold_deadline:
            return
        now = time.monotonic()
        for ticker, deadline in list(self.hold_deadline.items()):
            if now >= deadline and ticker not in self.in_progress:
                self.release(ticker)

    def release_all(self) -> None:
        for ticker in list(self.held):
            self.release(ticker)

    # -- history: back-fill, gap repair, reconciliation -------------------------------------
    async def jobs_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            job = await self.jobs.get()
            try:
                await self._run_job(job)
            except TokenRejected as exc:
                self.session.token_rejected(str(exc))
                self.release(job.ticker)
            except BudgetExhausted as exc:  # the limiter said so once; no line per job
                self.budget_resumes = exc.resumes
                logger.debug("fyers: %s of %s skipped: %s", job.kind, job.ticker, exc)
                self.release(job.ticker)
            except HistoryError as exc:
                logger.warning("fyers: %s of %s failed: %s", job.kind, job.ticker, exc)
                self.release(job.ticker)
            except Exception:  # noqa: BLE001
                logger.exception("fyers: %s of %s failed", job.kind, job.ticker)
                self.release(job.ticker)

    async def _run_job(self, job: Job) -> None:
        symbol = self.symbols.get(job.ticker)
        if symbol is None or self.history is None:
            self.release(job.ticker)
            return
        self.in_progress.add(job.ticker)
        fetched = None
        written = requests = 0
        try:
            now = time.time()
            end = int(job.end if job.end is not None else now)
            if job.start >= end and not job.daily:
                return
            seconds = time.monotonic() >= self._seconds_refused.get(job.ticker, 0.0)
            fetched = await asyncio.to_thread(sync.catch_up_fetch, self.history, symbol.ticker,
                                              symbol.exchange, job.start, end, now=now, daily=job.daily,
                                              seconds=seconds)
            self._mark(job, fetched, tried_seconds=seconds)
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
                await self.ctx.track([symbol], restore=False)  # resume from the back-filled open candles
            await self._publish(result.updates)
            written = len(result.updates)
            requests = fetched.requests
            if reopen:
                fetched = None  # nothing was skipped: no second pass
        finally:
            self.in_progress.discard(job.ticker)
            if job.hold:
                self.release(job.ticker)
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
            logger.info("fyers: %s %s: %d candles written from %d history requests%s", job.kind, job.ticker,
                        written, requests, self._fill_note(job.ticker))

    def _mark(self, job: Job, fetched: sync.Fetched, *, tried_seconds: bool) -> None:
        """Remember which resolution filled the range, and a 5S refusal for ``SECONDS_RETRY``."""
        refused = fetched.refused
        if refused:
            logger.warning("fyers: 5S history refused for %s (%s); using 1m history for it for %.0f min",
                           job.ticker, refused, SECONDS_RETRY / 60)
            self._seconds_refused[job.ticker] = time.monotonic() + SECONDS_RETRY
        elif not tried_seconds:
            refused = "refused earlier"
        self.fills.append(Fill(job.ticker, job.kind, fetched.start, fetched.end, fetched.resolution, refused))
        if fetched.resolution:
            self.filled[fetched.resolution] = self.filled.get(fetched.resolution, 0) + 1

    def _fill_note(self, ticker: str) -> str:
        last = next((f for f in reversed(self.fills) if f.ticker == ticker), None)
        if last is None or last.resolution is None:
            return ""
        if last.resolution == BASE.code:
            return " (5s)"
        return " (1m: 5S refused)" if last.refused else " (1m: 5S empty)"

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

    async def reconcile_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await wait(stop, self.conf.reconcile_seconds)
            if stop.is_set() or not self.session.authed or self.session.token_bad:
                continue
            if time.time() < self.budget_resumes:
                continue  # the app's daily REST budget is used up: no round until the next day
            now = self.hours.clock()
            # only while a session is open or just closed (its last bars); the day bar once,
            # by the symbol's calendar (nothing on a weekend or holiday)
            tickers = sorted(t for t in self.session.subscribed
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
        """The day bar is reconciled once, after the trading day's last session closes."""
        symbol = self.symbols.get(ticker)
        if symbol is None:
            return False
        label = self.hours.day_closed(symbol, now)
        if label is None or self._daily_done.get(ticker) == label:
            return False
        if not peek:
            self._daily_done[ticker] = label
        return True

    def _trading_recently(self, ticker: str, now: float) -> bool:
        """In a calendar session, or one closed less than a look-back ago (its last bars)."""
        symbol = self.symbols.get(ticker)
        if symbol is None:
            return False
        return self.hours.trading_recently(symbol, now, self.conf.reconcile_lookback)
