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

Outages. The layer delivers at most once, and a dead Redis loses what is published while
it is down without a word to the receiver: channels-redis' pub/sub receiver just waits,
and redis-py re-subscribes when the server is back. So the relay probes its own channel
every ``PROBE_SECONDS``: a probe that cannot be sent, or none coming back for
``PROBE_TIMEOUT``, means this process may have missed messages, and every member is handed
``{"type": LOST, "epoch": e}``; the first probe that comes back after that hands every
member ``{"type": RESTORED, "epoch": e}``, in its place among the events, so a member can
catch up from the database. ``epoch`` counts the probes that came back while the layer
was sound: everything published before the probe that made epoch ``e`` was received, so
what a member had been sent by then is a safe point to catch up from (the consumer keeps
it per stream, ``market.web.consumers.Subscription``). While the layer is unsound the
epoch stands still.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Callable, Protocol

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "relay."
PROBE = "relay.probe"  # sent to the relay's own channel; never handed to a member
LOST = "relay.lost"  # to every member: messages may have been lost from here on
RESTORED = "relay.restored"  # to every member: the layer delivers again (catch up)
PROBE_SECONDS = 1.0
PROBE_TIMEOUT = 5.0  # no probe back for this long: lost (a relay this far behind is also suspect)
# Batching (issue 17): how long after a member's first held-back frame its ``flush()`` runs.
# runfeed publishes one flush's candles in a burst; the layer hands them over across a few
# loop turns, so "the next turn" would cut a burst into many frames.
BATCH_SECONDS = 0.005


class Member(Protocol):
    async def relay(self, event: dict[str, Any]) -> None: ...


class Watcher(Protocol):
    """Sees every event the relay receives, before its members (``market.live.snapshots``
    keeps the newest candles of the groups joined, and must hear when it may have missed some)."""

    def seen(self, group: str, event: dict[str, Any]) -> None: ...

    def left(self, group: str) -> None: ...  # the relay no longer receives the group's events

    def lost(self) -> None: ...  # the layer may have lost events of every group


class Relay:
    def __init__(self, layer: Any, group_of: Callable[[dict[str, Any]], str]) -> None:
        self.layer = layer
        self.group_of = group_of  # the group an event was sent to (events do not say)
        self.channel: str | None = None
        self.members: dict[str, set[Member]] = {}
        self._task: asyncio.Task | None = None
        self._probe_task: asyncio.Task | None = None
        # Layer calls in order: a leave's group_discard never overtakes a later join's group_add.
        self._lock = asyncio.Lock()
        # Probing (see the module docstring).
        self.epoch = 0  # probes back while the layer was sound
        self.sound = True
        self._echo_at = 0.0  # (loop time) when a probe last came back
        self._telling = asyncio.Lock()  # LOST is handed to everyone before RESTORED is
        self.watchers: list[Watcher] = []
        # Members with frames held back for one batch (dict: in order), and the one timer.
        self._dirty: dict[Any, None] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task | None = None

    def flush_later(self, member: Any) -> None:
        """Call ``member.flush()`` once, BATCH_SECONDS from now, with every other member that
        asks meanwhile: one timer per burst for the process, not one per socket."""
        self._dirty[member] = None
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(BATCH_SECONDS, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        dirty, self._dirty = self._dirty, {}
        self._flush_task = asyncio.create_task(self._flush(list(dirty)), name="market.live.relay.flush")

    @staticmethod
    async def _flush(members: list[Any]) -> None:
        for member in members:
            try:
                await member.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one broken socket must not starve the others
                logger.exception("relay: a member failed to flush")

    def watch(self, watcher: Watcher) -> None:
        self.watchers.append(watcher)

    def _notify(self, call: Callable[[Watcher], None]) -> None:
        for watcher in self.watchers:
            try:
                call(watcher)
            except Exception:  # noqa: BLE001 - a watcher must never stop the relay
                logger.exception("relay: a watcher failed")

    async def join(self, group: str, member: Member) -> None:
        """Returns once this process receives the group's messages (the caller may then read
        its snapshot: nothing published after this point is missed)."""
        async with self._lock:
            members = self.members.get(group)
            if members is None:
                if self.channel is None:
                    self.channel = await self.layer.new_channel(CHANNEL_PREFIX)
                    self._task = asyncio.create_task(self._run(self.channel), name="market.live.relay")
                    self._probe_task = asyncio.create_task(self._probe(self.channel), name="market.live.relay.probe")
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
            self._notify(lambda w: w.left(group))  # before the discard: nothing after it is seen
            try:
                await self.layer.group_discard(group, self.channel)
            finally:
                if not self.members:
                    self._stop()

    def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()  # the pub/sub layer unsubscribes a cancelled receive's channel
        if self._probe_task is not None:
            self._probe_task.cancel()
        self._task = self._probe_task = None
        self.channel = None
        self.sound = True  # a new channel starts with a fresh subscription

    # -- probing the layer ------------------------------------------------------------------
    async def _probe(self, channel: str) -> None:
        """Send a probe every PROBE_SECONDS (the receiving task sees it come back)."""
        clock = asyncio.get_running_loop().time
        self._echo_at = clock()
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            try:
                await asyncio.wait_for(self.layer.send(channel, {"type": PROBE}), PROBE_TIMEOUT)
                failure = "no probe came back" if clock() - self._echo_at > PROBE_TIMEOUT + PROBE_SECONDS else ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the layer is down
                failure = type(exc).__name__
            if failure and self.sound:
                self.sound = False
                self._notify(lambda w: w.lost())
                logger.warning("relay: the channel layer failed a probe (%s); messages may be lost until it "
                               "is back", failure)
                async with self._telling:
                    await self._tell({"type": LOST, "epoch": self.epoch})

    async def _echo(self) -> None:
        """A probe came back (on the receiving task, in its place among the events)."""
        if not self.sound:
            async with self._telling:
                self.sound = True
                logger.warning("relay: the channel layer delivers again; members catch up")
                await self._tell({"type": RESTORED, "epoch": self.epoch})
        self.epoch += 1
        self._echo_at = asyncio.get_running_loop().time()

    async def _tell(self, event: dict[str, Any]) -> None:
        """Hand ``event`` to every member once."""
        everyone = {m for members in self.members.values() for m in members}
        await self._hand(everyone, event)

    @staticmethod
    async def _hand(members: Any, event: dict[str, Any]) -> None:
        for member in tuple(members):
            try:
                await member.relay(event)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one broken socket must not starve the others
                logger.exception("relay: a member failed to take an event")

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
                if event.get("type") == PROBE:
                    await self._echo()
                    continue
                group = group_of(event)
                members = self.members.get(group)
            except Exception:  # noqa: BLE001 - a malformed event: not for anyone here
                logger.warning("relay: dropped an event of unknown shape")
                continue
            if self.watchers and members is not None:
                self._notify(lambda w: w.seen(group, event))
            if members:
                await self._hand(members, event)


_relays: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Relay]] = weakref.WeakKeyDictionary()


def relay_for(layer: Any, group_of: Callable[[dict[str, Any]], str]) -> Relay:
    """The running loop's relay for ``layer``."""
    loop = asyncio.get_running_loop()
    by_layer = _relays.setdefault(loop, {})
    relay = by_layer.get(id(layer))
    if relay is None or relay.layer is not layer:
        relay = by_layer[id(layer)] = Relay(layer, group_of)
    return relay
