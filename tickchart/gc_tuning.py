"""Full garbage collections on a timer, not in the middle of a fan-out burst.

With 1000 sockets a daphne process holds ~240,000 tracked objects and CPython's automatic
full collection (generation 2) stopped it for 60-100 ms a few times every 20 s: the whole
p99 of bench/fanout.py (108 ms; 55 ms with the collector off). Here the objects that exist
once the application is loaded (modules, settings, URLconf: never garbage) are frozen out
of every collection, the young generations run as usual (they reclaim most cycles, in
about 0.1-10 ms), and the full collection runs every ``TICKCHART_GC_FULL_SECONDS`` from a
thread instead of whenever the allocation counters say. 0 leaves Python's defaults.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

logger = logging.getLogger(__name__)

_NEVER = 1_000_000  # generation-2 threshold: counted in generation-1 runs, so "not by itself"
_installed = False


def install(full_every: float) -> bool:
    """Once per process; returns whether the timer runs."""
    global _installed
    if full_every <= 0 or _installed:
        return _installed
    _installed = True
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)
    threading.Thread(target=_collect_every, args=(full_every,), name="tickchart-gc", daemon=True).start()
    return True


def _collect_every(seconds: float) -> None:
    while True:
        time.sleep(seconds)
        started = time.perf_counter()
        found = gc.collect()
        logger.debug("full garbage collection: %d unreachable objects in %.0f ms",
                     found, (time.perf_counter() - started) * 1000)
