"""Wires a feed to the engine, the database and the channel layer (used by ``runfeed``)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from market import selectors, services
from market.live.broadcast import candles_publish, status_publish
from market.conf import market
from market.core.conflate import Conflator
from market.core.engine import CandleEngine
from market.core.sessions import Session
from market.core.types import CandleUpdate, Tick, WriterFenced
from market.feed.base import Parser
from market.feed.registry import load_feed
from market.core.shards import Shard
from market.feed.locks import WriterLock
from market.feed.journal import TickJournal, is_position
from market.metrics import serve_pipeline_metrics, watch_loop
from market.feed.pipeline import Checkpoint, Pipeline
from market.core.alerts import DRAWING
from market.feed.alerting import RELOAD_SECONDS, AlertBook
from market.feed.webhooks import deliver_due

if TYPE_CHECKING:
    from market.models import Symbol

logger = logging.getLogger("market.feed")


LOCK_CHECK_SECONDS = 2.0  # how often the writer checks that it still holds its lock
#: A rebuild chunk before the last: no price alert events or states of its own (those are
#: the last chunk's), only the bar alerts'.
NO_TICK_EVENTS: dict[str, Any] = {"events": (), "states": {}, "done": frozenset()}
REBUILD_CHUNK = 20_000    # journal ticks per transaction when candles are rebuilt after a spill
REPLAY_YIELD = 5_000      # journal ticks replayed on start between yields to the event loop


def _resume_state(symbol: Symbol) -> tuple[dict, tuple[int, float] | None, dict | None]:
    """The stored candles a symbol resumes from, its day-volume baseline and, when its
    candles were written with one, the engine state to restore exactly."""
    state = selectors.symbol_checkpoint_get(symbol=symbol)
    last = selectors.candle_latest_stored(symbol=symbol)
    day_volume = None
    base = min(last) if last else None
    if base is not None:
        session: Session = market().sessions.for_exchange(symbol.exchange)
        label = session.day_of(last[base].time).label
        volume = selectors.candle_day_volume(symbol=symbol, label=label)
        if volume is not None:
            day_volume = (label, volume)
    return last, day_volume, state


class PipelineContext:
    """The ``FeedContext`` a running feed gets: its pipeline, its symbols and its shard."""

    def __init__(
        self, pipeline: Pipeline, source: str, symbol_ids: dict[str, int], shard: Shard | None = None,
        resume_position: Any = None,
    ) -> None:
        self._pipeline = pipeline
        self.resume_position = resume_position  # where the last run's stored input stopped
        self.resume_tick: Tick | None = None  # the last tick the last run journaled (live feeds)
        self._engine = pipeline.engine
        self.source = source
        self.symbol_ids = symbol_ids  # ticker -> primary key, shared with the store
        self.shard = shard
        # The hot path: bound once, called per message.
        self.parse = pipeline.parse
        self.add = pipeline.add
        self.reject_message = pipeline.reject_message
        self.reject = pipeline.reject
        self.flush = pipeline.flush
        self.knows = self._engine.knows

    @property
    def status(self) -> str:
        return self._pipeline.state

    @property
    def position(self) -> Any:
        return self._pipeline.position

    @position.setter
    def position(self, value: Any) -> None:
        """Where the input stands: every tick before it has been handed over, none after."""
        self._pipeline.position = value

    def set_status(self, state: str, detail: str = "") -> None:
        """live | stale | reconnecting | market_closed | token_expired: shown to every browser."""
        self._pipeline.set_status(state, detail)

    def owns(self, ticker: str) -> bool:
        """Whether this process writes ``ticker`` (always, unless symbols are sharded)."""
        return self.shard is None or self.shard.owns(ticker)

    def open_buckets(self, ticker: str) -> dict[str, int | None]:
        """The start of each stored timeframe's open candle of ``ticker`` (None: none open)."""
        out: dict[str, int | None] = {}
        for tf in self._engine.timeframes:
            candle = self._engine.current(ticker, tf)
            out[tf.code] = candle.time if candle is not None else None
        return out

    async def track(self, symbols: list[Symbol], *, restore: bool = True) -> dict[str, Any]:
        """Register symbols with the engine, continuing from what is stored: exactly from the
        engine state stored with the candles when there is one (and ``restore``), else from
        the newest stored candles (the newest 5 s one then counts as closed)."""
        last_by_ticker: dict[str, Any] = {}
        for symbol in symbols:
            if not self.owns(symbol.ticker):
                continue  # another runfeed of this source owns it
            known = self._engine.knows(symbol.ticker)
            last, day_volume, state = await database_sync_to_async(_resume_state)(symbol)
            self.symbol_ids[symbol.ticker] = symbol.pk
            self._engine.register(symbol.ticker, symbol.exchange)
            # A symbol already live here is newer than anything stored: it is left as it is.
            kept = restore and (known or (state is not None and self._engine.restore(symbol.ticker, state)))
            if not kept:
                self._engine.resume(symbol.ticker, last, day_volume=day_volume)
            last_by_ticker[symbol.ticker] = last
        return last_by_ticker

    async def register(self, *, ticker: str, exchange: str, kind: str, name: str = "") -> bool:
        """Add a symbol first seen in the feed; False (and counted) if it cannot be stored."""
        if not self.owns(ticker):
            return False
        try:
            symbol, created = await database_sync_to_async(services.symbol_register)(
                ticker=ticker, exchange=exchange, kind=kind, name=name, source=self.source
            )
        except Exception as exc:  # noqa: BLE001 - e.g. ticker too long for the column
            logger.warning("cannot register symbol %r: %s", ticker[:80], exc)
            return False
        if created:  # nothing stored yet: nothing to resume from
            self.symbol_ids[symbol.ticker] = symbol.pk
            self._engine.register(symbol.ticker, symbol.exchange)
        else:
            await self.track([symbol])
        return True


