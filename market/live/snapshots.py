"""Per-process memory for reconnect storms (issue 17): snapshots from the newest candles the
relay has seen, and the per-connect lookups, so a thousand sockets subscribing at once
cost one database read per stream instead of one per socket.

Every connect and snapshot used to go through ``database_sync_to_async``, whose
thread-sensitive mode runs them one at a time on one thread: 1000 subscribes waited
seconds for their turn. Here:

- ``Snapshots`` watches the process's relay (``market.live.relay.Watcher``) and keeps a
  ``market.core.recent.Recent`` per stored stream some socket of the process subscribes
  to. The first subscribe of a stream reads the database as before, after joining the
  group, and its read seeds the ring; the candle events seen meanwhile are applied on top,
  so the ring holds what the database holds. Later subscribes are answered from the ring
  while it covers what they ask (``since`` / the history limit) and is younger than
  ``TICKCHART_SNAPSHOT_CACHE_SECONDS``. The ring is dropped when the relay leaves the group
  (nobody here watches it: events would be missed) and when the layer may have lost
  events (``lost``); concurrent first subscribes wait for the one read in flight.
- ``Lookups`` reuse the symbol row, the exchange's session and the feed states for
  ``TICKCHART_LOOKUP_CACHE_SECONDS`` (a status event drops the feed states at once).
- ``pooled`` runs a blocking read on a pool thread, not the single thread-sensitive one,
  and closes that thread's database connections afterwards (with ``CONN_MAX_AGE`` each
  pool thread would otherwise keep a PostgreSQL connection open).

One ``Snapshots`` per relay, so per event loop (a daphne process has one; every test its
own, so nothing read from one test's database answers another's).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable, TypeVar

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from market import services
from market.conf import live_cache_conf, market
from market.core.frames import snapshot_frame
from market.core.recent import CandleRow, Recent
from market.core.timeframes import Timeframe
from market.live.broadcast import EVENT_TYPE, STATUS_EVENT, group_name
from market.live.relay import Relay

T = TypeVar("T")
StreamKey = tuple[str, str]  # (ticker, stored timeframe code)


class _Ticket:
    """One call handed to the pool, counted in ``_queued`` until it starts (or never will)."""

    __slots__ = ("counted",)

    def __init__(self) -> None:
        self.counted = True


_queued = 0  # pool calls handed over and not yet started
_queued_lock = threading.Lock()


def _started(ticket: _Ticket) -> None:
    """Count ``ticket`` out of ``_queued``, once (its call started, or was cancelled unstarted)."""
    global _queued
    with _queued_lock:
        if ticket.counted:
            ticket.counted = False
            _queued -= 1


def _closing(fn: Callable[..., T], ticket: _Ticket) -> Callable[..., T]:
    """``fn`` on a pool thread, whose connection is closed once no more calls wait (they are
    per thread): a storm's thousand session reads reuse the few threads' connections instead
    of opening and closing one each (on SQLite that was most of a connect's CPU), and an idle
    pool holds none (PostgreSQL counts them; a test database cannot be dropped)."""

    def call(*args: Any, **kwargs: Any) -> T:
        _started(ticket)
        try:
            return fn(*args, **kwargs)
        finally:
            if _queued == 0:
                services.connection_close_idle()

    return call


def _one_thread_only() -> bool:
    """An in-memory SQLite database (the embedded tests') is one cache shared by every
    thread's connection, whose readers fail ("table is locked") instead of waiting for a
    writer: it is read on the one thread its writes use. (A file in WAL mode, as the embedded
    default, reads beside a writer.)"""
    db = settings.DATABASES.get("default", {})
    name = str(db.get("NAME", ""))
    return "sqlite" in str(db.get("ENGINE", "")) and (name == ":memory:" or "mode=memory" in name)


async def pooled(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a pool thread, its database connections closed afterwards."""
    if _one_thread_only():
        return await database_sync_to_async(fn)(*args, **kwargs)
    global _queued
    ticket = _Ticket()
    with _queued_lock:
        _queued += 1
    try:
        return await sync_to_async(_closing(fn, ticket), thread_sensitive=False)(*args, **kwargs)
    finally:
        _started(ticket)  # cancelled before it ran: no longer waiting


# -- lookups ------------------------------------------------------------------------------
class Lookups:
    """Short-lived answers to the reads every connect repeats. Read from worker threads and
    the loop alike: each entry is one dict item (replaced whole), a miss just reads again."""

    def __init__(self) -> None:
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, read: Callable[[], T]) -> T:
        """The cached value of ``key``, or ``read()`` (in the caller's thread), kept for the TTL."""
        ttl = live_cache_conf().lookup_seconds
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        value = read()
        if ttl > 0:
            with self._lock:
                if len(self._items) > 10_000:  # a scan of many tickers: start over
                    self._items.clear()
                self._items[key] = (now, value)
        return value

    def peek(self, key: Hashable) -> tuple[bool, Any]:
        """(True, value) if ``key`` is cached and fresh (no read; for the loop's fast path)."""
        hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < live_cache_conf().lookup_seconds:
            return True, hit[1]
        return False, None

    def drop(self, key: Hashable) -> None:
        self._items.pop(key, None)


#: The lookups of the socket whose code runs (set per consumer; read in its worker threads,
#: which asgiref runs in a copy of the caller's context).
LOOKUPS: contextvars.ContextVar[Lookups | None] = contextvars.ContextVar("market.live.snapshots.LOOKUPS",
                                                                         default=None)


def lookup(key: Hashable, read: Callable[[], T]) -> T:
    """``read()``, through the current socket's lookups if it has any."""
    lookups = LOOKUPS.get()
    return read() if lookups is None else lookups.get(key, read)


# -- snapshots ------------------------------------------------------------------------------
@dataclass
class _Seeding:
    """The first read of a stream is in flight: events seen meanwhile wait here."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Held:
    ring: Recent
    demand_source: str | None  # as the read that seeded it said (on-demand feeds)
    seeded_at: float
    # The snapshot frame without ``since`` at ``text_version`` of the ring: a storm of
    # subscribes to one stream serialises its 1000 candles once, not once per socket.
    text: str = ""
    text_version: int = -1


@dataclass(frozen=True)
class Served:
    """A snapshot answered from memory: the rows and the symbol's on-demand source."""

    rows: list[CandleRow]
    demand_source: str | None
    text: str | None = None  # the snapshot frame of ``rows`` (without studies), when built once for many


class Snapshots:
    """A process's in-memory snapshots and lookups (see the module docstring)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.lookups = Lookups()
        self._streams: dict[StreamKey, _Seeding | _Held] = {}
        self._groups: dict[str, StreamKey] = {}
        relay.watch(self)

    # -- the relay's watcher -----------------------------------------------------------------
    def seen(self, group: str, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == STATUS_EVENT:
            self.lookups.drop("feed_states")
            return
        if kind != EVENT_TYPE:
            return
        key = self._groups.get(group)
        entry = self._streams.get(key) if key is not None else None
        if isinstance(entry, _Held):
            entry.ring.apply(event["candle"], revised=bool(event.get("revised")))
        elif isinstance(entry, _Seeding):
            entry.events.append(event)

    def left(self, group: str) -> None:
        key = self._groups.pop(group, None)
        if key is not None:
            self._streams.pop(key, None)

    def lost(self) -> None:
        self._streams.clear()
        self._groups.clear()
        self.lookups.drop("feed_states")

    # -- subscribes ------------------------------------------------------------------------
    def _usable(self, tf: Timeframe) -> bool:
        return (live_cache_conf().snapshot_seconds > 0 and self.relay.sound
                and market().plan.base_for(tf) == tf)

    def _serve(self, key: StreamKey, since: int | None) -> Served | None:
        entry = self._streams.get(key)
        if not isinstance(entry, _Held):
            return None
        if time.monotonic() - entry.seeded_at >= live_cache_conf().snapshot_seconds:
            self.left(group_name(*key))  # too old: read again
            return None
        conf = market()
        ring = entry.ring
        if since is not None:
            rows = ring.since(since, conf.max_limit)
            return None if rows is None else Served(rows, entry.demand_source)
        rows = ring.last(conf.history_limit)
        if rows is None:
            return None
        if entry.text_version != ring.version:
            entry.text, entry.text_version = snapshot_frame(key[0], key[1], rows), ring.version
        return Served(rows, entry.demand_source, entry.text)

    async def snapshot(
        self, ticker: str, tf: Timeframe, since: int | None,
        read: Callable[[], Awaitable[tuple[list[Any], list[Any], Any, str | None] | None]],
    ) -> Served | tuple[list[Any], list[Any], Any, str | None] | None:
        """A subscribe's snapshot, the caller having joined the stream's group: ``Served``
        from memory, else what ``read()`` (the database) returns, which then seeds the ring."""
        if not self._usable(tf):
            return await read()
        key = (ticker, tf.code)
        entry = self._streams.get(key)
        if isinstance(entry, _Seeding):
            await entry.done.wait()  # the first subscribe's read
            entry = self._streams.get(key)
        served = self._serve(key, since)
        if served is not None:
            return served
        if self._streams.get(key) is not None:  # held, but not back to this since: read, keep the ring
            return await read()
        seeding = _Seeding()
        self._streams[key] = seeding
        self._groups[group_name(ticker, tf.code)] = key
        try:
            loaded = await read()
        except BaseException:
            if self._streams.get(key) is seeding:
                self.left(group_name(ticker, tf.code))
            raise
        finally:
            seeding.done.set()
        if self._streams.get(key) is seeding:  # not left nor lost meanwhile
            self._seed(key, seeding, since, loaded)
        return loaded

    def _seed(self, key: StreamKey, seeding: _Seeding, since: int | None,
              loaded: tuple[list[Any], list[Any], Any, str | None] | None) -> None:
        if loaded is None or not self.relay.sound:
            self.left(group_name(*key))
            return
        candles, _parts, _session, demand_source = loaded
        conf = market()
        rows = [c.as_dict() for c in candles]
        capacity = conf.history_limit
        if since is None:
            ring = Recent.from_newest(capacity, rows, asked=conf.history_limit)
        elif len(rows) < conf.max_limit:  # every candle from ``since`` on
            ring = Recent(capacity, rows, floor=since)
        else:  # too far behind: the newest instead, the floor unknown below them
            ring = Recent(capacity, rows, floor=rows[0]["time"])
        for event in seeding.events:
            ring.apply(event["candle"], revised=bool(event.get("revised")))
        self._streams[key] = _Held(ring, demand_source, time.monotonic())


_by_relay: weakref.WeakKeyDictionary[Relay, Snapshots] = weakref.WeakKeyDictionary()


def snapshots_for(relay: Relay) -> Snapshots:
    """The relay's (so the process's, per event loop) snapshots and lookups."""
    found = _by_relay.get(relay)
    if found is None:
        found = _by_relay[relay] = Snapshots(relay)
    return found
