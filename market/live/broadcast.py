"""The one place candles leave runfeed for browsers: Channels group messages.

One group per (symbol, stored timeframe). Each message carries the whole candle (an
idempotent snapshot, so a lost message is repaired by the next) and the frame the
consumers relay, serialised once here rather than once per browser (the frames are built
by ``market.core.frames``, the one place that writes what browsers receive).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import string
from functools import lru_cache
from typing import Any, Iterable

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from market.core.frames import candle_frame, status_frame, user_frame
from market.core.types import CandleUpdate

logger = logging.getLogger(__name__)

EVENT_TYPE = "candle.update"
_SAFE = frozenset(string.ascii_letters + string.digits + "-.")


@lru_cache(maxsize=65536)
def group_name(ticker: str, timeframe: str) -> str:
    """A valid, injective Channels group name: ``NSE:SBIN-EQ`` is not one as it stands.

    ASCII tickers are escaped readably (``:`` -> ``_3a``, fixed width, so injective);
    anything else, or a name that would reach the 100-character limit, is hashed under
    another prefix so the two forms never collide.
    """
    if ticker.isascii():
        escaped = "".join(ch if ch in _SAFE else f"_{ord(ch):02x}" for ch in ticker)
        name = f"c.{timeframe}.{escaped}"
        if len(name) < 100:
            return name
    return f"h.{timeframe}.{hashlib.sha256(ticker.encode()).hexdigest()[:48]}"


def candle_events(updates: Iterable[CandleUpdate], *, revised: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """``(group, event)`` pairs, keeping only the newest state of each candle."""
    latest: dict[tuple[str, str, int], CandleUpdate] = {}
    for u in updates:
        latest[(u.symbol, u.timeframe, u.candle.time)] = u
    out = []
    for u in latest.values():
        candle = u.candle.as_dict()
        out.append((
            group_name(u.symbol, u.timeframe),
            {
                "type": EVENT_TYPE,
                "symbol": u.symbol,
                "tf": u.timeframe,
                "candle": candle,
                "final": u.final,
                # A correction (gap repair, reconciliation): delivered even if older than
                # what a browser already has, so an open chart replaces the bar.
                "revised": revised,
                "text": candle_frame(u.symbol, u.timeframe, candle),
            },
        ))
    return out


#: Redis PUBLISH commands sent in one round trip by ``events_send``.
PUBLISH_BATCH = 500
#: PUBLISH each (channel, message) pair of ARGV, in order: one command and one reply for the
#: lot, where a pipeline still packs and parses one command per message (a third of the
#: replay's CPU went to that). A script runs atomically, so keep batches small.
_PUBLISH_MANY = "for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end return #ARGV / 2"
#: ``group_send`` calls awaited together on a layer that cannot be pipelined.
SENDS_IN_FLIGHT = 32


def _pubsub_layer(layer: Any) -> Any | None:
    """The running loop's channels-redis pub/sub layer, if ``layer`` is one whose internals
    are as ``events_send`` expects (channels-redis 4.x); None: use ``group_send``."""
    try:
        from channels_redis.pubsub import RedisPubSubChannelLayer
    except ImportError:  # pragma: no cover - channels-redis is a dependency
        return None
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    loop_layer = layer._get_layer()
    if not all(hasattr(loop_layer, name) for name in ("_get_group_channel_name", "_get_shard")):
        return None
    return loop_layer


def pipelined(layer: Any) -> bool:
    """Whether ``events_send`` pipelines on ``layer`` (call in its event loop)."""
    loop_layer = _pubsub_layer(layer)
    if loop_layer is None or not loop_layer._shards:
        return False
    shard = loop_layer._shards[0]
    return all(hasattr(shard, name) for name in ("_lock", "_ensure_redis", "_redis"))


async def events_send(layer: Any, events: list[tuple[str, dict[str, Any]]]) -> None:
    """``(group, event)`` pairs to the layer, each group's in order.

    channels-redis' pub/sub ``group_send`` is one PUBLISH and one round trip under the
    shard's lock, so 34,000 candles of a catch-up took 21 s one after another. On that layer
    the same PUBLISH commands (same channel names, same serialisation, so receivers see
    exactly what ``group_send`` would send) go out ``PUBLISH_BATCH`` at a time in one
    script call (``_PUBLISH_MANY``), under the same lock. The in-memory layer gets
    ``group_send`` one after another (no I/O to overlap); any other layer at most
    ``SENDS_IN_FLIGHT`` groups at once, each group's events one after another.
    """
    if not events:
        return
    if pipelined(layer):
        loop_layer = layer._get_layer()
        by_shard: dict[int, tuple[Any, list[tuple[str, bytes]]]] = {}
        for group, event in events:
            channel = loop_layer._get_group_channel_name(group)
            shard = loop_layer._get_shard(channel)
            by_shard.setdefault(id(shard), (shard, []))[1].append((channel, layer.serialize(event)))
        for shard, messages in by_shard.values():
            for i in range(0, len(messages), PUBLISH_BATCH):
                chunk = messages[i:i + PUBLISH_BATCH]
                async with shard._lock:
                    shard._ensure_redis()
                    await shard._redis.eval(_PUBLISH_MANY, 0, *(part for message in chunk for part in message))
        return
    by_group: dict[str, list[dict[str, Any]]] = {}
    for group, event in events:
        by_group.setdefault(group, []).append(event)
    if len(by_group) == 1 or isinstance(layer, InMemoryChannelLayer):  # no I/O to overlap
        for group, queued in by_group.items():
            for event in queued:
                await layer.group_send(group, event)
        return
    gate = asyncio.Semaphore(SENDS_IN_FLIGHT)

    async def send_group(group: str, queued: list[dict[str, Any]]) -> None:
        async with gate:
            for event in queued:
                await layer.group_send(group, event)

    await asyncio.gather(*(send_group(g, q) for g, q in by_group.items()))


async def candles_publish(layer: Any, updates: Iterable[CandleUpdate], *, revised: bool = False) -> int:
    """Send the updates to their groups (``events_send``); a layer failure is logged by the caller."""
    events = candle_events(updates, revised=revised)
    await events_send(layer, events)
    return len(events)


STATUS_GROUP = "feed.status"
STATUS_EVENT = "feed.status"


USER_EVENT = "user.event"
MARKER_EVENT = "marker.event"


def user_group(user_id: int) -> str:
    """The group of one signed-in user's open sockets (every tab, every daphne process)."""
    return f"u.{int(user_id)}"


