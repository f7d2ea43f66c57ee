"""Full garbage collections on a timer, not in the middle of a fan-out burst.

With 1000 sockets a daphne process holds ~240,000 tracked objects and CPython's automatic
full collection (generation 2) stopped it for 60-100 ms a few times every 20 s: the whole
p99 of bench/fanout.py (108 ms; 55 ms with the collector off). Here the objects that exist
once the application is loaded (modules, settings, URLconf: never garbage) are frozen out
of every collection, the young generations run as usual (they reclaim most cycles, in
about 0.1-10 ms), and the full collection runs every ``TICKCHART_GC_FULL_SECONDS`` from a
thread instead of whenever the allocation counters say. 0 leaves Python's defaults.

The thread also collects early once the process has grown by ``TICKCHART_GC_GROWTH_MIB``
since the last full collection. Serving history pages leaves about 1 MiB per 10,000-candle
page that only a full collection gives back (bench/client_history.py: daphne 174 -> 308 MiB
over 1.2 M candles with the 5-minute timer alone, flat at 190 MiB with Python's defaults),
so a busy history API would otherwise grow by gigabytes between two timed collections.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time

logger = logging.getLogger(__name__)

_NEVER = 1_000_000  # generation-2 threshold: counted in generation-1 runs, so "not by itself"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_installed = False


def install(full_every: float, growth_mib: float = 64.0) -> bool:
    """Once per process; returns whether the timer runs."""
    global _installed
    if full_every <= 0 or _installed:
        return _installed
    _installed = True
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)
    threading.Thread(target=_collect_every, args=(full_every, growth_mib), name="tickchart-gc",
                     daemon=True).start()
    return True


def resident_mib() -> float | None:
    """This process's resident memory (Linux ``/proc/self/statm``; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * _PAGE / 2**20


def _collect_every(seconds: float, growth_mib: float) -> None:
    check = min(seconds, 1.0)
    last_at, last_rss = time.monotonic(), resident_mib()
    while True:
        time.sleep(check)
        rss = resident_mib()
        grown = rss is not None and last_rss is not None and growth_mib > 0 and rss - last_rss >= growth_mib
        if not grown and time.monotonic() - last_at < seconds:
            continue
        started = time.perf_counter()
        found = gc.collect()
        last_at, last_rss = time.monotonic(), resident_mib()
        logger.debug("full garbage collection (%s): %d unreachable objects in %.0f ms",
                     "memory grew" if grown else "timer", found, (time.perf_counter() - started) * 1000)
