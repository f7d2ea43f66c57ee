"""WebSocket ``/ws/market/``: subscribe to (symbol, timeframe) streams of candles.

Protocol (JSON text frames)::

    client: {"type": "subscribe", "symbol": "NSE:SBIN-EQ", "tf": "1m", "since": 1732000000?}
            {"type": "unsubscribe", "symbol": "NSE:SBIN-EQ", "tf": "1m"}
            {"type": "ack", "seq": n}        (answer to every sync / behind: frames up to n arrived)
    server: {"type": "snapshot", "symbol", "tf", "candles": [...]}
            {"type": "snapshot", "symbol", "tf", "candles": [...], "since": t, "resync": true}
                (catching up a stream: candles from t inclusive, like a resume with since;
                the newest candles instead if too many; a shown bar with a sent time is replaced)
            {"type": "candle", "symbol", "tf", "candle": {...}}
            {"type": "error", "message": "..."}
            {"type": "status", "source", "state", "detail", "heartbeat"}   (on connect, on change,
                and every few seconds: live | stale | reconnecting | market_closed | token_expired | stopped)
            {"type": "sync", "seq": n}       (every quarter window: n frames were sent so far)
            {"type": "behind", "seq": n}     (once per episode: live frames are held from here on)
            {"type": "caught_up"}            (every held stream was resynced; live again)
            close 4008                       (behind and no ack for WS_STALL_SECONDS)

A subscription joins the group before reading its snapshot, so nothing published in
between is lost; live candles older than what was already sent are dropped, so nothing
is sent twice out of order. Derived timeframes listen to their stored base's group.
Groups are joined through the process's ``market.live.relay`` (one layer membership per group
per process); what it hands over while one of our handlers runs waits until that handler
is done, as it would have in our own channel.

Slow clients (market.core.outbox, docs/deploy.md "Slow clients"): daphne buffers what we
send without limit, so every frame is counted against a per-connection window (frames and
bytes; the client acks sync frames). A client past it is told ``behind`` once; its live
frames are then held, only the newest per stream, and when its acks let the window open
again each held stream is sent its frame, or a resync snapshot from the last candle it
was sent, so it ends with exactly the stored series. No ORM on the relay path: only a
resync reads the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, AsyncIterator, Awaitable, Callable

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import InstanceSessionWrapper

from market import selectors
from market.web.access import websocket_refusal
from market.live.broadcast import (
    EVENT_TYPE, STATUS_EVENT, STATUS_GROUP, candle_frame, event_group, group_name, status_frame,
)
from market.conf import market
from market.core.derive import DerivedTracker
from market.core.limits import MessageGate, Verdict
from market.core.outbox import Outbox, SendFrame, resync_plan
from market.core.timeframes import Timeframe, TimeframeError
from market.core.types import Candle
from market.live.demand import ADD, REFRESH, REMOVE, announce_seconds, demand_send, on_demand
from market.metrics import WS_CLIENTS, WS_DELIVERIES, WS_ERRORS, WS_SUBSCRIPTIONS
from market.live.relay import Relay, relay_for
from market.web.validation import MAX_TICKER_LENGTH, is_ticker

logger = logging.getLogger(__name__)

# Defaults only: the limits are settings (MARKET WS_MAX_FRAME_BYTES, WS_MAX_SUBSCRIPTIONS, ...).
MAX_FRAME_BYTES = 4096
MAX_SUBSCRIPTIONS = 50
CLOSE_LIMITS = 4429  # kept breaking limits (README "Limits"); others on the layer are unaffected
CLOSE_TOO_SLOW = 4008  # behind and no ack for WS_STALL_SECONDS (docs/deploy.md "Slow clients")


class ProtocolError(ValueError):
    """A client message we answer with ``{"type": "error"}``."""


class LimitExceeded(ProtocolError):
    """A broken limit: answered with an error carrying ``code``, and a strike (README "Limits")."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def _frame_too_large(text_data: str | None, bytes_data: bytes | None, max_bytes: int) -> bool:
    """Is the frame larger than ``max_bytes`` as it came over the wire (UTF-8 for text)?"""
    if text_data is None:
        return len(bytes_data or b"") > max_bytes
    n = len(text_data)
    if n > max_bytes or n * 4 <= max_bytes:  # a character is 1 to 4 bytes: no encode needed
        return n > max_bytes
    return len(text_data.encode("utf-8", "surrogatepass")) > max_bytes


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