def event_group(event: dict[str, Any]) -> str:
    """The group a candle, status or user event was sent to (market.live.relay hands it on by group)."""
    kind = event["type"]
    if kind == STATUS_EVENT:
        return STATUS_GROUP
    if kind in (USER_EVENT, MARKER_EVENT):
        return event["group"]
    return group_name(event["symbol"], event["tf"])


def _frame_event(event_type: str, group: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An event the consumers relay as it stands: ``{"type": kind, **payload}`` to the group's sockets."""
    return {"type": event_type, "group": group, "text": user_frame(kind, payload)}


def user_event(user_id: int, kind: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(group, event)`` telling every open socket of ``user_id`` ``{"type": kind, **payload}``."""
    group = user_group(user_id)
    return group, _frame_event(USER_EVENT, group, kind, payload)


async def user_publish(layer: Any, user_id: int, kind: str, payload: dict[str, Any]) -> None:
    """Tell one user's open pages something (a drawing changed, an alert fired)."""
    group, event = user_event(user_id, kind, payload)
    await layer.group_send(group, event)


async def status_publish(layer: Any, *, source: str, state: str, detail: str, heartbeat: float) -> None:
    """Every browser hears each feed's state (live, stale, reconnecting, …) and heartbeat."""
    await layer.group_send(STATUS_GROUP, {
        "type": STATUS_EVENT,
        "text": status_frame(source=source, state=state, detail=detail, heartbeat=heartbeat),
    })


def _send_now(group: str, event: dict[str, Any], what: str) -> None:
    """``event`` to ``group`` from sync code, after the write it tells of. A channel-layer
    outage is logged, not raised: the write stands, and pages read it again when they reconnect."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # noqa: BLE001 - Redis down
        logger.warning("could not tell %s (channel layer down)", what)


def user_notify(*, user_id: int, kind: str, payload: dict[str, Any]) -> None:
    """Tell every open page of ``user_id`` ``{"type": kind, **payload}`` (a view, once its
    service call has committed the write)."""
    _send_now(*user_event(user_id, kind, payload), f"user {user_id}'s pages about a {kind}")


def marker_group(ticker: str) -> str:
    """The group of every socket watching ``ticker`` at any timeframe (markers, issue 16);
    "markers" is no timeframe code, so it never clashes with a candle group."""
    return group_name(ticker, "markers")


def marker_notify(*, ticker: str, op: str, marker: dict[str, Any]) -> None:
    """Tell every open chart of ``ticker`` that a marker was added (``upsert``) or removed
    (``delete``), after the write."""
    group = marker_group(ticker)
    _send_now(group, _frame_event(MARKER_EVENT, group, "marker", {"op": op, "marker": marker}),
              f"{ticker}'s charts about a marker")