class Lease:
    """The writer's name and fencing epoch: every store proves it still holds the lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.epoch: int | None = None


def build_pipeline(source: str, *, live: bool, ids: dict[str, int], parser: Parser | None = None,
                   lease: Lease | None = None, journal: TickJournal | None = None) -> Pipeline:
    conf = market()
    engine = CandleEngine(
        conf.plan.stored, conf.sessions, max_ahead=conf.max_ahead_seconds if live else None
    )
    layer = get_channel_layer()
    book = alert_book(engine, conf.plan.stored)

    def store_sync(updates: list[CandleUpdate], checkpoint: Checkpoint, ticks: dict[str, Any] | None) -> int:
        alerts = None if ticks is None else book.checkpoint(updates, ticks)
        if lease is None or lease.epoch is None:
            written = services.candle_upsert_many(updates=updates, symbol_ids=ids)
            if alerts is not None:
                services.alert_checkpoint(**alerts)
        else:
            written = services.candle_store_checkpointed(
                updates=updates, symbol_ids=ids, writer=lease.name, epoch=lease.epoch,
                states=checkpoint.states, position=checkpoint.position, alerts=alerts)
        if alerts is not None:  # committed
            book.stored(alerts, len(ticks["events"]))  # type: ignore[index]
        return written

    async def store(updates: list[CandleUpdate], checkpoint: Checkpoint) -> int:
        # The price alerts' part of the checkpoint (``pipeline.snapshot``) was taken with the
        # engine's, with no await between: both hold the same ticks.
        ticks = checkpoint.extra
        written = await database_sync_to_async(store_sync)(updates, checkpoint, ticks)
        if ticks is not None and (ticks["events"] or book.announcing):
            book.wake.set()  # the transaction has committed: deliver now, not at the next poll
        if book.announcing:  # committed: tell the owners' open pages
            await book.announce(layer)
        if time.monotonic() - book.loaded_at >= RELOAD_SECONDS:
            await alert_reload(book)
        return written

    def rebuild_sync(upto: dict, ticks: dict[str, Any] | None) -> int:
        """Store what the journal holds after the stored checkpoint, up to ``upto``, as a
        restart would: a scratch engine from the stored states, fed the journal's ticks,
        checkpointed every ``REBUILD_CHUNK`` ticks (so memory stays bounded). Bar alerts are
        evaluated on each chunk's candles as on any store's; the price alerts' events and
        states (``ticks``, taken with ``upto``) go with the last chunk, whose position is ``upto``."""
        assert journal is not None and lease is not None
        stored = selectors.writer_position(name=lease.name)
        if not journal.reproduces(stored):
            raise RuntimeError(f"the journal cannot rebuild from the stored position {stored!r}")
        scratch = CandleEngine(conf.plan.stored, conf.sessions)
        written = replayed = 0
        last_seq = stored["seq"]
        for seq, tick in journal.read(stored["seq"], upto["seq"]):
            if not scratch.knows(tick.symbol):
                symbol = selectors.symbol_get(ticker=tick.symbol)
                if symbol is None or tick.symbol not in ids:
                    continue
                scratch.register(symbol.ticker, symbol.exchange)
                last, day_volume, state = _resume_state(symbol)
                if state is None or not scratch.restore(symbol.ticker, state):
                    scratch.resume(symbol.ticker, last, day_volume=day_volume)
            scratch.add(tick)
            replayed += 1
            last_seq = seq
            if replayed % REBUILD_CHUNK == 0:
                states: dict[str, dict] = {}
                updates = scratch.collect(states)
                written += store_sync(updates, Checkpoint(states, {"journal": journal.id, "seq": seq}),
                                      None if ticks is None else NO_TICK_EVENTS)
                logger.info("rebuilding from the journal: %d ticks, %d candles stored so far", replayed, written)
        states = {}
        updates = scratch.collect(states)
        written += store_sync(updates, Checkpoint(states, upto), ticks)
        logger.info("rebuilt from the journal: ticks %d..%d (%d replayed), %d candles",
                    stored["seq"] + 1, max(last_seq, upto["seq"]), replayed, written)
        return written

    async def rebuild(upto: dict, ticks: dict[str, Any] | None) -> int:
        written = await database_sync_to_async(rebuild_sync)(upto, ticks)
        if ticks is not None and (ticks["events"] or book.announcing):
            book.wake.set()  # committed: deliver now
        if book.announcing:
            await book.announce(layer)
        return written

    async def publish(updates: list[CandleUpdate]) -> int:
        return await candles_publish(layer, updates) if layer is not None else 0

    async def report(state: str, detail: str, heartbeat: float) -> None:
        try:
            await database_sync_to_async(services.feed_state_save)(
                source=source, state=state, detail=detail, heartbeat=heartbeat,
                writer=lease.name if lease is not None else None,
                epoch=lease.epoch if lease is not None else None)
        except WriterFenced:
            logger.warning("feed state not saved: %s", "another runfeed holds the writer lock")
            return
        finally:  # browsers hear it even while the database is down
            if layer is not None:
                await status_publish(layer, source=source, state=state, detail=detail, heartbeat=heartbeat)

    pipeline = Pipeline(engine, store=store, publish=publish, source=source, live=live, report=report,
                        conflator=Conflator(conf.max_updates_per_second), parser=parser, journal=journal,
                        rebuild=rebuild if journal is not None else None, buffer_limit=conf.write_buffer_candles)
    pipeline.on_tick = book
    pipeline.snapshot = lambda: book.snapshot_ticks() if book.evaluators or book.pending else None
    return pipeline


def alert_book(engine: CandleEngine, stored: Any) -> AlertBook:
    """The writer's alerts; bar alerts get their history from the stored candles."""
    by_code = {tf.code: tf for tf in stored}

    def history(ticker: str, tf: str, before: int) -> list:
        symbol = selectors.symbol_get(ticker=ticker)
        if symbol is None:
            return []
        return selectors.candle_list(symbol=symbol, tf=by_code[tf], end=before - 1, limit=2000)

    def session_of(ticker: str) -> Session:
        if engine.knows(ticker):
            return engine.session_of(ticker)
        symbol = selectors.symbol_get(ticker=ticker)  # a restart's catch-up: not tracked yet
        return market().sessions.for_exchange(symbol.exchange if symbol is not None else "")

    return AlertBook(session_of=session_of, stored=set(by_code), history=history)


