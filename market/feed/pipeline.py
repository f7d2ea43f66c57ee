"""Feed → engine → batched writes → group messages, with counters and a summary line.

No Django here: storing and publishing are injected coroutines, so the flow (what is
written when, what happens when the database or the layer fails) is testable alone.

Each write is a ``Checkpoint``: the changed candles, the engine states they came from and
the feed's input position, all captured at one instant, stored in one transaction. A
restart restores the states and resumes the input there, so it loses and doubles nothing.
A failed write keeps everything for a retry (with backoff) while publishing goes on, so
open charts stay live through a database outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from market.core.conflate import Conflator
from market.core.engine import CandleEngine
from market.core.types import CandleUpdate, Reject, Tick, TickBatch, WriterFenced
from market.feed.base import Parser

logger = logging.getLogger("market.feed")



@dataclass
class Checkpoint:
    """What a restart needs beside the candles: each changed symbol's engine state and
    where the feed's input stood when they were collected (None: a live feed)."""

    states: dict[str, dict] = field(default_factory=dict)
    position: Any = None


Store = Callable[[list[CandleUpdate], Checkpoint], Awaitable[int]]
Publish = Callable[[list[CandleUpdate]], Awaitable[int]]
Report = Callable[[str, str, float], Awaitable[None]]  # (state, detail, heartbeat)

HEARTBEAT_SECONDS = 5.0
RETRY_MIN, RETRY_MAX = 0.5, 30.0  # seconds between attempts to store while the database fails


async def _no_report(state: str, detail: str, heartbeat: float) -> None:
    return None


