"""Market Pulse on the server: the candle stream in, pulse frames and stress events out.

``run_pulse(stop)`` is the whole service, one asyncio task:

1. the watched universe is the active symbols (or ``PULSE["SYMBOLS"]``), re-read every
   ``REFRESH_SECONDS``; each is warmed up from its stored 1m candles (no events for
   the past);
2. a channel of its own joins each symbol's 1m candle group (``broadcast.group_name(
   ticker, base of 1m)``), so it sees exactly what browsers see, from whichever
   ``runfeed`` publishes: in-process layer (embedded) or Redis (production);
3. every ``PUBLISH_INTERVAL`` (1 s) the pure ``market.core.pulse.PulseEngine`` recomputes
   the symbols that changed; one frame (every mover, the correlation card and the new
   stress events) is serialised once and sent to the group ``pulse`` that
   ``market.pulse.consumers.PulseConsumer`` relays; new events are stored
   (``PulseEvent``) and, with ``PULSE["WEBHOOK_URL"]``, POSTed as JSON.

Run it as ``manage.py runpulse`` (production, beside runfeed, over Redis), or in-process
in embedded mode: ``asyncio.ensure_future(run_pulse(stop))`` next to ``run_feed`` in
``runfeed --serve`` (the in-process layer only reaches tasks of the same process).
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import orjson
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from market import selectors, services
from market.live.broadcast import EVENT_TYPE, group_name
from market.conf import market, pulse_conf, pulse_settings
from market.core.pulse import PulseConfig, PulseEngine, snapshot
from market.core.timeframes import Timeframe

if TYPE_CHECKING:
    from market.models import Symbol

logger = logging.getLogger("market.pulse")

PULSE_GROUP = "pulse"
PULSE_EVENT = "pulse.frame"
REFRESH_SECONDS = 30.0
WEBHOOK_TIMEOUT = 5.0


# -- the universe and its warm-up (through market.selectors) ------------------------------
def pulse_universe() -> list[Symbol]:
    wanted = set(pulse_settings().get("SYMBOLS") or ())
    symbols = selectors.symbol_list(active=True)
    return [s for s in symbols if s.ticker in wanted] if wanted else symbols


def pulse_warmup_rows(*, symbol: Symbol, limit: int) -> list[tuple[int, float]]:
    candles = selectors.candle_list(symbol=symbol, tf=Timeframe.parse("1m"), limit=limit)
    return [(c.time, c.close) for c in candles]


def webhook_post(url: str, event: dict[str, Any]) -> int:
    request = urllib.request.Request(url, data=orjson.dumps(event), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "TickChart-Pulse/1"})
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310 - configured URL
        return response.status


# -- the service ---------------------------------------------------------------------------
class PulseService:
    def __init__(self, layer: Any, *, config: PulseConfig | None = None, interval: float | None = None,
                 webhook_url: str | None = None, base: str | None = None,
                 clock: Any = time.time) -> None:
        raw = pulse_settings()
        self.layer = layer
        self.engine = PulseEngine(config or pulse_conf())
        self.interval = float(interval if interval is not None else raw.get("PUBLISH_INTERVAL", 1.0))
        self.webhook_url = raw.get("WEBHOOK_URL", "") if webhook_url is None else webhook_url
        self.base_setting = raw.get("CORR_BASE", "") if base is None else base
        self.clock = clock
        self.channel: str | None = None
        self.groups: dict[str, str] = {}
        self.updates = 0
        self.frames = 0
        self.events_stored = 0
        self.webhooks_sent = 0
        self.webhook_failures = 0
        self._webhook_tasks: set[asyncio.Task] = set()

    @property
    def base(self) -> str | None:
        watched = self.engine.watched()
        if self.base_setting and self.base_setting in watched:
            return self.base_setting
        return min(watched) if watched else None

    async def refresh_universe(self) -> int:
        """Watch (and warm up) symbols that became active, drop deactivated ones; returns how many were added."""
        symbols = await database_sync_to_async(pulse_universe)()
        current = {s.ticker for s in symbols}
        for ticker in [t for t in self.groups if t not in current]:
            await self.layer.group_discard(self.groups.pop(ticker), self.channel)
            self.engine.unwatch(ticker)
            logger.info("pulse: no longer watching %s", ticker)
        base_tf = market().plan.base_for(Timeframe.parse("1m"))
        keep = self.engine.config.history_points
        added = 0
        for s in symbols:
            if s.ticker in self.groups:
                continue
            group = group_name(s.ticker, base_tf.code)
            # Join first, then read the history: an update published meanwhile waits in our channel.
            await self.layer.group_add(group, self.channel)
            self.engine.watch(s.ticker, s.kind)
            for t, close in await database_sync_to_async(pulse_warmup_rows)(symbol=s, limit=keep):
                self.engine.update(s.ticker, t, close)
            self.groups[s.ticker] = group  # watched once warmed up (a failed read is retried next refresh)
            added += 1
        if added:
            self.engine.step(self.clock(), emit=False)  # history is not news: no events for it
            logger.info("pulse: watching %d symbols (+%d)", len(self.groups), added)
        return added

    def on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") != EVENT_TYPE:
            return
        candle = message.get("candle") or {}
        try:
            if self.engine.update(message["symbol"], float(candle["time"]), float(candle["close"])):
                self.updates += 1
        except (KeyError, TypeError, ValueError):
            logger.debug("pulse: ignored a malformed candle message")

    async def tick(self) -> dict[str, Any] | None:
        """One publishing step: recompute, publish one frame, store and deliver new events."""
        now = self.clock()
        movers, events = self.engine.step(now)
        if not movers and not events:
            return None
        base = self.base
        frame = snapshot(self.engine.movers(), self.engine.correlations(base) if base else None, now)
        frame["events"] = [e.as_dict() for e in events]
        await self.layer.group_send(PULSE_GROUP, {"type": PULSE_EVENT, "text": orjson.dumps(frame).decode()})
        self.frames += 1
        if events:
            try:
                self.events_stored += await database_sync_to_async(services.pulse_event_create_many)(events=events)
            except Exception as exc:  # noqa: BLE001 - the live frame went out; storage is best effort
                logger.error("pulse: storing %d events failed: %s", len(events), exc)
            if self.webhook_url:
                for e in events:
                    task = asyncio.create_task(self._deliver(e.as_dict()))
                    self._webhook_tasks.add(task)
                    task.add_done_callback(self._webhook_tasks.discard)
        return frame

    async def _deliver(self, event: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(webhook_post, self.webhook_url, event)
            self.webhooks_sent += 1
        except Exception as exc:  # noqa: BLE001 - an alert endpoint being down must not stop the pulse
            self.webhook_failures += 1
            logger.warning("pulse: webhook delivery failed: %s", exc)

    async def _read(self) -> None:
        assert self.channel is not None
        while True:
            self.on_message(await self.layer.receive(self.channel))

    async def run(self, stop: asyncio.Event) -> None:
        if self.layer is None:
            logger.error("pulse: no channel layer configured")
            return
        if "InMemory" in type(self.layer).__name__:
            logger.info("pulse: in-process channel layer: only candles published in this process are seen")
        self.channel = await self.layer.new_channel("pulse.")
        await self.refresh_universe()
        reader = asyncio.create_task(self._read())
        last_refresh = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
                except asyncio.TimeoutError:
                    pass
                if reader.done():
                    reader.result()  # re-raise what killed the reader
                try:
                    await self.tick()
                    if time.monotonic() - last_refresh >= REFRESH_SECONDS:
                        last_refresh = time.monotonic()
                        await self.refresh_universe()
                except Exception:  # noqa: BLE001 - keep pulsing; the next second retries
                    logger.exception("pulse: a step failed")
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            for group in self.groups.values():
                try:
                    await self.layer.group_discard(group, self.channel)
                except Exception:  # noqa: BLE001 - shutting down
                    pass
            if self._webhook_tasks:
                await asyncio.wait(self._webhook_tasks, timeout=WEBHOOK_TIMEOUT)
            logger.info("pulse stopped: %d updates, %d frames, %d events stored, %d webhooks (%d failed)",
                        self.updates, self.frames, self.events_stored, self.webhooks_sent, self.webhook_failures)


async def run_pulse(stop: asyncio.Event, **options: Any) -> PulseService:
    """Run the Market Pulse until ``stop`` is set (``runpulse``, or in-process beside ``run_feed``)."""
    service = PulseService(get_channel_layer(), **options)
    await service.run(stop)
    return service
