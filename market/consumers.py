"""WebSocket ``/ws/market/``: subscribe to (symbol, timeframe) streams of candles.

Protocol (JSON text frames)::

    client: {"type": "subscribe", "symbol": "NSE:SBIN-EQ", "tf": "1m", "since": 1732000000?}
            {"type": "unsubscribe", "symbol": "NSE:SBIN-EQ", "tf": "1m"}
    server: {"type": "snapshot", "symbol", "tf", "candles": [...]}
            {"type": "candle", "symbol", "tf", "candle": {...}}
            {"type": "error", "message": "..."}
            {"type": "status", "source", "state", "detail", "heartbeat"}   (on connect, on change,
                and every few seconds: live | stale | reconnecting | market_closed | token_expired | stopped)

A subscription joins the group before reading its snapshot, so nothing published in
between is lost; live candles older than what was already sent are dropped, so nothing
is sent twice out of order. Derived timeframes listen to their stored base's group.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from market import selectors
from market.broadcast import EVENT_TYPE, STATUS_EVENT, STATUS_GROUP, candle_frame, group_name, status_frame
from market.conf import market
from market.core.derive import DerivedTracker
from market.core.timeframes import Timeframe, TimeframeError
from market.core.types import Candle
from market.metrics import WS_CLIENTS, WS_DELIVERIES, WS_ERRORS, WS_SUBSCRIPTIONS
from market.validation import MAX_TICKER_LENGTH, is_ticker

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4096
MAX_SUBSCRIPTIONS = 50


class ProtocolError(ValueError):
    """A client message we answer with ``{"type": "error"}``."""


@dataclass
class Subscription:
    ticker: str
    tf: Timeframe
    base: str  # the stored timeframe whose group feeds it (``tf`` itself unless derived)
    group: str
    tracker: DerivedTracker | None = None  # set for derived timeframes
    last_time: int = -1
    last_ticks: int = -1

    def is_stale(self, candle: dict[str, Any]) -> bool:
        t = candle["time"]
        return t < self.last_time or (t == self.last_time and candle.get("ticks", 0) < self.last_ticks)

    def mark(self, candle: dict[str, Any]) -> None:
        self.last_time = candle["time"]
        self.last_ticks = candle.get("ticks", 0)


def _load_snapshot(ticker: str, tf: Timeframe, since: int | None) -> tuple[list[Candle], list[Candle], Any] | None:
    """Snapshot candles, plus the base candles of the open derived bucket (for its tracker)."""
    symbol = selectors.symbol_get(ticker=ticker)
    if symbol is None or not symbol.active:
        return None
    conf = market()
    limit = conf.max_limit if since is not None else conf.history_limit
    candles = selectors.candle_list(symbol=symbol, tf=tf, start=since, limit=limit)
    if since is not None and len(candles) == limit:
        # Too far behind for one snapshot: send the newest instead; the client replaces.
        candles = selectors.candle_list(symbol=symbol, tf=tf, limit=limit)
    base = conf.plan.base_for(tf)
    parts: list[Candle] = []
    if base != tf and candles:
        parts = selectors.candle_list(symbol=symbol, tf=base, start=candles[-1].time, limit=conf.max_limit)
    return candles, parts, conf.sessions.for_exchange(symbol.exchange)


class MarketConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        await self.accept()
        self.counted = True
        WS_CLIENTS.inc()
        await self.channel_layer.group_add(STATUS_GROUP, self.channel_name)
        for row in await database_sync_to_async(selectors.feed_state_list)():
            await self.send(text_data=status_frame(**row))

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            WS_CLIENTS.dec()
            WS_SUBSCRIPTIONS.dec(len(self.subscriptions))
            self.counted = False
        groups = {s.group for s in getattr(self, "subscriptions", {}).values()} | {STATUS_GROUP}
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Relaying needs no database: skip Channels' per-message aclose_old_connections()
        # thread hop, about half the CPU of a busy fan-out.
        kind = message["type"]
        if kind == EVENT_TYPE:
            await self.candle_update(message)
        elif kind == STATUS_EVENT:
            await self.send(text_data=message["text"])
        else:
            await super().dispatch(message)

    # -- client messages -----------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            if text_data is None:
                raise ProtocolError("send JSON text frames")
            if len(text_data) > MAX_FRAME_BYTES:
                raise ProtocolError(f"message larger than {MAX_FRAME_BYTES} bytes")
            try:
                msg = orjson.loads(text_data)
            except orjson.JSONDecodeError:
                raise ProtocolError("invalid JSON") from None
            if not isinstance(msg, dict):
                raise ProtocolError("a message is a JSON object")
            kind = msg.get("type")
            if kind == "subscribe":
                await self._subscribe(msg)
            elif kind == "unsubscribe":
                await self._unsubscribe(msg)
            elif kind == "ping":
                await self.send(text_data='{"type":"pong"}')
            else:
                raise ProtocolError("type must be subscribe, unsubscribe or ping")
        except ProtocolError as exc:
            await self._error(str(exc), msg if "msg" in locals() and isinstance(msg, dict) else None)
        except Exception:  # noqa: BLE001 - e.g. the database is down: answer, keep the socket
            logger.exception("failed to handle a client message")
            await self._error("server error; try again shortly")

    async def _error(self, message: str, request: dict[str, Any] | None = None) -> None:
        WS_ERRORS.inc()
        payload: dict[str, Any] = {"type": "error", "message": message}
        if request is not None:
            for key in ("symbol", "tf"):
                if isinstance(request.get(key), str) and len(request[key]) <= MAX_TICKER_LENGTH:
                    payload[key] = request[key]
        await self.send(text_data=orjson.dumps(payload).decode())

    @staticmethod
    def _target(msg: dict[str, Any]) -> tuple[str, Timeframe]:
        ticker = msg.get("symbol")
        if not is_ticker(ticker):
            raise ProtocolError("symbol must be a ticker such as NSE:SBIN-EQ")
        try:
            tf = Timeframe.parse(msg.get("tf"))  # type: ignore[arg-type]
        except TimeframeError as exc:
            raise ProtocolError(str(exc)) from None
        return ticker, tf

    async def _subscribe(self, msg: dict[str, Any]) -> None:
        ticker, tf = self._target(msg)
        since = msg.get("since")
        if since is not None and (type(since) is not int or not 0 <= since < 10**10):
            raise ProtocolError("since must be epoch seconds (an integer)")
        key = (ticker, tf.code)
        if key not in self.subscriptions and len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise ProtocolError(f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        base = market().plan.base_for(tf)
        group = group_name(ticker, base.code)
        # Join first, then read: anything published meanwhile waits in our channel.
        await self.channel_layer.group_add(group, self.channel_name)
        loaded = await database_sync_to_async(_load_snapshot)(ticker, tf, since)
        if loaded is None:
            if not any(s.group == group for s in self.subscriptions.values()):
                await self.channel_layer.group_discard(group, self.channel_name)
            raise ProtocolError(f"unknown symbol {ticker}")
        candles, parts, session = loaded
        sub = Subscription(ticker=ticker, tf=tf, base=base.code, group=group)
        if base != tf:
            sub.tracker = DerivedTracker(tf, session)
            for part in parts:
                sub.tracker.update(part)
        rows = [c.as_dict() for c in candles]
        if rows:
            sub.mark(rows[-1])
        if key not in self.subscriptions:
            WS_SUBSCRIPTIONS.inc()
        self.subscriptions[key] = sub
        await self.send(text_data=orjson.dumps(
            {"type": "snapshot", "symbol": ticker, "tf": tf.code, "candles": rows}
        ).decode())

    async def _unsubscribe(self, msg: dict[str, Any]) -> None:
        ticker, tf = self._target(msg)
        sub = self.subscriptions.pop((ticker, tf.code), None)
        if sub is None:
            raise ProtocolError(f"not subscribed to {ticker} {tf.code}")
        WS_SUBSCRIPTIONS.dec()
        if not any(s.group == sub.group for s in self.subscriptions.values()):
            await self.channel_layer.group_discard(sub.group, self.channel_name)

    # -- group messages ------------------------------------------------------------
    async def candle_update(self, event: dict[str, Any]) -> None:
        ticker, base_code = event["symbol"], event["tf"]
        for sub in self.subscriptions.values():
            if sub.ticker != ticker or sub.base != base_code:
                continue
            if sub.tracker is None:
                if sub.is_stale(event["candle"]):
                    if not event.get("revised"):
                        continue
                else:
                    sub.mark(event["candle"])
                await self.send(text_data=event["text"])
                WS_DELIVERIES.inc()
            else:
                derived = sub.tracker.update(Candle.from_dict(event["candle"]))
                if derived is None:
                    continue
                candle = derived.as_dict()
                if sub.is_stale(candle):
                    continue
                sub.mark(candle)
                await self.send(text_data=candle_frame(ticker, sub.tf.code, candle))
                WS_DELIVERIES.inc()
