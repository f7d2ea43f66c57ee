"""1 M candles out of a real server: the Python client into a DataFrame, and the streamed
CSV / Parquet exports (issue 16).

Stores ``--candles`` 5 s candles of one symbol in a temporary SQLite file, serves it with
daphne (production settings, a read token), then per run:

- ``Client.history(...)`` into a pandas DataFrame: wall time, and the client's peak
  memory above its start (``ru_maxrss``, in a fresh process each run);
- ``GET /api/candles.csv`` and ``/api/candles.parquet`` read to the end: wall time, bytes,
  and daphne's peak resident memory (``VmHWM``) before and after, which stays flat when
  the export streams.

Prints the median and range over ``--runs``. On a machine doing nothing else:

    .venv/bin/python bench/client_history.py [--candles 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import daphne  # noqa: E402

TICKER = "NSE:BENCH-EQ"
T0 = 1_700_000_000

SEED = """
from market import services
from market.core.types import Candle, CandleUpdate
n = {n}
sym, _ = services.symbol_register(ticker="{ticker}", exchange="BENCH", name="bench")
batch = []
for i in range(n):
    p = 100 + (i % 997) * 0.05
    batch.append(CandleUpdate("{ticker}", "5s", Candle(time={t0} + 5 * i, open=p, high=p + 0.5, low=p - 0.5,
                                                        close=p + 0.1, volume=100 + i % 50, ticks=3), True))
    if len(batch) == 50_000:
        services.candle_upsert_many(updates=batch, symbol_ids={{"{ticker}": sym.id}})
        batch = []
services.candle_upsert_many(updates=batch, symbol_ids={{"{ticker}": sym.id}})
from django.contrib.auth.models import User
from market import tokens
print("TOKEN", tokens.api_token_create(user=User.objects.create_user("bench"), name="bench")[1])
"""

CLIENT = """
import resource, sys, time
sys.path.insert(0, {client!r})
from tickchart_client import Client
import pandas  # loaded before the baseline: the growth is the history's, not the library's
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
df = Client({url!r}, {token!r}).history({ticker!r}, "5s")
took = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(df), took, (peak - before) / 1024, df.memory_usage(deep=True).sum() / 2**20)
"""


def vm_hwm(pid: int) -> float:
    """Peak resident memory of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fetch(url: str, token: str) -> tuple[float, int]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    size = 0
    with urllib.request.urlopen(req, timeout=600) as response:
        while chunk := response.read(1 << 20):
            size += len(chunk)
    return time.perf_counter() - started, size


def summary(name: str, values: list[float], unit: str) -> str:
    return (f"{name:<38} median {statistics.median(values):8.2f} {unit}  "
            f"range {min(values):.2f}–{max(values):.2f} {unit}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candles", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tickchart-bench-client-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith(("PYTEST", "TICKCHART_"))}
    env.update(DJANGO_DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1",
               SECURE_COOKIES="0", TICKCHART_DB_PATH=str(tmp / "db.sqlite3"), TICKCHART_HTTP_RATE_PER_MINUTE="0",
               TICKCHART_GC_FULL_SECONDS=os.environ.get("TICKCHART_GC_FULL_SECONDS", "300"))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED.format(ticker=TICKER, t0=T0, n=args.candles)],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    token = next(line.split()[1] for line in out.splitlines() if line.startswith("TOKEN"))
    print(f"stored {args.candles:,} 5s candles in {time.perf_counter() - started:.0f} s; {args.runs} runs each")

    with daphne(env, tmp / "daphne.log") as (port, proc):
        base = f"http://127.0.0.1:{port}"
        print(f"daphne peak RSS at start {vm_hwm(proc.pid):.0f} MiB")
        frame_s, frame_mb, frame_size = [], [], 0.0
        for _ in range(args.runs):
            code = CLIENT.format(client=str(ROOT / "client"), url=base, token=token, ticker=TICKER)
            n, took, grew, size = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                                 text=True).stdout.split()
            assert int(n) == args.candles, n
            frame_s.append(float(took))
            frame_mb.append(float(grew))
            frame_size = float(size)
            print(f"  run {len(frame_s)}: {float(took):.2f} s; daphne peak RSS {vm_hwm(proc.pid):.0f} MiB")
        print(summary("client.history -> DataFrame", frame_s, "s"))
        print(summary("  client peak memory growth", frame_mb, "MiB") + f"  (the frame itself {frame_size:.0f} MiB)")
        print(f"daphne peak RSS after the history reads {vm_hwm(proc.pid):.0f} MiB")
        for fmt in ("csv", "parquet"):
            times, sizes, growth = [], [], []
            for _ in range(args.runs):
                hwm = vm_hwm(proc.pid)
                took, size = fetch(f"{base}/api/candles.{fmt}?symbol={TICKER}&tf=5s", token)
                times.append(took)
                sizes.append(size)
                growth.append(vm_hwm(proc.pid) - hwm)
            print(summary(f"GET /api/candles.{fmt} ({sizes[0] / 2**20:.0f} MiB)", times, "s"))
            print(summary("  daphne peak RSS growth", growth, "MiB") + f"  (peak {vm_hwm(proc.pid):.0f} MiB)")


if __name__ == "__main__":
    main()
