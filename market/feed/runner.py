"""Wires a feed to the engine, the database and the channel layer (used by ``runfeed``)."""

from __future__ import annotations

import asyncio
import logging
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
from market.core.types import CandleUpdate, WriterFenced
from market.feed.base import Parser
from market.feed.registry import load_feed
from market.core.shards import Shard
from market.feed.locks import WriterLock
from market.metrics import serve_pipeline_metrics
from market.feed.pipeline import Checkpoint, Pipeline
from market.feed.alerting import RELOAD_SECONDS, AlertBook
from market.feed.webhooks import deliver_due

if TYPE_CHECKING:
    from market.models import Symbol

logger = logging.getLogger("market.feed")


LOCK_CHECK_SECONDS = 2.0  # how often the writer checks that it still holds its lock


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
                   lease: Lease | None = None) -> Pipeline:
    conf = market()
    engine = CandleEngine(
        conf.plan.stored, conf.sessions, max_ahead=conf.max_ahead_seconds if live else None
    )
    layer = get_channel_layer()
    book = alert_book(engine, conf.plan.stored)

    def store_sync(updates: list[CandleUpdate], checkpoint: Checkpoint) -> int:
        alerts = alert_step(book, updates)
        if lease is None or lease.epoch is None:
            written = services.candle_upsert_many(updates=updates, symbol_ids=ids)
            if alerts is not None:
                services.alert_checkpoint(**alerts)
        else:
            written = services.candle_store_checkpointed(
                updates=updates, symbol_ids=ids, writer=lease.name, epoch=lease.epoch,
                states=checkpoint.states, position=checkpoint.position, alerts=alerts)
        if alerts is not None:
            book.stored(len(alerts["events"]))
        return written

    async def store(updates: list[CandleUpdate], checkpoint: Checkpoint) -> int:
        written = await database_sync_to_async(store_sync)(updates, checkpoint)
        if book.announcing:  # committed: tell the owners' open pages
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
                        conflator=Conflator(conf.max_updates_per_second), parser=parser)
    pipeline.on_tick = book
    return pipeline


def alert_book(engine: CandleEngine, stored: Any) -> AlertBook:
    """The writer's alerts; bar alerts get their history from the stored candles."""
    by_code = {tf.code: tf for tf in stored}

    def history(ticker: str, tf: str, before: int) -> list:
        symbol = selectors.symbol_get(ticker=ticker)
        if symbol is None:
            return []
        return selectors.candle_list(symbol=symbol, tf=by_code[tf], end=before - 1, limit=2000)

    return AlertBook(session_of=engine.session_of, stored=set(by_code), history=history)


def alert_load(book: AlertBook) -> None:
    book.load([selectors.alert_as_dict(a) | {"state": a.state, "user": a.user_id}
               for a in selectors.alert_list_active()])


def alert_step(book: AlertBook, updates: list[CandleUpdate]) -> dict[str, Any] | None:
    """(In the store's thread.) Reload the active alerts now and then, evaluate the
    candles being stored, and say what to checkpoint with them (None: no alerts)."""
    if not book.loaded_at or time.monotonic() - book.loaded_at >= RELOAD_SECONDS:
        alert_load(book)
    if not book.evaluators and not book.pending:
        return None
    book.candles(updates)
    events, states, done = book.checkpoint()
    return {"events": events, "states": states, "done": done}


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
    pipeline = build_pipeline(source, live=feed_cls.live, ids=ids, parser=feed_cls.parser(), lease=lease)
    if metrics_port:
        serve_pipeline_metrics(pipeline, metrics_port)
    lock = WriterLock(lease.name)
    if not await lock.acquire(standby=standby, stop=stop):
        return pipeline  # stopped while waiting as a standby
    try:
        lease.epoch = await database_sync_to_async(services.writer_claim)(name=lease.name)
        position = await database_sync_to_async(selectors.writer_position)(name=lease.name)
        pipeline.position = position
        if isinstance(pipeline.on_tick, AlertBook):  # price alerts see the very first tick
            await database_sync_to_async(alert_load)(pipeline.on_tick)
        ctx = PipelineContext(pipeline, source, ids, shard, resume_position=position)
        feed = feed_cls(ctx, **options)
        flusher = asyncio.create_task(pipeline.run_flusher(market().flush_interval, stop))
        guard = asyncio.create_task(_guard_lock(lock, lease, pipeline, stop))
        hooks = asyncio.create_task(_deliver_webhooks(stop))
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
                if not pipeline.pending or pipeline.fenced:
                    break
                await asyncio.sleep(1)
            if not pipeline.fenced:  # else the source's state is the new writer's to tell
                await pipeline.report_status(force=True)
                await _deliver_once()  # what the last flushes fired
            logger.info("feed %s stopped: %s", source, pipeline.summary())
    finally:
        await asyncio.to_thread(lock.release)
    return pipeline


WEBHOOK_POLL_SECONDS = 1.0


async def _deliver_webhooks(stop: asyncio.Event) -> None:
    """Send alert events' webhooks as they become due (market.feed.webhooks)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=WEBHOOK_POLL_SECONDS)
        except asyncio.TimeoutError:
            await _deliver_once()


async def _deliver_once() -> None:
    try:
        # its own thread: a slow receiver must not hold up the candle writes (thread_sensitive)
        await database_sync_to_async(deliver_due, thread_sensitive=False)()
    except Exception as exc:  # noqa: BLE001 - delivery retries later; the feed goes on
        logger.warning("delivering alert webhooks failed: %s", exc)


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
