"""WebSocket ``/ws/market/``: subscribe to (ticker, timeframe) streams of candles.

The messages and frames are ``market.web.protocol`` (schemas in protocol.schema.json)::

    client: subscribe {symbol, tf, since?, studies?} | unsubscribe {symbol, tf} | ack {seq} | ping
    server: snapshot {symbol, tf, candles, studies?}   on subscribe (studies: rows as the REST API)
            snapshot {..., since, resync: true}        catching up a stream: candles from
                since inclusive (the newest instead if too many; a shown bar is replaced)
            candle {symbol, tf, candle, studies?}      live (studies: each value for this candle;
                a revised older candle of a stream with studies comes as a resync snapshot from it)
            error {message, code, symbol?, tf?}        (code, protocol.ERROR_CODES: bad_request |
                bad_timeframe | unknown_symbol | not_subscribed | bad_study | server_error |
                rate_limited | frame_too_large | too_many_subscriptions | symbol_limit)
            status {source, state, detail, heartbeat}  on connect, on change, every few seconds
            sync {seq}                                 every quarter window: n frames sent so far
            behind {seq}                               once per episode: live frames are held
            caught_up                                  every held stream was resynced
            pong
            marker {op, marker}                        a marker of a symbol this socket streams (issue 16)
            (a signed-in user's own events: drawing, alert_event, ... through market.live.broadcast.user_group)
            close 4008                                 behind and no ack for WS_STALL_SECONDS
            close 4429                                 kept breaking limits

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

Layer outages (market.live.relay): when the process's relay finds the channel layer lost
messages (Redis down), the browser is told (a status frame per feed: ``reconnecting``,
"live connection to the feed interrupted"); when the layer delivers again, each stream is
sent a resync snapshot from the database from a point before anything could have been
lost (``Subscription.resume_from``), then the feeds' stored states ("... restored").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Hashable, NamedTuple

import orjson
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import InstanceSessionWrapper

from market import selectors
from market.conf import market
from market.core.derive import DerivedTracker
from market.core.limits import MessageGate, Verdict
from market.core.outbox import Held, Outbox, SendFrame, resync_plan
from market.core.studies import Study, StudyError, parse_studies
from market.core.studies_live import REGISTRY, LiveStudies
from market.core.timeframes import Timeframe
from market.core.types import Candle
from market.live.broadcast import (
    EVENT_TYPE, MARKER_EVENT, STATUS_EVENT, STATUS_GROUP, USER_EVENT, event_group, group_name, marker_group,
    user_group,
)
from market.live.demand import ADD, REFRESH, REMOVE, announce_seconds, demand_send, on_demand
from market.live.relay import LOST, RESTORED, Relay, relay_for
from market.live.snapshots import LOOKUPS, Served, Snapshots, lookup, pooled, snapshots_for
from market.metrics import WS_CLIENTS, WS_DELIVERIES, WS_ERRORS, WS_SUBSCRIPTIONS, watch_loop
from market.web.access import user_is_reader, websocket_accept
from market.web.protocol import (
    CAUGHT_UP, CLOSE_LIMITS, CLOSE_TOO_SLOW, PONG, LimitExceeded, ProtocolError, behind_frame, candle_frame,
    candles_frame, echo, error_frame, read_batch, read_message, read_since, read_target, resync_frame,
    snapshot_frame, status_frame, symbol_limit_frame, sync_frame,
)

logger = logging.getLogger(__name__)

StreamKey = tuple[str, str]  # (ticker, timeframe code)

CLOSE_TRY_AGAIN = 1011  # a catch-up after a layer outage failed (the database): the page resumes with since
INTERRUPTED = "live connection to the feed interrupted; the chart catches up when it is back"
RESTORED_DETAIL = "live connection to the feed restored"


class Live(NamedTuple):
    """A live frame for one subscription: its text and the candle it carries."""

    text: str
    candle: dict[str, Any]
    revised: bool  # a correction: delivered even if older than what was sent
    stale: bool  # older than what was sent (so it does not move the mark)


@dataclass
class Subscription:
    ticker: str
    tf: Timeframe
    base: str  # the stored timeframe whose group feeds it (``tf`` itself unless derived)
    group: str
    tracker: DerivedTracker | None = None  # set for derived timeframes
    last_time: int = -1
    last_ticks: int = -1
    # For a catch-up after a layer outage (market.live.relay's epochs): ``epoch`` of the
    # last mark, and ``safe_time``, the mark as it was when that epoch began (or the last
    # candle read from the database, when that is newer).
    epoch: int = 0
    safe_time: int = -1
    # Studies (issue 11): the parsed list, and the process's shared live state for them.
    study_list: tuple[Study, ...] = ()
    studies: LiveStudies | None = None
    studies_key: Hashable = None

    def is_stale(self, candle: dict[str, Any]) -> bool:
        t = candle["time"]
        return t < self.last_time or (t == self.last_time and candle.get("ticks", 0) < self.last_ticks)

    def mark(self, candle: dict[str, Any], epoch: int) -> None:
        """``candle`` was sent (relayed) during the relay's ``epoch``."""
        if epoch != self.epoch:
            self.safe_time, self.epoch = self.last_time, epoch
        self.last_time = candle["time"]
        self.last_ticks = candle.get("ticks", 0)

    def mark_read(self, candle: dict[str, Any], epoch: int) -> None:
        """``candle``, the newest of a database read, was sent: whatever the layer loses
        after that read is this candle or newer."""
        self.mark(candle, epoch)
        self.safe_time = self.last_time

    def resume_from(self, epoch: int) -> int:
        """Where a catch-up starts when the layer may have lost messages since the relay's
        ``epoch`` began: what this stream had been sent by then (-1: nothing)."""
        return self.safe_time if self.epoch == epoch else self.last_time

    def track(self, parts: list[Candle], session: Any) -> None:
        """A derived stream's tracker, from the base candles of its open bucket."""
        self.tracker = DerivedTracker(self.tf, session)
        for part in parts:
            self.tracker.update(part)

    def live(self, event: dict[str, Any]) -> Live | None:
        """What a candle event of our base group means for this stream (None: nothing)."""
        if self.tracker is None:  # a stored timeframe: the event's own pre-serialised frame
            candle = event["candle"]
            revised = bool(event.get("revised"))
            stale = self.is_stale(candle)
            if stale and not revised:
                return None
            return Live(event["text"], candle, revised, stale)
        derived = self.tracker.update(Candle.from_dict(event["candle"]))
        if derived is None:
            return None
        candle = derived.as_dict()
        if self.is_stale(candle):
            return None
        return Live(candle_frame(self.ticker, self.tf.code, candle), candle, revised=False, stale=False)

    def with_studies(self, live: Live) -> Live:
        """``live`` with its studies' values (one computation per update per process); a
        revised older candle becomes a resync snapshot from it, revising the values after."""
        studies = self.studies
        assert studies is not None
        candle = live.candle
        window = studies.window
        older = bool(window) and candle["time"] < window[-1].time
        values = studies.update(Candle.from_dict(candle))
        if older and values is not None:
            rows = studies.rows(candle["time"])
            t = candle["time"]
            candles = [c.as_dict() for c in window if c.time >= t]
            text = resync_frame(self.ticker, self.tf.code, candles, t, rows)
            return Live(text, candles[-1], live.revised, live.stale)
        text = candle_frame(self.ticker, self.tf.code, candle, values if values is not None else {})
        return Live(text, candle, live.revised, live.stale)


