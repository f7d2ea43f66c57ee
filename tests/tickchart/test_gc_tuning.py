"""tickchart.gc_tuning in a fresh interpreter, as daphne loads the application: startup
objects frozen, no automatic full collection, and the timer's full collections run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import gc, json, time
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2 and full.append(1))
import tickchart.asgi
time.sleep(0.7)
print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(), "full": len(full)}))
"""


def probe(seconds: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={**os.environ, "TICKCHART_GC_FULL_SECONDS": seconds})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_startup_is_frozen_and_full_collections_come_from_the_timer():
    got = probe("0.2")
    assert got["threshold"][2] == 1_000_000, "no automatic full collection"
    assert got["frozen"] > 10_000, "the loaded application is out of every collection"
    assert got["full"] >= 3, "one at install, then the timer's every 0.2 s"


def test_zero_leaves_pythons_collector_alone():
    got = probe("0")
    assert got["threshold"] == [700, 10, 10] and got["frozen"] == 0


GROWTH = """
import gc, json, time
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2 and full.append(1))
import tickchart.asgi
loaded = len(full)  # the application's start-up ones (install's included)
time.sleep(1.5)
quiet = len(full) - loaded
hoard = [bytearray(1 << 20) for _ in range(96)]  # 96 MiB resident: past the 64 MiB growth trigger
time.sleep(2.5)
print(json.dumps({"quiet": quiet, "after": len(full) - loaded - quiet}))
"""


def test_a_full_collection_comes_early_once_the_process_has_grown():
    out = subprocess.run([sys.executable, "-c", GROWTH], capture_output=True, text=True, check=True,
                         env={**os.environ, "TICKCHART_GC_FULL_SECONDS": "300", "TICKCHART_GC_GROWTH_MIB": "64"})
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["quiet"] == 0, "none while nothing grows (the timer is 300 s)"
    assert got["after"] >= 1, "memory grew by 96 MiB: collected without waiting for the timer"
