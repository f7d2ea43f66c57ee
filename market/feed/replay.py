"""Replay a recorded Fyers session: JSON Lines (plain or gzip), one decoded message per line.

Each line is exactly what fyers-apiv3 hands to ``on_message``; it goes through the same
parser as the live feed. Unknown symbols are registered (exchange from the ``NSE:``
prefix, kind from the message). ``speed`` 0 replays as fast as possible, 1 in real time.

The file is its own journal: the position stored with every write is (the file's identity,
lines handled), so a runfeed killed at any moment and started again on the same file skips
what is stored and continues from the engine states stored with it: the candles come out
exactly as from one uninterrupted run. Another file starts from its first line.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import os
import sys
import time
from pathlib import Path

import orjson

from market.vendors.fyers import messages as fyers_messages
from market.core.types import Reject, Tick
from market.feed.base import Feed, Parser

logger = logging.getLogger("market.feed")

YIELD_EVERY = 2000     # lines: the loop hands over to the flusher at least this often ...
YIELD_SECONDS = 0.01   # ... and whenever it has run this long (checked every CHECK_EVERY lines),
CHECK_EVERY = 50       # so a flush's write and publish go on while the replay runs, not after it


class ReplayFeed(Feed):
    live = False

    @classmethod
    def parser(cls) -> Parser:
        return fyers_messages.parse  # a recording holds Fyers-shaped messages

    def __init__(self, ctx, *, file: str | os.PathLike, speed: float = 0.0, progress: bool | None = None, **options):
        super().__init__(ctx, **options)
        self.path = Path(file)
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.lines = 0

    async def run(self, stop: asyncio.Event) -> None:
        if not self.path.exists():
            raise FileNotFoundError(f"replay file not found: {self.path}")
        ctx = self.ctx
        size = self.path.stat().st_size
        ident = self._identity(size)
        resume = ctx.resume_position
        skip = int(resume[1]) if isinstance(resume, (list, tuple)) and len(resume) == 2 and resume[0] == ident else 0
        if skip:
            logger.info("replay %s: %d lines already stored, continuing after them", self.path.name, skip)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"replay {self.path.name}")
        raw = open(self.path, "rb")
        stream = gzip.GzipFile(fileobj=raw) if raw.read(2) == b"\x1f\x8b" else raw
        raw.seek(0)
        self.ctx.set_status("live", f"replaying {self.path.name}")
        first_time: float | None = None
        wall_start = time.monotonic()
        started = time.monotonic()
        clock = time.monotonic
        next_yield = clock() + YIELD_SECONDS
        try:
            for line in stream:
                self.lines += 1
                if self.lines % CHECK_EVERY == 0 and (self.lines % YIELD_EVERY == 0 or clock() >= next_yield):
                    ctx.position = (ident, self.lines - 1)  # what a flush now includes
                    if bar is not None:
                        bar.update(raw.tell() - bar.n)
                    await asyncio.sleep(0)
                    next_yield = clock() + YIELD_SECONDS
                    if stop.is_set():
                        break
                if self.lines <= skip or not line.strip():
                    continue
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:
                    ctx.reject_message("bad_json")
                    continue
                result = ctx.parse(message)
                if not isinstance(result, Tick):
                    continue
                if not ctx.knows(result.symbol):
                    ctx.position = (ident, self.lines - 1)  # this line is not handled yet
                    if not await self._register(result.symbol, message):
                        ctx.reject(Reject.UNKNOWN_SYMBOL.value)
                        continue
                if self.speed > 0:
                    if first_time is None:
                        first_time = result.time
                    delay = wall_start + (result.time - first_time) / self.speed - time.monotonic()
                    if delay > 0:
                        ctx.position = (ident, self.lines - 1)
                        await asyncio.sleep(delay)
                ctx.add(result)
            else:
                ctx.position = (ident, self.lines)  # the whole file
        finally:
            if bar is not None:
                bar.update(size - bar.n)
                bar.close()
            stream.close()
            raw.close()
        elapsed = time.monotonic() - started
        logger.info("replay %s: %d lines in %.2fs (%.0f lines/s)", self.path.name, self.lines,
                    elapsed, self.lines / elapsed if elapsed else 0.0)

    def _identity(self, size: int) -> str:
        """Size and a digest of the first MiB: the same recording under any name or path."""
        with open(self.path, "rb") as f:
            head = f.read(1 << 20)
        return f"{size}:{hashlib.sha256(head).hexdigest()[:24]}"

    async def _register(self, ticker: str, message: dict) -> bool:
        exchange = fyers_messages.exchange_of(ticker)
        return await self.ctx.register(ticker=ticker, exchange=exchange or "OTHER",
                                       kind=fyers_messages.kind_of(message))
