"""Per-connection flow control for the WebSocket relay: a bounded send window and a
latest-wins book of what a client that fell behind has not been sent.

daphne does not push back: ``await send()`` hands the frame to autobahn/twisted, which
buffer it in user space without limit while a browser does not read. So the server
counts what it sent and what the browser acknowledged, and stops relaying live frames to
a browser whose unacknowledged frames or bytes exceed the window. Instead it keeps, per
stream, only the newest frame (memory bounded by the number of streams), tells the
browser once that it is behind, and catches it up when acknowledgements resume: with
the held frame when that alone restores the exact series, else with a snapshot ``since``
the last candle it was sent.

Sequence numbers count the frames sent on the connection (every frame, snapshots and
status included). The server sends ``sync`` frames carrying the current count every
quarter window; the browser answers each with an ``ack`` of that number. Acking a number
acknowledges every frame up to it.

Framework-free (no Django): the consumer owns the socket and the database reads; this
module only decides.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Hashable

#: Marks (sync points) remembered for byte accounting; an ack older than all of them
#: acknowledges frames but, conservatively, no bytes.
MAX_MARKS = 64


@dataclass(frozen=True)
class FlowLimits:
    """``frames``/``bytes``: the window; ``stall_seconds``: how long a client may stay behind
    without acknowledging anything before it is closed. ``frames == 0`` disables flow
    control (every frame is sent, as before; for comparisons only)."""

    frames: int = 256
    bytes: int = 512 * 1024
    stall_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.frames < 0 or self.bytes < 0 or self.stall_seconds <= 0:
            raise ValueError("window frames/bytes must be >= 0 and stall_seconds > 0")
        if self.frames and not self.bytes:
            raise ValueError("a frame window needs a byte window")

    @property
    def enabled(self) -> bool:
        return self.frames > 0


@dataclass
class Held:
    """The newest frame of one stream that was not sent, and what was skipped before it."""

    text: str
    time: int  # candle time of ``text``
    ticks: int
    min_time: int  # oldest candle time held for this stream since it fell behind
    mixed: bool = False  # held frames of more than one candle time (a bucket closed meanwhile)
    replaced: int = 0  # frames superseded (latest wins)
    extra: Any = None  # what the caller needs to act on it (e.g. the candle dict)


@dataclass(frozen=True)
class SendFrame:
    """The held frame alone restores the series: send it."""

    text: str
    extra: Any


@dataclass(frozen=True)
class Snapshot:
    """Read the stream's candles from ``since`` (inclusive) and send them as a snapshot."""

    since: int


Resync = SendFrame | Snapshot


def resync_plan(held: Held, last_sent_time: int) -> Resync:
    """How to bring a stream back to the exact series.

    ``last_sent_time`` is the time of the last candle the client was sent on this stream
    (-1 if none). The held frame suffices when every frame held was an update of that
    same candle (or of the stream's only candle): the client has every older candle in
    its final state, and the newest one becomes exact. Otherwise a bucket closed (or an older candle was revised) while
    frames were held, so one frame cannot tell the whole story: a snapshot from the oldest
    time that may differ (the last sent candle, or an older revised one).
    """
    if not held.mixed and (held.time == last_sent_time or last_sent_time < 0):
        return SendFrame(held.text, held.extra)  # (-1: the client had no candle; this is the only one)
    if last_sent_time < 0:
        return Snapshot(since=max(0, held.min_time))
    return Snapshot(since=max(0, min(last_sent_time, held.min_time)))