CATCH_UP_LIMIT = 50_000  # stored candles read per alert (a day of 5 s candles is 17,280)


def alert_catch_up(book: AlertBook, *, live: bool) -> int:
    """(At start, before the feed runs.) Evaluate what was stored while no writer evaluated
    it (``AlertBook.catch_up``), record its events marked ``caught_up``, and say so in one
    log line; returns how many events fired."""
    by_code = {tf.code: tf for tf in market().plan.stored}

    def since(ticker: str, tf: str, start: int) -> list:
        symbol = selectors.symbol_get(ticker=ticker)
        if symbol is None or tf not in by_code:
            return []
        return selectors.candle_list(symbol=symbol, tf=by_code[tf], start=start, limit=CATCH_UP_LIMIT)

    checkpoint, alerts, span = book.catch_up(since=since, now=time.time(), live=live)
    if alerts:
        services.alert_checkpoint(**checkpoint)
        book.stored(checkpoint, 0)
    n = len(checkpoint["events"])
    if span is None:
        logger.info("alerts: nothing to catch up")
    else:
        t0, t1 = (time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t)) for t in span)
        logger.info("alerts: caught up %d events for %d alerts over [%s, %s]", n, alerts, t0, t1)
    return n


def alert_read() -> tuple[list[dict[str, Any]], dict[int, tuple[str, list]]]:
    """The active alerts and the current lines of the drawings they follow."""
    alerts = selectors.alert_list_active()
    rows = [selectors.alert_as_dict(a) | {"state": a.state, "user": a.user_id, "created": a.created_at.timestamp()}
            for a in alerts]
    drawings = [int(a.right[len(DRAWING):]) for a in alerts if a.right.startswith(DRAWING)]
    return rows, selectors.drawing_lines(pks=drawings) if drawings else {}


