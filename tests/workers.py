"""Each pytest-xdist worker's own share of the machine's Redis.

scripts/test.sh runs the suite's files on several workers (``-n``): most of its time is
spent waiting on real servers and processes, not on the CPU. Tests on different workers
must not see each other's group messages, budgets or cache keys, so each worker gets its
own Redis database. This module is loaded with ``-p tests.workers``, before pytest-django
reads the settings (which build the channel layer and cache from ``REDIS_URL``).
PostgreSQL needs nothing here: pytest-django already gives each worker its own test
database (``test_tickchart_gw0``, ...), and private servers bind free ports.

Databases: the services run (``REDIS_URL`` set) uses 1-7, the embedded run's Redis tests
9-15, so the two runs side by side never share one either; db 0 stays the single-process
default. Redis pub/sub channels are not per database, though, so each worker's channel
layer (and cache keys) also get their own prefix (``TICKCHART_CHANNEL_PREFIX``); tests that
start processes of their own still give them a prefix of their own.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse, urlunparse

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
MAX_WORKERS = 7


def worker_number(worker: str = WORKER) -> int | None:
    """gw0 -> 0, gw1 -> 1, ...; None outside xdist."""
    if not worker.startswith("gw"):
        return None
    number = int(worker[2:])
    if number >= MAX_WORKERS:
        raise RuntimeError(f"at most {MAX_WORKERS} test workers share one Redis (16 databases); got {worker}")
    return number


def with_db(url: str, db: int) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{db}"))


def isolate(environ: os._Environ | dict = os.environ, worker: str = WORKER) -> None:
    number = worker_number(worker)
    if number is None:
        return
    run = "services" if environ.get("REDIS_URL") else "embedded"
    environ["TICKCHART_CHANNEL_PREFIX"] = f"{environ.get('TICKCHART_CHANNEL_PREFIX', 'tickchart')}-{run}-{worker}"
    if environ.get("REDIS_URL"):
        environ["REDIS_URL"] = with_db(environ["REDIS_URL"], 1 + number)
    else:
        # The embedded run's tests that need Redis read this (tests/conftest.py).
        environ["TICKCHART_TEST_REDIS_URL"] = with_db(
            environ.get("TICKCHART_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), 9 + number)


isolate()
