"""Wires a feed to the engine, the database and the channel layer (used by ``runfeed``)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from market import selectors, services
from market.live.broadcast import candles_publish, status_publish
from market.conf import market
from market.core.conflate import Conflator
from market.core.engine import CandleEngine
from market.core.sessions import Session
from market.core.types import CandleUpdate
from market.feed.base import Parser
from market.feed.registry import load_feed
from market.core.shards import Shard
from market.feed.locks import WriterLock
from market.metrics import serve_pipeline_metrics
from market.feed.pipeline import Pipeline

if TYPE_CHECKING:
    from market.models import Symbol

logger = logging.getLogger("market.feed")


def _resume_state(symbol: Symbol) -> tuple[dict, tuple[int, float] | None]:
    last = selectors.candle_latest_stored(symbol=symbol)
    day_volume = None
    base = min(last) if last else None
    if base is not None:
        session: Session = market().sessions.for_exchange(symbol.exchange)
        label = session.day_of(last[base].time).label
        volume = selectors.candle_day_volume(symbol=symbol, label=label)
        if volume is not None:
            day_volume = (label, volume)
    return last, day_volume


class PipelineContext:
    """The ``FeedContext`` a running feed gets: its pipeline, its symbols and its shard."""

    def __init__(
        self, pipeline: Pipeline, source: str, symbol_ids: dict[str, int], shard: Shard | None = None
    ) -> None:
        self._pipeline = pipeline
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

    def _track_sync(self, symbol: Symbol) -> tuple[Symbol, dict, tuple[int, float] | None]:
        return (symbol, *_resume_state(symbol))

    async def track(self, symbols: list[Symbol]) -> dict[str, Any]:
        """Register symbols with the engine, resuming from their stored candles."""
        last_by_ticker: dict[str, Any] = {}
        for symbol in symbols:
            if not self.owns(symbol.ticker):
                continue  # another runfeed of this source owns it
            _, last, day_volume = await database_sync_to_async(self._track_sync)(symbol)
            self.symbol_ids[symbol.ticker] = symbol.pk
            self._engine.register(symbol.ticker, symbol.exchange)
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


def build_pipeline(source: str, *, live: bool, ids: dict[str, int], parser: Parser | None = None) -> Pipeline:
    conf = market()
    engine = CandleEngine(
        conf.plan.stored, conf.sessions, max_ahead=conf.max_ahead_seconds if live else None
    )
    layer = get_channel_layer()

    async def store(updates: list[CandleUpdate]) -> int:
        return await database_sync_to_async(services.candle_upsert_many)(updates=updates, symbol_ids=ids)

    async def publish(updates: list[CandleUpdate]) -> int:
        return await candles_publish(layer, updates) if layer is not None else 0

    async def report(state: str, detail: str, heartbeat: float) -> None:
        await database_sync_to_async(services.feed_state_save)(
            source=source, state=state, detail=detail, heartbeat=heartbeat)
        if layer is not None:
            await status_publish(layer, source=source, state=state, detail=detail, heartbeat=heartbeat)

    return Pipeline(engine, store=store, publish=publish, source=source, live=live, report=report,
                    conflator=Conflator(conf.max_updates_per_second), parser=parser)


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
    pipeline = build_pipeline(source, live=feed_cls.live, ids=ids, parser=feed_cls.parser())
    if metrics_port:
        serve_pipeline_metrics(pipeline, metrics_port)
    lock = WriterLock(source if shard is None else f"{source}.{shard}")
    if not await lock.acquire(standby=standby, stop=stop):
        return pipeline  # stopped while waiting as a standby
    try:
        ctx = PipelineContext(pipeline, source, ids, shard)
        feed = feed_cls(ctx, **options)
        flusher = asyncio.create_task(pipeline.run_flusher(market().flush_interval, stop))
        logger.info("feed %s starting", source)
        try:
            await feed.run(stop)
        finally:
            stop.set()
            await flusher
            pipeline.set_status("stopped")
            for _ in range(3):
                await pipeline.flush()
                if not pipeline.pending:
                    break
                await asyncio.sleep(1)
            await pipeline.report_status(force=True)
            logger.info("feed %s stopped: %s", source, pipeline.summary())
    finally:
        await asyncio.to_thread(lock.release)
    return pipeline