async def alert_reload(book: AlertBook) -> None:
    """Pick up alert and drawing changes: read in a thread, applied in the event loop (where
    the ticks are evaluated). An alert whose drawing was deleted is disabled, and its owner told."""
    try:
        rows, lines = await database_sync_to_async(alert_read)()
    except Exception as exc:  # noqa: BLE001 - database down: keep the alerts as they are
        logger.warning("reloading alerts failed: %s", exc)
        book.loaded_at = time.monotonic()
        return
    book.load(rows, lines)
    if book.missing:
        missing = dict(book.missing)
        try:
            disabled = []
            for reason in set(missing.values()):
                disabled += await database_sync_to_async(services.alert_disable)(
                    pks=[pk for pk, r in missing.items() if r == reason], reason=reason)
        except Exception as exc:  # noqa: BLE001 - tried again at the next reload
            logger.warning("disabling alerts %s failed: %s", sorted(missing), exc)
            return
        for alert in disabled:
            logger.warning("alert %s disabled: %s", alert.pk, alert.reason)
            book.announcing.append((alert.user_id, "alert", {"op": "upsert", "alert": selectors.alert_as_dict(alert)}))


async def run_feed(
    source: str, stop: asyncio.Event, *, standby: bool = False, metrics_port: int | None = None,
    shard: Shard | None = None, **options: Any,
) -> Pipeline:
    """Run ``source`` until it ends or ``stop`` is set; always flushes before returning.

    Holds the source's writer lock throughout: a second runfeed for the same source
    raises ``WriterLockBusy`` or, with ``standby``, waits to take over.
    """
    feed_cls = load_feed(source)
    ids: dict[str, int] = {}
    lease = Lease(source if shard is None else f"{source}.{shard}")
    conf = market()
    journal = None
    if feed_cls.live and conf.journal_dir is not None:
        journal = TickJournal(conf.journal_dir / lease.name, max_bytes=conf.journal_max_bytes)
    pipeline = build_pipeline(source, live=feed_cls.live, ids=ids, parser=feed_cls.parser(), lease=lease,
                              journal=journal)
    if metrics_port:
        serve_pipeline_metrics(pipeline, metrics_port)
        watch_loop(asyncio.get_running_loop())
    lock = WriterLock(lease.name)
    if not await lock.acquire(standby=standby, stop=stop):
        return pipeline  # stopped while waiting as a standby
    try:
        lease.epoch = await database_sync_to_async(services.writer_claim)(name=lease.name)
        position = await database_sync_to_async(selectors.writer_position)(name=lease.name)
        pipeline.resume(position)
        book = pipeline.on_tick if isinstance(pipeline.on_tick, AlertBook) else None
        if book is not None:  # price alerts see the very first tick
            await alert_reload(book)
            try:
                if await database_sync_to_async(alert_catch_up)(book, live=feed_cls.live):
                    book.wake.set()
            except Exception:  # noqa: BLE001 - catching up must not keep the feed from starting
                logger.exception("alerts: catching up on stored candles failed")
                book.evaluators, book.done = {}, set()  # back to the stored states
                await alert_reload(book)
            if book.announcing:
                await book.announce(get_channel_layer())
        ctx = PipelineContext(pipeline, source, ids, shard, resume_position=position)
        journal_task = None
        if journal is not None:
            ctx.resume_tick = await _journal_replay(pipeline, ctx, journal, position)
            journal_task = asyncio.create_task(journal.run(stop))
        feed = feed_cls(ctx, **options)
        flusher = asyncio.create_task(pipeline.run_flusher(market().flush_interval, stop))
        guard = asyncio.create_task(_guard_lock(lock, lease, pipeline, stop))
        hooks = asyncio.create_task(_deliver_webhooks(stop, book.wake if book is not None else asyncio.Event()))
        logger.info("feed %s starting", source)
        try:
            await feed.run(stop)
        finally:
            stop.set()
            await flusher
            await guard
            await hooks
            pipeline.set_status("stopped")
            for _ in range(3):
                await pipeline.flush(force=True)
                if not (pipeline.pending or pipeline.spilled) or pipeline.fenced:
                    break
                await asyncio.sleep(1)
            if journal_task is not None:
                await journal_task  # the last batch synced
            if not pipeline.fenced:  # else the source's state is the new writer's to tell
                await pipeline.report_status(force=True)
                ends = time.monotonic() + FINAL_DELIVERY_SECONDS
                while await _deliver_once() and time.monotonic() < ends:
                    pass  # what the last flushes fired, and any backlog due now
            logger.info("feed %s stopped: %s", source, pipeline.summary())
    finally:
        await asyncio.to_thread(lock.release)
    return pipeline