# -- database reads (in a worker thread) ------------------------------------------------
def _symbol(ticker: str) -> Any:
    """``selectors.symbol_get``, reused for the lookup TTL (market.live.snapshots.Lookups)."""
    return lookup(("symbol", ticker), lambda: selectors.symbol_get(ticker=ticker))


def _session(exchange: str) -> Any:
    return lookup(("session", exchange), lambda: selectors.session_for(exchange))


def _load_snapshot(
    ticker: str, tf: Timeframe, since: int | None,
) -> tuple[list[Candle], list[Candle], Any, str | None] | None:
    """Snapshot candles, the base candles of the open derived bucket (for its tracker), the
    symbol's session, and its source if that feed streams on demand (else None).

    Any known symbol of an on-demand source (Finnhub) can be watched; other sources stream
    only their active symbols, so an inactive one of those is "unknown" here."""
    symbol = _symbol(ticker)
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
    return candles, parts, _session(symbol.exchange), demand_source


def _load_studies(
    ticker: str, tf: Timeframe, candles: list[Candle], studies: list[Study],
) -> tuple[dict[str, list[dict[str, Any]]], list[Candle], Any, bool]:
    """The snapshot's study rows (``selectors.candle_studies``, as the REST API), and the
    candles a live window starts with: the warm-up the studies need, then ``candles``."""
    from market.core.studies import session_start, warmup

    symbol = _symbol(ticker)
    session = _session(symbol.exchange)
    no_volume = symbol.kind == symbol.Kind.INDEX
    rows = selectors.candle_studies(symbol=symbol, tf=tf, candles=candles, studies=studies)
    if not candles:
        return rows, [], session, no_volume
    count = warmup(studies)
    since = session_start(candles[0].time, tf, session) if any(s.session for s in studies) else None
    if count is None:
        since = None
    warm = selectors.candle_list_before(symbol=symbol, tf=tf, before=candles[0].time, count=count, since=since)
    return rows, [*warm, *candles], session, no_volume