class Pipeline:
    def __init__(
        self, engine: CandleEngine, *, store: Store, publish: Publish, source: str, live: bool = True,
        report: Report = _no_report, conflator: Conflator | None = None, parser: Parser | None = None,
    ) -> None:
        self._parser = parser
        self._conflator = conflator
        self.engine = engine
        self.live = live
        self._report = report
        self.state = "starting"
        self.detail = ""
        self._state_changed = True
        self._last_report = 0.0
        self._store = store
        self._publish = publish
        self.source = source
        self.messages = 0
        self.not_ticks = 0           # control and depth messages
        self.parse_rejects: dict[str, int] = {}
        self.written = 0
        self.published = 0
        self.store_failures = 0
        self.publish_failures = 0
        self.last_tick_time: float | None = None
        self.last_write_seconds = 0.0
        self.max_write_seconds = 0.0  # a tick waits at most the flush interval plus this
        self._pending: dict[tuple[str, str, int], CandleUpdate] = {}
        self._pending_states: dict[str, dict] = {}
        #: The feed's input position (a replay's line); stored with the candles it led to.
        self.position: Any = None
        self._stored_position: Any = None
        self._retry_delay = 0.0
        self._retry_at = 0.0
        self.store_failing_since: float | None = None
        self.fenced = False  # another writer took over: nothing more may be stored
        self._flush_lock = asyncio.Lock()
        self.started = time.monotonic()
        #: Called with each tick the engine accepted, in order (alerts: ``feed.alerting``).
        self.on_tick: Callable[[Tick], None] | None = None

    # -- input -----------------------------------------------------------------------
    def parse(self, message: Any) -> Tick | Reject | TickBatch | None:
        """One message through the feed's parser; bad input is counted, never raised."""
        self.messages += 1
        if self._parser is None:
            raise TypeError(f"feed {self.source!r} has no message parser")
        try:
            result = self._parser(message)
        except Exception:  # noqa: BLE001 - a parser bug must not stop the feed
            logger.exception("parser failed on a message")
            result = Reject.MALFORMED
        if type(result) is Tick:
            return result
        if result is None:
            self.not_ticks += 1
        elif isinstance(result, Reject):
            self.reject(result.value)
        elif isinstance(result, TickBatch):
            for reason, n in result.rejects.items():
                self.parse_rejects[reason] = self.parse_rejects.get(reason, 0) + n
            self.not_ticks += len(result.controls)
        return result

    def reject_message(self, reason: str) -> None:
        """A message the feed could not even hand to the parser (e.g. a line that is not JSON)."""
        self.messages += 1
        self.reject(reason)

    def reject(self, reason: str) -> None:
        self.parse_rejects[reason] = self.parse_rejects.get(reason, 0) + 1

    def add(self, tick: Tick) -> Reject | None:
        try:
            result = self.engine.add(tick)
        except Exception:  # noqa: BLE001 - a tick from a buggy source must not stop the feed
            logger.exception("engine rejected a malformed tick")
            self.reject(Reject.MALFORMED.value)
            return Reject.MALFORMED
        if result is None:
            self.last_tick_time = tick.time
            if self.on_tick is not None:
                self.on_tick(tick)
        return result

    # -- output ----------------------------------------------------------------------
    async def flush(self, *, force: bool = False) -> int:
        """Store what changed (with its checkpoint), then publish it.

        A failed write keeps everything for the next try, after a growing delay (``force``
        tries at once, as the last flushes do); publishing the new candles goes on anyway.
        """
        async with self._flush_lock:
            fresh = self.engine.collect(self._pending_states)
            for u in fresh:
                self._pending[(u.symbol, u.timeframe, u.candle.time)] = u
            position = self.position
            due = force or time.monotonic() >= self._retry_at
            storing = None
            if due and not self.fenced and (self._pending or self._pending_states or position != self._stored_position):
                # the write (a thread) and the publish (this loop) go on side by side:
                # browsers do not wait for the database, a large write not for the layer
                storing = asyncio.ensure_future(self._store_pending(position))
            updates = fresh
            if self._conflator is not None:
                updates = self._conflator.offer(updates, time.monotonic())
            try:
                if updates:
                    try:
                        self.published += await self._publish(updates)
                    except Exception as exc:  # noqa: BLE001 - layer down: candles are stored, browsers resync
                        self.publish_failures += 1
                        logger.error("publishing %d candles failed: %s", len(updates), exc)
            finally:  # the write ends inside the lock, whatever happened to the publish
                written = await storing if storing is not None else 0
            return written

    async def _store_pending(self, position: Any) -> int:
        updates = list(self._pending.values())
        checkpoint = Checkpoint(dict(self._pending_states), position)
        started = time.monotonic()
        try:
            written = await self._store(updates, checkpoint)
        except WriterFenced as exc:
            self.fenced = True
            logger.error("writer fenced, storing stops: %s", exc)
            return 0
        except Exception as exc:  # noqa: BLE001 - database down: keep everything and retry
            self.store_failures += 1
            self._retry_delay = min(RETRY_MAX, max(RETRY_MIN, self._retry_delay * 2))
            self._retry_at = time.monotonic() + self._retry_delay
            if self.store_failing_since is None:
                self.store_failing_since = time.time()
            logger.error("writing %d candles failed (%s); kept (%d pending), next try in %.1fs",
                         len(updates), exc, len(self._pending), self._retry_delay)
            return 0
        if self.store_failing_since is not None:
            logger.warning("writing works again after %.0fs: %d candles stored",
                           time.time() - self.store_failing_since, written)
        self.store_failing_since = None
        self._retry_delay = self._retry_at = 0.0
        self._pending.clear()
        self._pending_states.clear()
        self._stored_position = position
        self.written += written
        self.last_write_seconds = time.monotonic() - started
        self.max_write_seconds = max(self.max_write_seconds, self.last_write_seconds)
        return written

    def set_status(self, state: str, detail: str = "") -> None:
        """Feeds say how they are (live, reconnecting, token_expired, …); reported at the next flush."""
        if (state, detail) != (self.state, self.detail):
            if state != self.state:
                logger.info("feed %s is %s%s", self.source, state, f": {detail}" if detail else "")
            self.state, self.detail = state, detail
            self._state_changed = True

    async def report_status(self, *, force: bool = False) -> None:
        """Persist and broadcast the state when it changed, and a heartbeat every few seconds."""
        now = time.time()
        if not (force or self._state_changed or now - self._last_report >= HEARTBEAT_SECONDS):
            return
        self._state_changed = False
        self._last_report = now
        detail = self.detail
        if self.store_failing_since is not None:  # charts stay live; say that storing waits
            waiting = f"database unavailable for {now - self.store_failing_since:.0f}s, {self.pending} candles waiting"
            detail = f"{detail}; {waiting}" if detail else waiting
        try:
            await self._report(self.state, detail, now)
        except Exception as exc:  # noqa: BLE001 - status is advisory; candles matter more
            logger.warning("reporting feed status failed: %s", exc)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def run_flusher(self, interval: float, stop: asyncio.Event, *, summary_every: float = 10.0) -> None:
        last_summary = time.monotonic()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass
            await self.flush()
            if self.fenced:
                stop.set()  # another runfeed writes this source now, and reports its state
                break
            await self.report_status()
            if time.monotonic() - last_summary >= summary_every:
                logger.info(self.summary())
                last_summary = time.monotonic()

    # -- reporting -------------------------------------------------------------------
    def rejected(self) -> dict[str, int]:
        merged = dict(self.parse_rejects)
        for reason, n in self.engine.rejected.items():
            merged[reason] = merged.get(reason, 0) + n
        return dict(sorted(merged.items()))

    def summary(self) -> str:
        rejected = self.rejected()
        reasons = " ".join(f"{k}={v}" for k, v in rejected.items()) or "none"
        lag = "-"
        if self.live and self.last_tick_time is not None:
            lag = f"{time.time() - self.last_tick_time:.1f}s"
        return (
            f"feed={self.source} accepted={self.engine.accepted} rejected={sum(rejected.values())} "
            f"({reasons}) not_ticks={self.not_ticks} candles_written={self.written} "
            f"published={self.published} pending={self.pending} lag={lag} "
            f"slowest_write={self.max_write_seconds:.2f}s "
            f"store_failures={self.store_failures} publish_failures={self.publish_failures}"
        )
