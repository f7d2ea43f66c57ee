"""``runfeed --record DIR``: every raw data-socket message, as JSON Lines, gzip, one file per
trading day (exchange-local date), in exactly the format ``runfeed --source replay`` reads.

A message goes to the file of its own exchange time (``exch_feed_time``) when it has
one, else of the wall clock, so a day's file holds that day's ticks even around
midnight. Restarts append a new gzip member to the day's file (gzip readers, the
replay feed's included, read concatenated members as one stream). The file is flushed
every ``flush_seconds`` so a crash loses at most that much.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import time
from pathlib import Path
from typing import IO, Any, Callable
from zoneinfo import ZoneInfo

import orjson

logger = logging.getLogger("market.feed")


class Recorder:
    def __init__(
        self, directory: str | Path, *, tz: str = "Asia/Kolkata", prefix: str = "fyers",
        flush_seconds: float = 5.0, clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.zone = ZoneInfo(tz)
        self.prefix = prefix
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._files: dict[str, IO[bytes]] = {}
        self._last_flush = clock()
        self.written = 0
        self.failures = 0

    def path_for(self, date: dt.date) -> Path:
        return self.directory / f"{self.prefix}-{date.isoformat()}.jsonl.gz"

    def _date_of(self, message: Any) -> dt.date:
        t = message.get("exch_feed_time") if isinstance(message, dict) else None
        if type(t) not in (int, float) or not 1e9 <= t < 1e10:
            t = self._clock()
        return dt.datetime.fromtimestamp(t, self.zone).date()

    def write(self, message: Any) -> None:
        """Append one message; a disk error is counted and logged, never raised into the feed."""
        date = self._date_of(message)
        key = date.isoformat()
        try:
            f = self._files.get(key)
            if f is None:
                if len(self._files) >= 2:  # yesterday's file stays open around midnight only
                    oldest = min(self._files)
                    self._files.pop(oldest).close()
                f = self._files[key] = gzip.open(self.path_for(date), "ab")
            f.write(orjson.dumps(message) + b"\n")
            self.written += 1
            now = self._clock()
            if now - self._last_flush >= self.flush_seconds:
                self.flush()
                self._last_flush = now
        except (OSError, TypeError) as exc:
            self.failures += 1
            if self.failures == 1 or self.failures % 10_000 == 0:
                logger.error("recorder: cannot write (%s); %d messages lost so far", exc, self.failures)

    def flush(self) -> None:
        for f in self._files.values():
            f.flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
