"""A write-ahead journal of the ticks a live feed's engine accepted.

A replay's file is its own journal (the checkpoint stores a line number). A live broker
does not resend what a killed process had received, so the writer keeps its own: every
accepted tick gets a sequence number and is appended to segment files in batches, one
``fsync`` per batch (``SYNC_INTERVAL``, in a thread, off the event loop). The checkpoint
stored with the candles carries ``{"journal": id, "seq": n}``; on start the ticks after
``n`` are replayed into the engine, so a SIGKILL loses at most the last unsynced batch.
Segments wholly covered by a committed checkpoint are deleted; the total is capped
(``JOURNAL_MAX_BYTES``), loudly.

Record format: one line per tick, ``<crc32 of the JSON, 8 hex digits> <JSON array>``
(``[symbol, time, price, day_volume, last_traded_time, size]``). A torn last line after a
power cut (no newline, a bad checksum) is detected and cut off on open. A segment is named
by the sequence number of its first record, so numbers are implicit; a batch that could
not be written (disk full, cap reached, an I/O error) leaves a gap, and the next batch
starts a new segment. While a gap lies after the last checkpoint the journal cannot
reproduce that stretch, and ``reproduces`` says so.

No Django here: the runner wires it (``market.feed.runner``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Any, Iterator

import orjson

from market.core.types import Tick

logger = logging.getLogger("market.feed")

SUFFIX = ".tj"
SYNC_INTERVAL = 0.05      # seconds between batches (each one write + fsync)
SEGMENT_SECONDS = 60.0    # a segment is closed after this long (so it can be deleted once covered)
SEGMENT_BYTES = 16 << 20  # … or once this large
LOUD_EVERY = 30.0         # seconds between repeats of a "cannot journal" error while it lasts
ASIDE_KEPT = 3            # journals set aside that are kept for an operator to look at; older ones go


def encode(tick: Tick) -> bytes:
    body = orjson.dumps([tick.symbol, tick.time, tick.price, tick.day_volume, tick.last_traded_time, tick.size])
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode(line: bytes) -> Tick | None:
    """The tick of one record, or None when it is torn or corrupt."""
    if len(line) < 11 or line[-1:] != b"\n" or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        symbol, t, price, day_volume, ltt, size = orjson.loads(body)
        return Tick(symbol, t, price, day_volume, ltt, size)
    except (ValueError, TypeError):
        return None


def is_position(value: Any) -> bool:
    return isinstance(value, dict) and "journal" in value and "seq" in value


class TickJournal:
    """One writer's journal directory: ``open``, ``append`` (hot path), ``run`` (the syncing
    task), ``covered`` (after a committed checkpoint), ``read`` (replay)."""

    def __init__(self, directory: str | os.PathLike, *, max_bytes: int, segment_bytes: int = SEGMENT_BYTES,
                 segment_seconds: float = SEGMENT_SECONDS, sync_interval: float = SYNC_INTERVAL) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = min(segment_bytes, max(4096, max_bytes // 8))
        self.segment_seconds = segment_seconds
        self.sync_interval = sync_interval
        self.id = ""
        self.seq = 0                 # the last sequence number given out
        self.synced = 0              # every record up to this one is on disk (or lost in a gap)
        self.last: Tick | None = None  # the newest record found on open
        self.gap_upto = 0            # records up to this number may be missing from disk
        self.unjournaled = 0         # records that could not be written, over the process' life
        self.full = False            # the size cap is reached
        self.failing: str | None = None  # the last write error, while writes fail
        self.bytes = 0
        self.batches = 0
        self._buffer: list[bytes] = []
        self._buffer_first = 1       # sequence number of _buffer[0]
        self._segments: list[tuple[int, Path, int]] = []  # (first seq, path, bytes), ascending
        self._file: Any = None
        self._file_opened = 0.0
        self._covered = 0
        self._lock = threading.Lock()  # the syncing thread against replay reads
        self._buffer_lock = threading.Lock()  # append (event loop) against the swap (a thread)
        self._loud_at = 0.0

    # -- opening -----------------------------------------------------------------------
    def open(self) -> None:
        """Read (or make) the directory: its id, its segments, the last intact record."""
        self.dir.mkdir(parents=True, exist_ok=True)
        ident = self.dir / "id"
        if ident.exists():
            self.id = ident.read_text().strip()
        if not self.id:
            self.id = uuid.uuid4().hex[:16]
            tmp = self.dir / "id.tmp"
            tmp.write_text(self.id + "\n")
            os.replace(tmp, ident)
            _fsync_dir(self.dir)
        found = []
        for path in self.dir.glob(f"*{SUFFIX}"):
            try:
                found.append((int(path.stem), path, path.stat().st_size))
            except ValueError:
                continue
        self._segments = sorted(found)
        self.bytes = sum(size for _, _, size in self._segments)
        while self._segments:
            first, path, _ = self._segments[-1]
            count, good, last = _scan(path)
            if good < path.stat().st_size:
                logger.warning("journal %s: dropped a torn or corrupt tail of %d bytes (a write cut off)",
                               path.name, path.stat().st_size - good)
                with open(path, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
            if count == 0:
                path.unlink()
                self._segments.pop()
                continue
            self._segments[-1] = (first, path, good)
            self.seq = first + count - 1
            self.last = last
            break
        self.bytes = sum(size for _, _, size in self._segments)
        self.synced = self.seq  # (nothing counts as covered until a stored checkpoint says so)
        self._buffer_first = self.seq + 1

    def set_aside(self) -> None:
        """Move this journal's records away (they belong to no stored checkpoint) and start empty."""
        aside = self.dir.with_name(f"{self.dir.name}.aside-{time.time_ns()}")
        with self._lock:
            self._close()
        self.dir.rename(aside)
        logger.warning("journal %s does not belong to the stored checkpoint: moved to %s", self.dir, aside.name)
        self._forget_old_asides()
        self.id, self.seq, self.last = "", 0, None
        self.open()

    def _forget_old_asides(self) -> None:
        """Keep the newest ASIDE_KEPT set-aside journals, so that a database swapped again and
        again (or many runs killed before their first write) cannot fill the disk with them."""
        prefix = f"{self.dir.name}.aside-"
        asides = sorted((p for p in self.dir.parent.iterdir() if p.name.startswith(prefix) and p.is_dir()),
                        key=lambda p: int(p.name[len(prefix):]) if p.name[len(prefix):].isdigit() else 0)
        for old in asides[:-ASIDE_KEPT]:
            size = sum(f.stat().st_size for f in old.iterdir() if f.is_file())
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
            logger.warning("journal %s: deleted %s (%d bytes), older than the newest %d set aside",
                           self.dir, old.name, size, ASIDE_KEPT)

    # -- the hot path ------------------------------------------------------------------
    def append(self, tick: Tick) -> None:
        record = encode(tick)
        with self._buffer_lock:
            self.seq += 1
            self._buffer.append(record)

    def skip_to(self, seq: int) -> None:
        """Number on from ``seq``: a stored checkpoint covers ticks the disk lost (a gap)."""
        with self._lock, self._buffer_lock:
            if seq > self.seq and not self._buffer:
                self._close()
                self.seq = self.synced = seq
                self._buffer_first = seq + 1

    def position(self) -> dict[str, Any]:
        """The checkpoint position now: every accepted tick so far."""
        return {"journal": self.id, "seq": self.seq}

    def reproduces(self, after: Any) -> bool:
        """Can ``read`` give back every tick after ``after`` (a stored position)?"""
        return is_position(after) and after["journal"] == self.id and self.gap_upto <= after["seq"]

    def covered(self, position: Any) -> None:
        """A checkpoint at ``position`` is committed: segments wholly before it can go."""
        if is_position(position) and position["journal"] == self.id:
            self._covered = max(self._covered, int(position["seq"]))

    # -- syncing (a thread) ------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Write and fsync the buffer every ``sync_interval`` until ``stop``; then once more."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.sync_interval)
            except asyncio.TimeoutError:
                pass
            await asyncio.to_thread(self.sync)
        await asyncio.to_thread(self.sync)

    def sync(self) -> None:
        """Write what was appended since the last call as one batch, then fsync it."""
        with self._lock:
            with self._buffer_lock:
                batch, first = self._buffer, self._buffer_first
                self._buffer = []
                self._buffer_first = first + len(batch)
            self._prune()
            if not batch:
                return
            data = b"".join(batch)
            last = first + len(batch) - 1
            if self.bytes + len(data) > self.max_bytes:
                self._lose(first, last, f"size cap of {self.max_bytes} bytes reached", full=True)
                return
            try:
                f = self._segment_for(first, len(data))
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            except OSError as exc:
                self._close()
                self._lose(first, last, f"{type(exc).__name__}: {exc}")
                return
            seg_first, path, size = self._segments[-1]
            self._segments[-1] = (seg_first, path, size + len(data))
            self.bytes += len(data)
            self.synced = last
            self.batches += 1
            if self.full or self.failing:
                logger.warning("journal writable again (%d ticks from %d on are journaled)", len(batch), first)
                self.full, self.failing = False, None

    def _segment_for(self, first: int, size: int) -> Any:
        """The open segment, or a new one starting at ``first`` (by age or by size; after a gap
        ``_lose`` has closed it)."""
        if self._file is not None:
            seg_size = self._segments[-1][2]
            aged = time.monotonic() - self._file_opened >= self.segment_seconds
            if aged or seg_size + size > self.segment_bytes:
                self._close()
        if self._file is None:
            path = self.dir / f"{first:016d}{SUFFIX}"
            self._file = open(path, "ab")
            self._file_opened = time.monotonic()
            _fsync_dir(self.dir)
            self._segments.append((first, path, 0))
        return self._file

    def _close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _lose(self, first: int, last: int, why: str, *, full: bool = False) -> None:
        self.gap_upto = max(self.gap_upto, last)
        self.unjournaled += last - first + 1
        self.synced = last
        self._close()  # the next batch starts a new segment after the gap
        now = time.monotonic()
        changed = (full and not self.full) or (not full and self.failing != why)
        if changed or now - self._loud_at >= LOUD_EVERY:
            self._loud_at = now
            logger.error("journal cannot take ticks (%s): %d not journaled so far; a crash now loses "
                         "what is not stored yet", why, self.unjournaled)
        if full:
            self.full = True
        else:
            self.failing = why

    def _prune(self) -> None:
        """Delete the closed segments a committed checkpoint wholly covers."""
        while len(self._segments) > 1 and self._segments[1][0] - 1 <= self._covered:
            _, path, size = self._segments.pop(0)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("journal: cannot delete %s: %s", path.name, exc)
                self._segments.insert(0, (int(path.stem), path, size))
                return
            self.bytes -= size
        if self.full and len(self._segments) == 1 and self._covered >= self.synced:
            self._close()  # at the cap even the open segment goes once wholly covered
            _, path, size = self._segments.pop()
            path.unlink(missing_ok=True)
            self.bytes -= size

    # -- reading -----------------------------------------------------------------------
    def read(self, after: int, upto: int | None = None) -> Iterator[tuple[int, Tick]]:
        """The records numbered ``after + 1`` … ``upto`` (default: all) that are on disk, in order.

        Flushes the buffer first. Gaps are skipped (``gap_upto`` tells whether any lie in range).
        """
        self.sync()
        upto = self.seq if upto is None else upto
        with self._lock:
            segments = list(self._segments)
        for i, (first, path, _) in enumerate(segments):
            end = segments[i + 1][0] - 1 if i + 1 < len(segments) else upto
            if end <= after or first > upto:
                continue
            seq = first - 1
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                continue
            with f:
                for line in f:
                    seq += 1
                    if seq > upto:
                        return
                    if seq <= after:
                        continue
                    tick = decode(line)
                    if tick is None:
                        logger.error("journal %s: corrupt record %d; the rest of this segment is skipped",
                                     path.name, seq)
                        break
                    yield seq, tick

    def stats(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "segments": len(self._segments), "seq": self.seq, "full": self.full,
                "failing": self.failing, "unjournaled": self.unjournaled}


def _scan(path: Path) -> tuple[int, int, Tick | None]:
    """(intact records, bytes they take, the last one) of a segment, stopping at the first bad one."""
    count = good = 0
    last = None
    with open(path, "rb") as f:
        for line in f:
            tick = decode(line)
            if tick is None:
                break
            count += 1
            good += len(line)
            last = tick
    return count, good, last


def _fsync_dir(directory: Path) -> None:
    """Make a new name durable (the file's own fsync does not cover its directory entry)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
