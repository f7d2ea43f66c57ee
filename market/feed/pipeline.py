"""Feed → engine → batched writes → group messages, with counters and a summary line.

No Django here: storing and publishing are injected coroutines, so the flow (what is
written when, what happens when the database or the layer fails) is testable alone.

Each write is a ``Checkpoint``: the changed candles, the engine states they came from and
the feed's input position, all captured at one instant, stored in one transaction. A
restart restores the states and resumes the input there, so it loses and doubles nothing.
A failed write keeps everything for a retry (with backoff) while publishing goes on, so
open charts stay live through a database outage.

Live feeds also journal every accepted tick (``market.feed.journal``): their checkpoint
position is the journal's, and past ``buffer_limit`` candles waiting for a failing
database the pipeline drops them ("spills") and, once writing works, rebuilds them from the
journal (``rebuild``), so memory stays flat however long the outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from market.core.conflate import Conflator
from market.core.engine import CandleEngine
from market.core.types import CandleUpdate, Reject, Tick, TickBatch, WriterFenced
from market.feed.base import Parser

if TYPE_CHECKING:
    from market.feed.journal import TickJournal

logger = logging.getLogger("market.feed")



@dataclass
class Checkpoint:
    """What a restart needs beside the candles: each changed symbol's engine state and
    where the feed's input stood when they were collected (None: a live feed)."""

    states: dict[str, dict] = field(default_factory=dict)
    position: Any = None
    #: What ``Pipeline.snapshot`` returned at the same moment (the price alerts' part).
    extra: Any = None


Store = Callable[[list[CandleUpdate], Checkpoint], Awaitable[int]]
Publish = Callable[[list[CandleUpdate]], Awaitable[int]]
Report = Callable[[str, str, float], Awaitable[None]]  # (state, detail, heartbeat)
#: Store everything the journal holds up to a position, with what ``Pipeline.snapshot``
#: returned at that moment (``Checkpoint.extra``: the price alerts' part).
Rebuild = Callable[[Any, Any], Awaitable[int]]

HEARTBEAT_SECONDS = 5.0
RETRY_MIN, RETRY_MAX = 0.5, 30.0  # seconds between attempts to store while the database fails


async def _no_report(state: str, detail: str, heartbeat: float) -> None:
    return None