async def _journal_replay(pipeline: Pipeline, ctx: PipelineContext, journal: TickJournal, position: Any) -> Tick | None:
    """Open the journal and feed the engine the ticks it holds after the stored checkpoint;
    returns the last tick the last run journaled (None: unknown), for the feed to go on from."""
    await asyncio.to_thread(journal.open)
    ours = is_position(position) and position["journal"] == journal.id
    if journal.seq and not ours:
        await asyncio.to_thread(journal.set_aside)  # another database's, or before any checkpoint
        return None
    after = int(position["seq"]) if ours else journal.seq
    if after > journal.seq:  # the stored checkpoint is ahead of what reached the disk (a gap)
        logger.warning("journal ends at tick %d, before the stored checkpoint (%d): continuing after it",
                       journal.seq, after)
        journal.skip_to(after)
        return None
    pipeline.journal = None  # replayed ticks are journaled already
    replayed = skipped = 0
    started = time.monotonic()
    try:
        for _, tick in journal.read(after):
            if not ctx.knows(tick.symbol):
                symbol = await database_sync_to_async(selectors.symbol_get)(ticker=tick.symbol)
                if symbol is None:
                    skipped += 1
                    continue
                await ctx.track([symbol])
            pipeline.add(tick)
            replayed += 1
            if replayed % REPLAY_YIELD == 0:
                logger.info("journal replay: %d of %d ticks", replayed, journal.seq - after)
                await asyncio.sleep(0)
    finally:
        pipeline.journal = journal
    if replayed or skipped:
        logger.info("journal replay: %d ticks after the checkpoint (tick %d) in %.2fs%s", replayed, after,
                    time.monotonic() - started, f", {skipped} of unknown symbols skipped" if skipped else "")
    return journal.last