def _read_studies(msg: dict[str, Any]) -> list[Study]:
    raw = msg.get("studies")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise StudyError("studies must be a list of study keys")
    return parse_studies(raw)


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
    symbol = _symbol(ticker)
    if symbol is None:
        return []
    return [c.as_dict() for c in _candles_since(symbol, tf, since)]


# -- helpers ---------------------------------------------------------------------------
def _release_studies(sub: Subscription) -> None:
    if sub.studies is not None:
        REGISTRY.release(sub.studies_key)
        sub.studies = None


async def _resync_studies(sub: Subscription, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]] | None:
    """A resync snapshot's study rows (as on subscribe); None without studies."""
    if not sub.study_list:
        return None
    candles = [Candle.from_dict(r) for r in rows]
    if sub.studies is not None:  # the shared window may have missed what the layer lost
        sub.studies.merge(candles)
    study_rows, *_ = await database_sync_to_async(_load_studies)(sub.ticker, sub.tf, candles, list(sub.study_list))
    return study_rows


def _status_key(text: str) -> tuple[str, str, None]:
    """Held status frames: the newest per feed source (3-tuples never clash with streams)."""
    try:
        source = str(orjson.loads(text).get("source", ""))
    except (orjson.JSONDecodeError, AttributeError):
        source = ""
    return ("status", source, None)


def _past_session_wrapper(send: Callable[[dict[str, Any]], Awaitable[None]]) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """daphne's send, past channels' session wrapper: that only acts on HTTP responses,
    yet reads the session through lazy proxies on every frame (a tenth of relay CPU)."""
    while isinstance(getattr(send, "__self__", None), InstanceSessionWrapper):
        send = send.__self__.real_send
    return send


def _message_gate() -> MessageGate:
    """A connection's message-rate gate (README "Limits")."""
    conf = market()
    return MessageGate(rate=conf.ws_messages_per_second, burst=conf.ws_message_burst,
                       strikes_to_close=conf.ws_strikes_to_close, strike_window=conf.ws_strike_window)


