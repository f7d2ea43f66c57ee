"""The one place candles leave runfeed for browsers: Channels group messages.

One group per (symbol, stored timeframe). Each message carries the whole candle (an
idempotent snapshot, so a lost message is repaired by the next) and the frame the
consumers relay, serialised once here rather than once per browser (the frames are built
by ``market.core.frames``, the one place that writes what browsers receive).
"""

from __future__ import annotations

import hashlib
import logging
import string
from functools import lru_cache
from typing import Any, Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

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


async def candles_publish(layer: Any, updates: Iterable[CandleUpdate], *, revised: bool = False) -> int:
    """Send the updates to their groups; a layer failure is logged by the caller."""
    sent = 0
    for group, event in candle_events(updates, revised=revised):
        await layer.group_send(group, event)
        sent += 1
    return sent


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
