"""One channel-layer membership per watched group per process, shared by its sockets.

Channels gives every consumer its own channel, so a candle published to a group with
twenty sockets in this process became twenty queue puts, twenty task wake-ups, twenty
``asyncio.wait()`` rounds and twenty message decodes before a frame was written: in a
py-spy profile of ``bench/fanout.py`` (1000 clients, 10,000 deliveries/s) that machinery
was a quarter of daphne's CPU. The relay joins each group once, under its own channel,
and hands every event it receives to the local members in one loop.

A member is anything with ``async relay(event)``; the consumer holds what arrives while
its own handler runs (``MarketConsumer``), so the order "join, read the snapshot, then
live updates" is unchanged. One relay per event loop (and layer); it stops when its last
member leaves.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Callable, Protocol

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "relay."


class Member(Protocol):
    async def relay(self, event: dict[str, Any]) -> None: ...


class Relay:
    def __init__(self, layer: Any, group_of: Callable[[dict[str, Any]], str]) -> None:
        self.layer = layer
        self.group_of = group_of  # the group an event was sent to (events do not say)
        self.channel: str | None = None
        self.members: dict[str, set[Member]] = {}
        self._task: asyncio.Task | None = None
        # Layer calls in order: a leave's group_discard never overtakes a later join's group_add.
        self._lock = asyncio.Lock()

    async def join(self, group: str, member: Member) -> None:
        """Returns once this process receives the group's messages (the caller may then read
        its snapshot: nothing published after this point is missed)."""
        async with self._lock:
            members = self.members.get(group)
            if members is None:
                if self.channel is None:
                    self.channel = await self.layer.new_channel(CHANNEL_PREFIX)
                    self._task = asyncio.create_task(self._run(self.channel), name="market.live.relay")
                await self.layer.group_add(group, self.channel)
                members = self.members[group] = set()
            members.add(member)

    async def leave(self, group: str, member: Member) -> None:
        async with self._lock:
            members = self.members.get(group)
            if members is None or member not in members:
                return
            members.discard(member)
            if members:
                return
            del self.members[group]
            try:
                await self.layer.group_discard(group, self.channel)
            finally:
                if not self.members:
                    self._stop()

    def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()  # the pub/sub layer unsubscribes a cancelled receive's channel
        self._task = None
        self.channel = None

    async def _run(self, channel: str) -> None:
        receive, group_of = self.layer.receive, self.group_of
        while True:
            try:
                event = await receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the layer is briefly down: keep listening
                logger.exception("relay: cannot receive from the channel layer")
                await asyncio.sleep(1.0)
                continue
            try:
                members = self.members.get(group_of(event))
            except Exception:  # noqa: BLE001 - a malformed event: not for anyone here
                logger.warning("relay: dropped an event of unknown shape")
                continue
            if not members:
                continue
            for member in tuple(members):
                try:
                    await member.relay(event)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one broken socket must not starve the others
                    logger.exception("relay: a member failed to take an event")


_relays: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Relay]] = weakref.WeakKeyDictionary()


def relay_for(layer: Any, group_of: Callable[[dict[str, Any]], str]) -> Relay:
    """The running loop's relay for ``layer``."""
    loop = asyncio.get_running_loop()
    by_layer = _relays.setdefault(loop, {})
    relay = by_layer.get(id(layer))
    if relay is None or relay.layer is not layer:
        relay = by_layer[id(layer)] = Relay(layer, group_of)
    return relay