def _load_snapshot(
    ticker: str, tf: Timeframe, since: int | None,
) -> tuple[list[Candle], list[Candle], Any, str | None] | None:
    """Snapshot candles, the base candles of the open derived bucket (for its tracker), the
    symbol's session, and its source if that feed streams on demand (else None).

    Any known symbol of an on-demand source (Finnhub) can be watched; other sources stream
    only their active symbols, so an inactive one of those is "unknown" here."""
    symbol = selectors.symbol_get(ticker=ticker)
    if symbol is None:
        return None
    demand_source = symbol.source if on_demand(symbol.source) else None
    if not symbol.active and demand_source is None:
        return None
    conf = market()
    if since is None:
        candles = selectors.candle_list(symbol=symbol, tf=tf, limit=conf.history_limit)
    else:
        candles = _candles_since(symbol, tf, since)
    base = conf.plan.base_for(tf)
    parts: list[Candle] = []
    if base != tf and candles:
        parts = selectors.candle_list(symbol=symbol, tf=base, start=candles[-1].time, limit=conf.max_limit)
    return candles, parts, conf.sessions.for_exchange(symbol.exchange), demand_source


def _candles_since(symbol: Any, tf: Timeframe, since: int) -> list[Candle]:
    """Candles from ``since`` (inclusive); too far behind for one snapshot, the newest
    instead (the client replaces what it shows)."""
    limit = market().max_limit
    candles = selectors.candle_list(symbol=symbol, tf=tf, start=since, limit=limit)
    if len(candles) == limit:
        candles = selectors.candle_list(symbol=symbol, tf=tf, limit=limit)
    return candles


def _resync_rows(ticker: str, tf: Timeframe, since: int) -> list[dict[str, Any]]:
    """A stream's candles from ``since`` (inclusive), or the newest if that is too many."""
    symbol = selectors.symbol_get(ticker=ticker)
    if symbol is None:
        return []
    return [c.as_dict() for c in _candles_since(symbol, tf, since)]


def _status_key(text: str) -> tuple[str, str, None]:
    """Held status frames: the newest per feed source (3-tuples never clash with streams)."""
    try:
        source = str(orjson.loads(text).get("source", ""))
    except (orjson.JSONDecodeError, AttributeError):
        source = ""
    return ("status", source, None)


class MarketConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        async with self._handling():  # the stored feed states go before any live one
            await self._connect()

    async def _connect(self) -> None:
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        refusal = await websocket_refusal(self.scope)
        if refusal is not None:  # before accept(): daphne answers the handshake with 403
            await self.close(code=refusal)
            return
        await self.accept()
        self.counted = True
        WS_CLIENTS.inc()
        await self._relay.join(STATUS_GROUP, self)
        for row in await database_sync_to_async(selectors.feed_state_list)():
            await self.send(text_data=status_frame(**row))

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            WS_CLIENTS.dec()
            WS_SUBSCRIPTIONS.dec(len(self.subscriptions))
            self.counted = False
        groups = {s.group for s in getattr(self, "subscriptions", {}).values()} | {STATUS_GROUP}
        for group in groups:  # (a refused socket joined none: leave() is then a no-op)
            await self._relay.leave(group, self)
        await self._demand_close()

    # -- the process's relay (market.live.relay) ------------------------------------------
    @cached_property
    def _relay(self) -> Relay:
        return relay_for(self.channel_layer, event_group)

    async def relay(self, event: dict[str, Any]) -> None:
        """An event of a group we joined. Relaying needs no database, so it runs here, not
        through Channels' dispatch (and its per-message aclose_old_connections() hop)."""
        if self._holding:
            self._held_events.append(event)
            return
        await self._relayed(event)

    async def _relayed(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == EVENT_TYPE:
            await self.candle_update(event)
        elif kind == STATUS_EVENT:
            await self._relay_status(event["text"])

    _holding = 0

    @cached_property
    def _held_events(self) -> list[dict[str, Any]]:
        return []

    @contextlib.asynccontextmanager
    async def _handling(self) -> AsyncIterator[None]:
        """Events relayed while one of our handlers runs (a subscribe reads the database)
        wait, then go in order: as if they had queued in our own channel."""
        self._holding += 1
        try:
            yield
        finally:
            held = self._held_events
            try:
                while held:
                    batch = held[:]
                    held.clear()
                    for event in batch:
                        await self._relayed(event)
            finally:
                self._holding -= 1

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        async with self._handling():
            await self._receive(text_data, bytes_data)

    # -- client messages -----------------------------------------------------------
    def _gate(self) -> MessageGate:
        """This connection's message-rate gate (README "Limits"), made on first use."""
        gate = getattr(self, "_message_gate", None)
        if gate is None:
            conf = market()
            gate = self._message_gate = MessageGate(
                rate=conf.ws_messages_per_second, burst=conf.ws_message_burst,
                strikes_to_close=conf.ws_strikes_to_close, strike_window=conf.ws_strike_window,
            )
        return gate

    async def _receive(self, text_data: str | None, bytes_data: bytes | None) -> None:
        gate = self._gate()
        if gate.closing:
            return  # closed for breaking limits: what was still in flight is dropped
        verdict = gate.admit()  # before any parsing: a flood costs one token check a frame
        if verdict is not Verdict.ALLOW:
            rate = market().ws_messages_per_second
            await self._limit_broken(verdict, f"too many messages: at most {rate:g} a second", "rate_limited")
            return
        try:
            max_bytes = market().ws_max_frame_bytes
            if _frame_too_large(text_data, bytes_data, max_bytes):
                raise LimitExceeded(f"message larger than {max_bytes} bytes", code="frame_too_large")
            if text_data is None:
                raise ProtocolError("send JSON text frames")
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
            elif kind == "ack":
                await self._ack(msg)
            else:
                raise ProtocolError("type must be subscribe, unsubscribe, ack or ping")
        except LimitExceeded as exc:
            await self._limit_broken(gate.strike(), str(exc), exc.code,
                                     msg if "msg" in locals() and isinstance(msg, dict) else None)
        except ProtocolError as exc:
            await self._error(str(exc), msg if "msg" in locals() and isinstance(msg, dict) else None)
        except Exception:  # noqa: BLE001 - e.g. the database is down: answer, keep the socket
            logger.exception("failed to handle a client message")
            await self._error("server error; try again shortly")

    async def _limit_broken(self, verdict: Verdict, message: str, code: str,
                            request: dict[str, Any] | None = None) -> None:
        """Answer a broken limit; close the connection (4429) when the client keeps at it."""
        if verdict is Verdict.CLOSE:
            await self._error(f"{message}; closing the connection", request, code=code)
            await self.close(code=CLOSE_LIMITS)
        else:
            await self._error(message, request, code=code)

    async def _error(self, message: str, request: dict[str, Any] | None = None, *, code: str | None = None) -> None:
        WS_ERRORS.inc()
        payload: dict[str, Any] = {"type": "error", "message": message}
        if code is not None:  # a broken limit: rate_limited | frame_too_large | too_many_subscriptions
            payload["code"] = code
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
        max_subscriptions = market().ws_max_subscriptions
        if key not in self.subscriptions and len(self.subscriptions) >= max_subscriptions:
            raise LimitExceeded(f"at most {max_subscriptions} subscriptions per connection",
                                code="too_many_subscriptions")
        base = market().plan.base_for(tf)
        group = group_name(ticker, base.code)
        # Join first, then read: anything published meanwhile is held until we are done.
        await self._relay.join(group, self)
        try:
            loaded = await database_sync_to_async(_load_snapshot)(ticker, tf, since)
        except Exception:
            await self._leave_unless_subscribed(group)
            raise
        if loaded is None:
            await self._leave_unless_subscribed(group)
            raise ProtocolError(f"unknown symbol {ticker}")
        candles, parts, session, demand_source = loaded
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
        self._flow_subscribed(key)
        await self.send(text_data=orjson.dumps(
            {"type": "snapshot", "symbol": ticker, "tf": tf.code, "candles": rows}
        ).decode())
        if demand_source is not None:
            await self._demand_add(ticker, demand_source)

    async def _unsubscribe(self, msg: dict[str, Any]) -> None:
        ticker, tf = self._target(msg)
        sub = self.subscriptions.pop((ticker, tf.code), None)
        if sub is None:
            raise ProtocolError(f"not subscribed to {ticker} {tf.code}")
        WS_SUBSCRIPTIONS.dec()
        await self._leave_unless_subscribed(sub.group)
        if not any(s.ticker == ticker for s in self.subscriptions.values()):
            await self._demand_remove(ticker)

    async def _leave_unless_subscribed(self, group: str) -> None:
        if not any(s.group == group for s in self.subscriptions.values()):
            await self._relay.leave(group, self)

    # -- symbols on demand (market.live.demand) ---------------------------------------------
    # The feed of an on-demand source learns which tickers this connection watches: one
    # demand.add per ticker (not per timeframe), demand.remove when its last subscription
    # goes, and a demand.refresh of all of them every ANNOUNCE seconds so that a crashed
    # worker's demand expires on the feed side.
    def _demanded(self) -> dict[str, str]:
        demanded = getattr(self, "_demand_tickers", None)
        if demanded is None:
            demanded = self._demand_tickers = {}
        return demanded

    async def _demand_add(self, ticker: str, source: str) -> None:
        demanded = self._demanded()
        if ticker in demanded:
            return
        demanded[ticker] = source
        await demand_send(self.channel_layer, ADD, source=source, reply=self.channel_name, tickers=[ticker])
        task = getattr(self, "_demand_task", None)
        if task is None or task.done():
            self._demand_task = asyncio.create_task(self._demand_refresh_loop())

    async def _demand_remove(self, ticker: str) -> None:
        source = self._demanded().pop(ticker, None)
        if source is not None:
            await demand_send(self.channel_layer, REMOVE, source=source, reply=self.channel_name,
                              tickers=[ticker])

    async def _demand_refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(announce_seconds())
            by_source: dict[str, list[str]] = {}
            for ticker, source in self._demanded().items():
                by_source.setdefault(source, []).append(ticker)
            for source, tickers in by_source.items():
                try:
                    await demand_send(self.channel_layer, REFRESH, source=source,
                                      reply=self.channel_name, tickers=tickers)
                except Exception:  # noqa: BLE001 - the layer is briefly down: next round
                    logger.warning("cannot re-announce demand for %d symbol(s)", len(tickers))

    async def _demand_close(self) -> None:
        task = getattr(self, "_demand_task", None)
        if task is not None:
            task.cancel()
        for ticker in list(self._demanded()):
            try:
                await self._demand_remove(ticker)
            except Exception:  # noqa: BLE001 - the feed forgets it after its TTL anyway
                logger.warning("cannot withdraw demand for %s", ticker)

    async def demand_refused(self, event: dict[str, Any]) -> None:
        """The feed cannot stream a ticker we asked for (vendor limit): tell the browser,
        once per subscribed timeframe. The subscription stays: history is shown, and live
        candles follow if a slot frees up."""
        ticker = event.get("ticker")
        if ticker not in self._demanded():
            return
        message = str(event.get("message") or f"{ticker} is not streaming live: the vendor's symbol "
                                                 "limit is reached")
        for sub in list(self.subscriptions.values()):
            if sub.ticker == ticker:
                WS_ERRORS.inc()
                await self.send(text_data=orjson.dumps({
                    "type": "error", "code": "symbol_limit", "symbol": ticker, "tf": sub.tf.code,
                    "message": message,
                }).decode())

    # -- group messages ------------------------------------------------------------
    async def candle_update(self, event: dict[str, Any]) -> None:
        ticker, base_code = event["symbol"], event["tf"]
        box = self.outbox
        for key, sub in self.subscriptions.items():
            if sub.ticker != ticker or sub.base != base_code:
                continue
            if sub.tracker is None:
                candle = event["candle"]
                revised = bool(event.get("revised"))
                stale = sub.is_stale(candle)
                if stale and not revised:
                    continue
                text = event["text"]
            else:
                derived = sub.tracker.update(Candle.from_dict(event["candle"]))
                if derived is None:
                    continue
                candle = derived.as_dict()
                if sub.is_stale(candle):
                    continue
                stale = revised = False
                text = candle_frame(ticker, sub.tf.code, candle)
            if not box.room():
                await self._hold(key, text, candle, revised=revised)
                continue
            if not stale:
                sub.mark(candle)
            await self._push(text)
            WS_DELIVERIES.inc()

    # -- flow control (market.core.outbox) -------------------------------------------
    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(limits=market().ws_flow)

    def _flow_subscribed(self, key: tuple[str, str]) -> None:
        """A (re)subscription's snapshot supersedes whatever was held for the stream."""
        self.outbox.discard(key)

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """Every frame (snapshots, answers, status) occupies the same unbounded daphne buffer:
        count it against the window."""
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        if not close:
            await self._count(len(text_data) if text_data is not None else len(bytes_data or b""))

    @cached_property
    def _wire_send(self) -> Callable[[dict[str, Any]], Awaitable[None]]:
        """daphne's send, past channels' session wrapper: that only acts on HTTP responses,
        yet reads the session through lazy proxies on every frame (a tenth of relay CPU)."""
        send = self.base_send
        while isinstance(getattr(send, "__self__", None), InstanceSessionWrapper):
            send = send.__self__.real_send
        return send

    async def _push(self, text: str) -> None:
        """The relay's send: straight to the ASGI server, counted."""
        await self._wire_send({"type": "websocket.send", "text": text})
        await self._count(len(text))

    async def _count(self, nbytes: int) -> None:
        await self._ask_ack(self.outbox.sent(nbytes))

    async def _ask_ack(self, seq: int | None) -> None:
        """Ask the client to ack frames up to ``seq`` (nothing when the outbox says no)."""
        if seq is not None:
            await self._wire_send({"type": "websocket.send", "text": '{"type":"sync","seq":%d}' % seq})

    async def _relay_status(self, text: str) -> None:
        if self.outbox.room():
            await self._push(text)
        else:  # latest wins per feed source
            await self._hold(_status_key(text), text, {"time": 0, "ticks": 0}, revised=True)

    async def _hold(self, key: Any, text: str, candle: dict[str, Any], *, revised: bool) -> None:
        box = self.outbox
        if box.closed:
            return
        now = time.monotonic()
        if box.hold(key, text, candle["time"], candle.get("ticks", 0), now, revised=revised, extra=candle):
            box.mark()
            logger.info("websocket client %s is behind (%d frames / %d bytes unacked); holding its live frames",
                        self.channel_name, box.unacked, box.unacked_bytes)
            await self._wire_send({"type": "websocket.send",
                                  "text": '{"type":"behind","seq":%d}' % box.seq})
        elif box.stalled(now):
            box.closed = True
            logger.warning("closing websocket client %s: behind for %.0f s without an ack",
                           self.channel_name, now - box.last_progress)
            await self.close(code=CLOSE_TOO_SLOW, reason="too far behind: no ack")
            return
        if len(box.held) > market().ws_max_subscriptions + 8:  # streams unsubscribed while behind
            for stale_key in [k for k in box.held if len(k) == 2 and k not in self.subscriptions]:
                box.discard(stale_key)

    async def _ack(self, msg: dict[str, Any]) -> None:
        """``{"type": "ack", "seq": n}``; a client whose window opens again is caught up."""
        try:
            resume = self.outbox.ack(msg.get("seq"), time.monotonic())  # type: ignore[arg-type]
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None
        if resume:
            await self._resync()

    async def _resync(self) -> None:
        """Send held streams while the window has room: each its held frame, or a snapshot
        from the last candle it was sent (read off the relay path, only here)."""
        box = self.outbox
        while box.window_open():
            item = box.next_held()
            if item is None:
                break
            key, held = item
            if len(key) == 3:  # a feed status frame
                await self._push(held.text)
                continue
            sub = self.subscriptions.get(key)
            if sub is None:  # unsubscribed meanwhile
                continue
            plan = resync_plan(held, sub.last_time)
            if isinstance(plan, SendFrame):
                sub.mark(plan.extra)
                await self._push(plan.text)
                WS_DELIVERIES.inc()
                continue
            # Nothing else runs on this consumer while we read: live updates published
            # meanwhile wait in its channel and are filtered against the new mark after.
            try:
                rows = await database_sync_to_async(_resync_rows)(sub.ticker, sub.tf, plan.since)
            except Exception:
                box.held[key] = held  # (the database is down) kept for the next attempt
                raise
            if rows:
                sub.mark(rows[-1])
            await self._push(orjson.dumps({
                "type": "snapshot", "symbol": sub.ticker, "tf": sub.tf.code, "candles": rows,
                "since": plan.since, "resync": True,
            }).decode())
        if box.caught_up():
            logger.info("websocket client %s caught up", self.channel_name)
            await self._wire_send({"type": "websocket.send", "text": '{"type":"caught_up"}'})
        elif box.behind:
            await self._ask_ack(box.mark())  # the window closed again: give the client a number to ack