WEBHOOK_POLL_SECONDS = 1.0
FINAL_DELIVERY_SECONDS = 120.0  # a stopping runfeed delivers what is due for at most this long


async def _deliver_webhooks(stop: asyncio.Event, wake: asyncio.Event) -> None:
    """Send alert events' webhooks and channel messages as they become due: at once when a
    store that recorded events has committed (``wake``, set by the store), and every
    ``WEBHOOK_POLL_SECONDS`` as a safety net (retries come due by time). A wake during a
    round is handed to it (``deliver_due``'s ``wake``): those events leave now, beside the
    round's, not after its slowest receiver."""
    while not stop.is_set():
        waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=WEBHOOK_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if stop.is_set():
            return
        wake.clear()
        joining = threading.Event()
        round_ = asyncio.ensure_future(_deliver_once(joining))
        while not round_.done():
            woken = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait([round_, woken], return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
            if wake.is_set():
                wake.clear()
                joining.set()
        if joining.is_set():  # the round ended before it took them: the next one does
            wake.set()


async def _deliver_once(wake: threading.Event | None = None) -> int:
    """One delivery round; how many were delivered."""
    try:
        # its own thread: a slow receiver must not hold up the candle writes (thread_sensitive)
        return await database_sync_to_async(deliver_due, thread_sensitive=False)(wake=wake)
    except Exception as exc:  # noqa: BLE001 - delivery retries later; the feed goes on
        logger.warning("delivering alert webhooks failed: %s", exc)
        return 0


def _claim(lease: Lease) -> None:
    """A new epoch, set on ``lease`` in the database thread itself: a write queued there just
    after the claim already uses it (set after the await, that write would still carry the
    old epoch and be fenced, and this writer would stop though it holds the lock)."""
    lease.epoch = services.writer_claim(name=lease.name)


async def _guard_lock(lock: WriterLock, lease: Lease, pipeline: Pipeline, stop: asyncio.Event) -> None:
    """Keep holding the writer lock: PostgreSQL drops an advisory lock with its connection
    (a server restart does), so re-take it, with a new epoch, or stop writing."""
    lost = failing = False  # each logged once per outage, not at every check while it lasts
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=LOCK_CHECK_SECONDS)
            return
        except asyncio.TimeoutError:
            pass
        try:
            if not lost and await asyncio.to_thread(lock.held):
                continue
            if not lost:
                logger.warning("writer lock %s was lost (database connection gone); taking it again", lease.name)
                lost = True
            if not await asyncio.to_thread(lock.try_acquire):
                logger.error("another runfeed holds writer lock %s now; this one stops writing", lease.name)
                pipeline.fenced = True
                stop.set()
                return
            await database_sync_to_async(_claim)(lease)
            lost = False
            logger.info("writer lock %s taken again (epoch %d)", lease.name, lease.epoch)
            failing = False
        except Exception as exc:  # noqa: BLE001 - database still down: try again shortly
            level = logging.DEBUG if failing else logging.WARNING
            logger.log(level, "checking writer lock %s failed: %s", lease.name, exc)
            failing = True