class MarketConsumer(AsyncWebsocketConsumer):
    # Set in connect(): they need the layer and the ASGI send channels gives us after __init__.
    _relay: Relay
    _snapshots: Snapshots
    _wire_send: Callable[[dict[str, Any]], Awaitable[None]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subscriptions: dict[StreamKey, Subscription] = {}
        # The same subscriptions by the (ticker, stored timeframe) whose group feeds them: a
        # candle event is matched with a lookup, not a scan of every subscription (a socket
        # of a 4-chart layout and a watchlist has 24; bench/browsers.py).
        self._fed: dict[tuple[str, str], dict[StreamKey, Subscription]] = {}
        self.counted = False  # in WS_CLIENTS (an accepted socket)
        self.gate = _message_gate()
        self.outbox = Outbox(limits=market().ws_flow)  # flow control (market.core.outbox)
        # Events the relay hands over while one of our handlers runs (see _handling).
        self._holding = 0
        self._held_events: deque[dict[str, Any]] = deque()
        # The last status of each feed source (for the outage notice), and the catch-up task.
        self._feeds: dict[str, float] = {}  # source -> heartbeat
        self._catch_up_task: asyncio.Task | None = None
        # Tickers watched on demand, and their source (market.live.demand), and the task
        # that re-announces them.
        self._demanded: dict[str, str] = {}
        self._demand_task: asyncio.Task | None = None
        # A signed-in user's own group (their drawings, alerts): None for visitors.
        self._user_group: str | None = None
        # Batching (hello {batch: true}): candle frames of one flush, sent as one frame.
        self.batch = False
        self._batched: list[str] = []
        self._flush_asked = False  # the relay calls flush() soon

    async def dispatch(self, message: dict[str, Any]) -> None:
        """channels' dispatch without its ``aclose_old_connections()`` before every message:
        that is a hop to the one thread-sensitive thread per connect and per client message,
        and every database read here already closes stale connections in its own thread
        (``database_sync_to_async``, ``market.live.snapshots.pooled``)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # -- the connection ------------------------------------------------------------
    async def connect(self) -> None:
        self._relay = relay_for(self.channel_layer, event_group)
        self._snapshots = snapshots_for(self._relay)
        LOOKUPS.set(self._snapshots.lookups)  # this socket's task and the reads it starts
        self._wire_send = _past_session_wrapper(self.base_send)
        async with self._handling():  # the stored feed states go before any live one
            await self._connect()

    async def _connect(self) -> None:
        if not await websocket_accept(self):
            return
        self.counted = True
        WS_CLIENTS.inc()
        watch_loop(asyncio.get_running_loop())
        await self._relay.join(STATUS_GROUP, self)
        user = self.scope.get("user")
        if user_is_reader(user):
            self._user_group = user_group(user.pk)
            await self._relay.join(self._user_group, self)
        for row in await self._feed_states():
            self._feeds[row["source"]] = row["heartbeat"]
            await self.send(text_data=status_frame(**row))

    async def _feed_states(self) -> list[dict[str, Any]]:
        """The stored feed states, reused for the lookup TTL (a status event drops them)."""
        lookups = self._snapshots.lookups
        hit, rows = lookups.peek("feed_states")
        if hit:
            return rows
        return await pooled(lookups.get, "feed_states", selectors.feed_state_list)

    async def disconnect(self, code: int) -> None:
        self._batched.clear()
        if self.counted:
            WS_CLIENTS.dec()
            WS_SUBSCRIPTIONS.dec(len(self.subscriptions))
            self.counted = False
        for sub in self.subscriptions.values():
            _release_studies(sub)
        groups = {s.group for s in self.subscriptions.values()} | {STATUS_GROUP}
        if self._user_group is not None:
            groups.add(self._user_group)
        groups |= {marker_group(s.ticker) for s in self.subscriptions.values()}
        for group in groups:  # (a refused socket joined none: leave() is then a no-op)
            await self._relay.leave(group, self)
        await self._demand_close()
        if self._catch_up_task is not None:
            self._catch_up_task.cancel()

    # -- the process's relay (market.live.relay) ------------------------------------------
    async def relay(self, event: dict[str, Any]) -> None:
        """An event of a group we joined. Relaying needs no database, so it runs here, not
        through Channels' dispatch (and its per-message aclose_old_connections() hop)."""
        if self._holding:
            self._held_events.append(event)
        elif event["type"] == EVENT_TYPE:  # the hot path: one await less per delivery
            await self.candle_update(event)
        else:
            await self._relayed(event)

    async def _relayed(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == EVENT_TYPE:
            await self.candle_update(event)
        elif kind == STATUS_EVENT:
            self._note_status(event["text"])
            await self._relay_status(event["text"])
        elif kind in (USER_EVENT, MARKER_EVENT):  # the user's own news; a symbol's markers
            await self.send(text_data=event["text"])
        elif kind == LOST:
            await self._layer_lost()
        elif kind == RESTORED:
            self._layer_restored(event["epoch"])

    @contextlib.asynccontextmanager
    async def _handling(self) -> AsyncIterator[None]:
        """Events relayed while one of our handlers runs (a subscribe reads the database)
        wait, then go in order: as if they had queued in our own channel."""
        self._holding += 1
        try:
            yield
        finally:
            await self._release()

    async def _release(self) -> None:
        """End one hold; the last one to end hands on what waited, in order (a catch-up
        task may hold alongside a handler)."""
        held = self._held_events
        try:
            while held and self._holding == 1:
                await self._relayed(held.popleft())
        finally:
            self._holding -= 1

    # -- client messages -----------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        async with self._handling():
            await self._receive(text_data, bytes_data)

    async def _receive(self, text_data: str | None, bytes_data: bytes | None) -> None:
        if self.gate.closing:
            return  # closed for breaking limits: what was still in flight is dropped
        verdict = self.gate.admit()  # before any parsing: a flood costs one token check a frame
        if verdict is not Verdict.ALLOW:
            rate = market().ws_messages_per_second
            await self._limit_broken(verdict, f"too many messages: at most {rate:g} a second", "rate_limited")
            return
        msg: dict[str, Any] | None = None  # the request, once it parsed (errors echo it)
        try:
            msg = read_message(text_data, bytes_data, market().ws_max_frame_bytes)
            await self._handle(msg)
        except LimitExceeded as exc:
            await self._limit_broken(self.gate.strike(), str(exc), exc.code, msg)
        except StudyError as exc:
            await self._error(str(exc), msg, code="bad_study")
        except ProtocolError as exc:
            await self._error(str(exc), msg, code=exc.code)
        except Exception:  # noqa: BLE001 - e.g. the database is down: answer, keep the socket
            logger.exception("failed to handle a client message")
            await self._error("server error; try again shortly", code="server_error")

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "subscribe":
            await self._subscribe(msg)
        elif kind == "unsubscribe":
            await self._unsubscribe(msg)
        elif kind == "ping":
            await self.send(text_data=PONG)
        elif kind == "ack":
            await self._ack(msg)
        elif kind == "hello":
            self.batch = read_batch(msg)
        else:
            raise ProtocolError("type must be subscribe, unsubscribe, ack, ping or hello")

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
        await self.send(text_data=error_frame(message, code=code, **echo(request)))

    # -- subscribe / unsubscribe -----------------------------------------------------
    async def _subscribe(self, msg: dict[str, Any]) -> None:
        ticker, tf = read_target(msg)
        since = read_since(msg)
        study_list = _read_studies(msg)
        key = (ticker, tf.code)
        self._check_room_for(key)
        base = market().plan.base_for(tf)
        group = group_name(ticker, base.code)
        loaded = await self._join_and_load(group, ticker, tf, since)
        sub = Subscription(ticker=ticker, tf=tf, base=base.code, group=group)
        if isinstance(loaded, Served):  # from memory (market.live.snapshots): a stored timeframe
            rows, demand_source = loaded.rows, loaded.demand_source
            candles = [Candle.from_dict(r) for r in rows] if study_list else []
        else:
            candles, parts, session, demand_source = loaded
            if base != tf:
                sub.track(parts, session)
            rows = [c.as_dict() for c in candles]
        study_rows = None
        if study_list:
            study_rows, window, session, no_volume = await database_sync_to_async(_load_studies)(
                ticker, tf, candles, study_list)
            sub.study_list = tuple(study_list)
            sub.studies_key = (ticker, tf.code, tuple(s.key for s in study_list))
            made: list[LiveStudies] = []

            def make() -> LiveStudies:
                made.append(LiveStudies(study_list, window, tf=tf, session=session, no_volume=no_volume))
                return made[0]

            sub.studies = REGISTRY.acquire(sub.studies_key, make)
            if not made:  # shared with another socket: take in what this read saw
                sub.studies.merge(window)
        if rows:
            sub.mark_read(rows[-1], self._relay.epoch)
        self._add(key, sub)
        await self._relay.join(marker_group(ticker), self)  # markers of the symbol, once per socket
        text = loaded.text if isinstance(loaded, Served) and loaded.text and study_rows is None else None
        await self.send(text_data=text or snapshot_frame(ticker, tf.code, rows, study_rows))
        if demand_source is not None:
            await self._demand_add(ticker, demand_source)

    def _check_room_for(self, key: StreamKey) -> None:
        max_subscriptions = market().ws_max_subscriptions
        if key not in self.subscriptions and len(self.subscriptions) >= max_subscriptions:
            raise LimitExceeded(f"at most {max_subscriptions} subscriptions per connection",
                                code="too_many_subscriptions")

    async def _join_and_load(
        self, group: str, ticker: str, tf: Timeframe, since: int | None,
    ) -> Served | tuple[list[Candle], list[Candle], Any, str | None]:
        """Join first, then read (or take the process's newest candles, which the relay kept
        up to date): anything published meanwhile is held until we are done."""
        await self._relay.join(group, self)
        try:
            loaded = await self._snapshots.snapshot(
                ticker, tf, since, lambda: pooled(_load_snapshot, ticker, tf, since))
        except Exception:
            await self._leave_unless_subscribed(group)
            raise
        if loaded is None:
            await self._leave_unless_subscribed(group)
            raise ProtocolError(f"unknown symbol {ticker}", code="unknown_symbol")
        return loaded

    def _add(self, key: StreamKey, sub: Subscription) -> None:
        old = self.subscriptions.get(key)
        if old is None:
            WS_SUBSCRIPTIONS.inc()
        else:
            _release_studies(old)
        self.subscriptions[key] = sub
        self._fed.setdefault((sub.ticker, sub.base), {})[key] = sub
        self.outbox.discard(key)  # the (re)subscription's snapshot supersedes what was held

    async def _unsubscribe(self, msg: dict[str, Any]) -> None:
        ticker, tf = read_target(msg)
        sub = self.subscriptions.pop((ticker, tf.code), None)
        if sub is None:
            raise ProtocolError(f"not subscribed to {ticker} {tf.code}", code="not_subscribed")
        self._unfeed((ticker, tf.code), sub)
        WS_SUBSCRIPTIONS.dec()
        _release_studies(sub)
        await self._leave_unless_subscribed(sub.group)
        if not any(s.ticker == ticker for s in self.subscriptions.values()):
            await self._relay.leave(marker_group(ticker), self)
            await self._demand_remove(ticker)

    def _unfeed(self, key: StreamKey, sub: Subscription) -> None:
        fed = self._fed.get((sub.ticker, sub.base))
        if fed is not None:
            fed.pop(key, None)
            if not fed:
                del self._fed[(sub.ticker, sub.base)]

    async def _leave_unless_subscribed(self, group: str) -> None:
        if not any(s.group == group for s in self.subscriptions.values()):
            await self._relay.leave(group, self)

    # -- symbols on demand (market.live.demand) ---------------------------------------------
    # The feed of an on-demand source learns which tickers this connection watches: one
    # demand.add per ticker (not per timeframe), demand.remove when its last subscription
    # goes, and a demand.refresh of all of them every ANNOUNCE seconds so that a crashed
    # worker's demand expires on the feed side.
    async def _demand_add(self, ticker: str, source: str) -> None:
        if ticker in self._demanded:
            return
        self._demanded[ticker] = source
        await self._demand_send(ADD, source, [ticker])
        if self._demand_task is None or self._demand_task.done():
            self._demand_task = asyncio.create_task(self._demand_refresh_loop())

    async def _demand_remove(self, ticker: str) -> None:
        source = self._demanded.pop(ticker, None)
        if source is not None:
            await self._demand_send(REMOVE, source, [ticker])

    async def _demand_send(self, kind: str, source: str, tickers: list[str]) -> None:
        await demand_send(self.channel_layer, kind, source=source, reply=self.channel_name, tickers=tickers)

    async def _demand_refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(announce_seconds())
            by_source: dict[str, list[str]] = {}
            for ticker, source in self._demanded.items():
                by_source.setdefault(source, []).append(ticker)
            for source, tickers in by_source.items():
                try:
                    await self._demand_send(REFRESH, source, tickers)
                except Exception:  # noqa: BLE001 - the layer is briefly down: next round
                    logger.warning("cannot re-announce demand for %d symbol(s)", len(tickers))

    async def _demand_close(self) -> None:
        if self._demand_task is not None:
            self._demand_task.cancel()
        for ticker in list(self._demanded):
            try:
                await self._demand_remove(ticker)
            except Exception:  # noqa: BLE001 - the feed forgets it after its TTL anyway
                logger.warning("cannot withdraw demand for %s", ticker)

    async def demand_refused(self, event: dict[str, Any]) -> None:
        """The feed cannot stream a ticker we asked for (vendor limit): tell the browser,
        once per subscribed timeframe. The subscription stays: history is shown, and live
        candles follow if a slot frees up."""
        ticker = event.get("ticker")
        if ticker not in self._demanded:
            return
        message = str(event.get("message") or f"{ticker} is not streaming live: the vendor's symbol "
                                                 "limit is reached")
        for sub in list(self.subscriptions.values()):
            if sub.ticker == ticker:
                WS_ERRORS.inc()
                await self.send(text_data=symbol_limit_frame(ticker, sub.tf.code, message))

    # -- group messages ------------------------------------------------------------
    async def candle_update(self, event: dict[str, Any]) -> None:
        fed = self._fed.get((event["symbol"], event["tf"]))
        if not fed:
            return
        for key, sub in fed.items():
            live = sub.live(event)
            if live is None:
                continue
            if sub.studies is not None:
                live = sub.with_studies(live)
            if not self.outbox.room():
                await self._hold(key, live.text, live.candle, revised=live.revised)
                continue
            if not live.stale:
                sub.mark(live.candle, self._relay.epoch)
            text = live.text  # _push inlined: this runs once per socket per candle
            if self.batch:
                self._batched.append(text)
                if not self._flush_asked:
                    self._flush_asked = True
                    self._relay.flush_later(self)
            else:
                await self._wire_send({"type": "websocket.send", "text": text})
            seq = self.outbox.sent(len(text))  # _count, awaiting only when a sync is due
            if seq is not None:
                await self._ask_ack(seq)
            WS_DELIVERIES.inc()

    # -- batching (hello {"batch": true}) ------------------------------------------------
    async def flush(self) -> None:
        """The relay's call, a moment after the first candle of a burst was held back
        (``market.live.relay.BATCH_SECONDS``): the burst of one runfeed flush goes as one frame."""
        self._flush_asked = False
        await self._send_batch()

    async def _send_batch(self) -> None:
        """The candle frames waiting, as one frame (one alone as it is); every other frame
        goes out after them, so the order on the wire is unchanged."""
        batched = self._batched
        if not batched:
            return
        texts = batched[:]
        batched.clear()
        text = texts[0] if len(texts) == 1 else candles_frame(texts)
        await self._wire_send({"type": "websocket.send", "text": text})

    def _note_status(self, text: str) -> None:
        """Remember each feed's heartbeat (what an outage notice is sent for)."""
        try:
            status = orjson.loads(text)
            self._feeds[str(status["source"])] = status["heartbeat"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass

    async def _relay_status(self, text: str) -> None:
        if self.outbox.room():
            await self._push(text)
        else:  # latest wins per feed source
            await self._hold(_status_key(text), text, {"time": 0, "ticks": 0}, revised=True)

    # -- flow control (market.core.outbox) -------------------------------------------
    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """Every frame (snapshots, answers, status) occupies the same unbounded daphne buffer:
        count it against the window."""
        if self._batched:
            await self._send_batch()
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        if not close:
            await self._count(len(text_data) if text_data is not None else len(bytes_data or b""))

    async def _push(self, text: str) -> None:
        """The relay's send: straight to the ASGI server, counted."""
        await self._send_uncounted(text)
        await self._count(len(text))

    async def _send_uncounted(self, text: str) -> None:
        """Flow-control frames (sync, behind, caught_up) are not counted themselves."""
        if self._batched:
            await self._send_batch()
        await self._wire_send({"type": "websocket.send", "text": text})

    async def _count(self, nbytes: int) -> None:
        await self._ask_ack(self.outbox.sent(nbytes))

    async def _ask_ack(self, seq: int | None) -> None:
        """Ask the client to ack frames up to ``seq`` (nothing when the outbox says no)."""
        if seq is not None:
            await self._send_uncounted(sync_frame(seq))

    async def _hold(self, key: Hashable, text: str, candle: dict[str, Any], *, revised: bool) -> None:
        box = self.outbox
        if box.closed:
            return
        now = time.monotonic()
        if box.hold(key, text, candle["time"], candle.get("ticks", 0), now, revised=revised, extra=candle):
            await self._fall_behind()
        elif box.stalled(now):
            await self._close_stalled(now)
            return
        if len(box.held) > market().ws_max_subscriptions + 8:  # streams unsubscribed while behind
            for stale_key in [k for k in box.held if len(k) == 2 and k not in self.subscriptions]:
                box.discard(stale_key)

    async def _fall_behind(self) -> None:
        box = self.outbox
        box.mark()
        logger.info("websocket client %s is behind (%d frames / %d bytes unacked); holding its live frames",
                    self.channel_name, box.unacked, box.unacked_bytes)
        await self._send_uncounted(behind_frame(box.seq))

    async def _close_stalled(self, now: float) -> None:
        self.outbox.closed = True
        logger.warning("closing websocket client %s: behind for %.0f s without an ack",
                       self.channel_name, now - self.outbox.last_progress)
        await self.close(code=CLOSE_TOO_SLOW, reason="too far behind: no ack")

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
            await self._resync_one(*item)
        if box.caught_up():
            logger.info("websocket client %s caught up", self.channel_name)
            await self._send_uncounted(CAUGHT_UP)
        elif box.behind:
            await self._ask_ack(box.mark())  # the window closed again: give the client a number to ack

    async def _resync_one(self, key: Hashable, held: Held) -> None:
        if len(key) == 3:  # type: ignore[arg-type] # a feed status frame
            await self._push(held.text)
            return
        sub = self.subscriptions.get(key)  # type: ignore[arg-type]
        if sub is None:  # unsubscribed meanwhile
            return
        plan = resync_plan(held, sub.last_time)
        if isinstance(plan, SendFrame):
            sub.mark(plan.extra, self._relay.epoch)
            await self._push(plan.text)
            WS_DELIVERIES.inc()
            return
        # Nothing else runs on this consumer while we read: live updates published
        # meanwhile wait in its channel and are filtered against the new mark after.
        try:
            rows = await database_sync_to_async(_resync_rows)(sub.ticker, sub.tf, plan.since)
        except Exception:
            self.outbox.held[key] = held  # (the database is down) kept for the next attempt
            raise
        if rows:
            sub.mark_read(rows[-1], self._relay.epoch)
        await self._push(resync_frame(sub.ticker, sub.tf.code, rows, plan.since,
                                      await _resync_studies(sub, rows)))

    # -- channel-layer outages (market.live.relay) -------------------------------------------
    async def _layer_lost(self) -> None:
        """Live candles may be lost from here on: the badge says so, per feed."""
        for source, heartbeat in list(self._feeds.items()) or [("", time.time())]:
            await self._relay_status(status_frame(source=source, state="reconnecting", detail=INTERRUPTED,
                                                  heartbeat=heartbeat))

    def _layer_restored(self, epoch: int) -> None:
        """The layer delivers again: catch every stream up from where it is sure to have had
        everything (read now, in order), holding what the relay hands over until done."""
        plan = [(key, sub, sub.resume_from(epoch)) for key, sub in self.subscriptions.items()]
        self._holding += 1
        self._catch_up_task = asyncio.create_task(self._catch_up(plan))

    async def _catch_up(self, plan: list[tuple[StreamKey, Subscription, int]]) -> None:
        try:
            for key, sub, since in plan:
                if self.subscriptions.get(key) is not sub:  # unsubscribed meanwhile
                    continue
                loaded = await database_sync_to_async(_load_snapshot)(sub.ticker, sub.tf, since if since >= 0 else None)
                if loaded is None:
                    continue
                candles, parts, session, _ = loaded
                if sub.tracker is not None:
                    sub.track(parts, session)  # it missed base candles too
                rows = [c.as_dict() for c in candles]
                if rows:
                    sub.mark_read(rows[-1], self._relay.epoch)
                self.outbox.discard(key)  # superseded by this read
                await self._push(resync_frame(sub.ticker, sub.tf.code, rows, max(since, 0),
                                              await _resync_studies(sub, rows)))
            rows = await database_sync_to_async(selectors.feed_state_list)()
            stored = {row["source"] for row in rows}
            for source in (set(self._feeds) or {""}) - stored:  # told "interrupted", and no stored state
                await self._relay_status(status_frame(source=source, state="live", detail=RESTORED_DETAIL,
                                                      heartbeat=self._feeds.get(source, time.time())))
            for row in rows:  # the feeds' own states last: the badge shows the newest frame
                self._feeds[row["source"]] = row["heartbeat"]
                detail = f"{RESTORED_DETAIL}; {row['detail']}" if row["detail"] else RESTORED_DETAIL
                await self._relay_status(status_frame(**{**row, "detail": detail}))
        except asyncio.CancelledError:  # the socket closed: nothing more to hand on
            self._holding -= 1
            raise
        except Exception:  # noqa: BLE001 - e.g. the database is down too: the page resumes with since
            logger.exception("websocket client %s: cannot catch up after a channel-layer outage; closing",
                             self.channel_name)
            await self.close(code=CLOSE_TRY_AGAIN)
        await self._release()