@dataclass
class Outbox:
    """One connection's send window and held frames.

    The consumer calls :meth:`room` before relaying a live frame; with room it sends and
    calls :meth:`sent`, else :meth:`hold`. Every other frame it sends (snapshots, answers)
    is counted with :meth:`sent` too, without asking: those answer the client's own
    requests, but they occupy the same buffer.
    """

    limits: FlowLimits = field(default_factory=FlowLimits)
    seq: int = 0  # frames sent
    sent_bytes: int = 0
    acked: int = 0
    acked_bytes: int = 0
    behind: bool = False  # holding frames; cleared when the book is empty again
    closed: bool = False  # the consumer closed the connection (stalled)
    behind_since: float = 0.0
    last_progress: float = 0.0  # when the client last acknowledged something (or fell behind)
    times_behind: int = 0
    dropped: int = 0  # held frames superseded by newer ones, over the connection's life
    _marks: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=MAX_MARKS))
    _synced_at: int = 0  # seq of the last sync point
    _synced_bytes: int = 0
    held: dict[Hashable, Held] = field(default_factory=dict)

    # -- window ----------------------------------------------------------------------
    @property
    def unacked(self) -> int:
        return self.seq - self.acked

    @property
    def unacked_bytes(self) -> int:
        return self.sent_bytes - self.acked_bytes

    def room(self) -> bool:
        """May a live frame go now? Never while behind: held frames go first, in resync."""
        return self.limits.frames <= 0 or (not self.behind and self.window_open())

    def window_open(self) -> bool:
        """Unacknowledged frames and bytes are both under the window. (With room() and sent()
        this runs once per socket per live candle, so it reads the fields, not the properties.)"""
        limits = self.limits
        if limits.frames <= 0:  # flow control off
            return True
        return self.seq - self.acked < limits.frames and self.sent_bytes - self.acked_bytes < limits.bytes

    def sent(self, nbytes: int) -> int | None:
        """Count one frame sent; returns a sequence number to send a ``sync`` for, if due."""
        self.seq += 1
        self.sent_bytes += nbytes
        limits = self.limits
        if limits.frames <= 0:
            return None
        if (self.seq - self._synced_at >= max(1, limits.frames // 4)
                or self.sent_bytes - self._synced_bytes >= max(1, limits.bytes // 4)
                or not self.window_open()):
            return self.mark()
        return None

    def mark(self) -> int | None:
        """A sync point at the current count (None if the last one is current)."""
        if self.seq == self._synced_at:
            return None
        self._synced_at, self._synced_bytes = self.seq, self.sent_bytes
        self._marks.append((self.seq, self.sent_bytes))
        return self.seq

    def ack(self, seq: int, now: float) -> bool:
        """The client has every frame up to ``seq``. True if catching up can proceed now.

        Raises ValueError for a number the server never sent (or went below a previous ack:
        acks only move forward, but a repeated or older one is ignored).
        """
        if type(seq) is not int or seq < 0 or seq > self.seq:
            raise ValueError(f"ack seq must be an integer from 0 to {self.seq}")
        if seq > self.acked:
            self.acked = seq
            self.last_progress = now
            while self._marks and self._marks[0][0] <= seq:
                mark_seq, mark_bytes = self._marks.popleft()
                self.acked_bytes = max(self.acked_bytes, mark_bytes)
            if seq == self.seq:
                self.acked_bytes = self.sent_bytes
        return self.behind and self.window_open()

    # -- held frames -----------------------------------------------------------------
    def hold(self, key: Hashable, text: str, time: int, ticks: int, now: float, *,
             revised: bool = False, extra: Any = None) -> bool:
        """Keep ``text`` as ``key``'s newest frame instead of sending it.

        Returns True when this puts the connection behind (tell the client, once).
        An update older than the one already held is ignored unless it is a revision.
        """
        newly = not self.behind
        if newly:
            self.behind = True
            self.behind_since = now
            self.last_progress = now
            self.times_behind += 1
        prev = self.held.get(key)
        if prev is None:
            self.held[key] = Held(text=text, time=time, ticks=ticks, min_time=time, extra=extra)
            return newly
        if not revised and (time < prev.time or (time == prev.time and ticks < prev.ticks)):
            prev.replaced += 1
            self.dropped += 1
            return newly
        prev.mixed = prev.mixed or time != prev.time
        prev.min_time = min(prev.min_time, time)
        prev.text, prev.time, prev.ticks, prev.extra = text, time, ticks, extra
        prev.replaced += 1
        self.dropped += 1
        return newly

    def next_held(self) -> tuple[Hashable, Held] | None:
        """The oldest-held stream to catch up next (insertion order), removed from the book."""
        if not self.held:
            return None
        key = next(iter(self.held))
        return key, self.held.pop(key)

    def discard(self, key: Hashable) -> None:
        self.held.pop(key, None)

    def caught_up(self) -> bool:
        """After a resync pass: True (and no longer behind) when nothing is held."""
        if self.behind and not self.held:
            self.behind = False
            return True
        return False

    def stalled(self, now: float) -> bool:
        """Behind and nothing acknowledged for ``stall_seconds``: close the connection."""
        return self.behind and now - self.last_progress >= self.limits.stall_seconds