class Pipeline:
    def __init__(
        self, engine: CandleEngine, *, store: Store, publish: Publish, source: str, live: bool = True,
        report: Report = _no_report, conflator: Conflator | None = None, parser: Parser | None = None,
        journal: TickJournal | None = None, rebuild: Rebuild | None = None, buffer_limit: int = 50_000,
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
        #: Called when a write's checkpoint is taken, with no await between, so what it
        #: returns (``Checkpoint.extra``) holds exactly the ticks the engine's states hold.
        self.snapshot: Callable[[], Any] | None = None
        #: Accepted ticks are appended here (live feeds); its position is the checkpoint's.
        self.journal = journal
        self._rebuild = rebuild
        self.buffer_limit = buffer_limit  # candles kept in memory while writes fail
        self.spilled = False  # waiting candles were dropped: the journal rebuilds them
        self.spills = 0
        self.max_pending = 0  # the most candles kept waiting while writes failed
        self._unspillable_logged = False

    def resume(self, position: Any) -> None:
        """The input position the stored candles include (read on start)."""
        self.position = self._stored_position = position

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
            if self.journal is not None:
                self.journal.append(tick)
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
            if self.spilled:
                fresh = self.engine.collect()  # published only: the journal holds their ticks
            else:
                fresh = self.engine.collect(self._pending_states)
                if self.store_failing_since is not None and len(self._pending) + len(fresh) > self.buffer_limit:
                    self._spill()
                if not self.spilled:
                    for u in fresh:
                        self._pending[(u.symbol, u.timeframe, u.candle.time)] = u
            position = self.journal.position() if self.journal is not None else self.position
            due = force or time.monotonic() >= self._retry_at
            storing = None
            # the write (a thread) and the publish (this loop) go on side by side:
            # browsers do not wait for the database, a large write not for the layer
            if due and not self.fenced and self.spilled:
                storing = asyncio.ensure_future(self._rebuild_pending(position))
            elif due and not self.fenced and (self._pending or self._pending_states or position != self._stored_position):
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
                if self.store_failing_since is not None:  # (a normal write takes what one flush changed)
                    if len(self._pending) > self.buffer_limit and not self.spilled:
                        self._spill()  # one flush's changes alone passed the bound
                    self.max_pending = max(self.max_pending, len(self._pending))
            return written

    def _spill(self) -> None:
        """Drop the waiting candles and states when the journal can give their ticks back."""
        if self.journal is None or self._rebuild is None or not self.journal.reproduces(self._stored_position):
            if not self._unspillable_logged:
                self._unspillable_logged = True
                why = "no journal" if self.journal is None else "the journal has a gap since the last checkpoint"
                logger.error("more than %d candles wait for the database and cannot be spilled (%s): "
                             "kept in memory", self.buffer_limit, why)
            return
        logger.warning("more than %d candles wait for the database: dropped from memory (%d), to be rebuilt "
                       "from the journal after tick %s", self.buffer_limit, len(self._pending),
                       self._stored_position["seq"])
        self._pending.clear()
        self._pending_states.clear()
        self.spilled = True
        self.spills += 1

    def _store_pending(self, position: Any) -> Awaitable[int]:
        """Take the write's candles and checkpoint now (the caller may start the write
        later, beside the publish), then write them."""
        updates = list(self._pending.values())
        extra = self.snapshot() if self.snapshot is not None else None
        return self._write(updates, Checkpoint(dict(self._pending_states), position, extra))

    async def _write(self, updates: list[CandleUpdate], checkpoint: Checkpoint) -> int:
        position = checkpoint.position
        started = time.monotonic()
        if self.journal is not None:  # write-ahead: no checkpoint ahead of the journal on disk
            await asyncio.to_thread(self.journal.sync)
        try:
            written = await self._store(updates, checkpoint)
        except WriterFenced as exc:
            self.fenced = True
            logger.error("writer fenced, storing stops: %s", exc)
            return 0
        except Exception as exc:  # noqa: BLE001 - database down: keep everything and retry
            self._failed(f"writing {len(updates)} candles failed ({exc}); kept ({len(self._pending)} pending)")
            return 0
        self._stored(position, written, started)
        self._pending.clear()
        self._pending_states.clear()
        return written

    def _rebuild_pending(self, position: Any) -> Awaitable[int]:
        """Take the alerts' snapshot with ``position`` now (as ``_store_pending`` does: the
        rebuild stores it with the candles up to there), then rebuild."""
        extra = self.snapshot() if self.snapshot is not None else None
        return self._rebuild_write(position, extra)

    async def _rebuild_write(self, position: Any, extra: Any) -> int:
        started = time.monotonic()
        try:
            written = await self._rebuild(position, extra)  # type: ignore[misc]
        except WriterFenced as exc:
            self.fenced = True
            logger.error("writer fenced, storing stops: %s", exc)
            return 0
        except Exception as exc:  # noqa: BLE001 - still down: the journal keeps the ticks
            self._failed(f"writing candles failed ({exc}); spilled to the journal up to tick {position['seq']}")
            return 0
        logger.warning("rebuilt from the journal and stored %d candles (ticks up to %d) in %.1fs",
                       written, position["seq"], time.monotonic() - started)
        self.spilled = False
        self._unspillable_logged = False
        self._stored(position, written, started)
        return written

    def _failed(self, what: str) -> None:
        self.store_failures += 1
        self._retry_delay = min(RETRY_MAX, max(RETRY_MIN, self._retry_delay * 2))
        self._retry_at = time.monotonic() + self._retry_delay
        if self.store_failing_since is None:
            self.store_failing_since = time.time()
        logger.error("%s, next try in %.1fs", what, self._retry_delay)

    def _stored(self, position: Any, written: int, started: float) -> None:
        if self.store_failing_since is not None:
            logger.warning("writing works again after %.0fs: %d candles stored",
                           time.time() - self.store_failing_since, written)
        self.store_failing_since = None
        self._retry_delay = self._retry_at = 0.0
        self._stored_position = position
        if self.journal is not None:
            self.journal.covered(position)
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
            waiting = f"database unavailable for {now - self.store_failing_since:.0f}s, " + (
                "candles spilled to the journal" if self.spilled else f"{self.pending} candles waiting")
            detail = f"{detail}; {waiting}" if detail else waiting
        if self.journal is not None and (self.journal.full or self.journal.failing):
            trouble = "tick journal full" if self.journal.full else "tick journal failing"
            detail = f"{detail}; {trouble}" if detail else trouble
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
            f"published={self.published} pending={self.pending}{' (spilled)' if self.spilled else ''} lag={lag} "
            f"slowest_write={self.max_write_seconds:.2f}s "
            f"store_failures={self.store_failures} publish_failures={self.publish_failures}{self._journal_summary()}"
        )

    def _journal_summary(self) -> str:
        if self.journal is None:
            return ""
        j = self.journal.stats()
        trouble = " (full)" if j["full"] else " (failing)" if j["failing"] else ""
        lost = f" unjournaled={j['unjournaled']}" if j["unjournaled"] else ""
        return f" journal={j['bytes'] / 1e6:.1f}MB{trouble}{lost}"
