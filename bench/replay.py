"""Replay end to end: synthetic Fyers recording -> runfeed --source replay -> database (+ layer).

Prints ticks/s and runfeed's last summary line (write lag). By default into a throwaway
SQLite database with the in-process layer (target >= 50,000 ticks/s); with ``--services``
into a scratch PostgreSQL database and the Redis pub/sub layer, the production topology
(issue 17: >= 40,000 ticks/s flat out, slowest write < 0.5 s; >= 20,000 ticks/s sustained,
write lag < 1 s). The rate is end to end (the runfeed process from start to exit, Django's
start-up included); the replay loop's own rate (runfeed's "lines in" log line) is printed
beside it.

    python bench/replay.py [--messages 500000] [--symbols 500] [--services] [--sustained 20000]
    python bench/replay.py --services --messages 300000 --symbols 50   # issue 17's catch-up case
    python bench/replay.py --rows 100000 [--batch 5000] [--services]   # the bare candle write

The replay prints ticks/s, candle rows written per second and the slowest write.
``--rows N`` skips runfeed: N new 5 s candles (``--symbols`` of them per time step, so
several UTC days, i.e. several partitions, once N is large) go through
``services.candle_store_checkpointed`` (the writer's transaction: fence, candles, the
position) ``--batch`` rows at a time, then the same rows again, revised (every one a
conflict), and prints rows/s and the slowest call of each pass.

``--sustained R`` paces the replay in real time (``--speed 1``) at R ticks per second of
exchange time, so the summary's ``slowest_write`` is the write lag at that steady rate
(a tick waits at most the flush interval plus that); without it the replay runs flat
out and its writes are as large as the backlog.

``--services`` uses TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
to create and drop the scratch database, and REDIS_URL (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import uuid
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market.vendors.fyers.recording import fyers_session  # noqa: E402

TARGET = 50_000
TARGET_SERVICES = 40_000


def scratch_postgres(admin_url: str, name: str, drop: bool = False) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"' if drop else f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def bare_rows(args: argparse.Namespace, admin_url: str, db_name: str) -> None:
    """``--rows``: the candle write alone, in this process (no feed, no layer)."""
    tmp = tempfile.mkdtemp()
    os.environ.pop("REDIS_URL", None)
    os.environ["TICKCHART_DB_PATH"] = str(Path(tmp) / "bench.sqlite3")
    if args.services:
        os.environ["DATABASE_URL"] = scratch_postgres(admin_url, db_name)
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tickchart.settings")
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from market import services
        from market.core.types import Candle, CandleUpdate

        call_command("migrate", verbosity=0)
        tickers = [f"NSE:ROW{i:04d}-EQ" for i in range(args.symbols)]
        ids = {t: services.symbol_register(ticker=t, exchange="NSE")[0].pk for t in tickers}
        epoch = services.writer_claim(name="bench-rows")
        t0 = 1_795_000_000 - 1_795_000_000 % 86_400 - 3_600  # an hour before a UTC midnight
        steps = -(-args.rows // args.symbols)
        times = [t0 + 5 * k for k in range(steps)]

        def updates(revision: int) -> list:
            out = []
            for k, t in enumerate(times):
                for i, ticker in enumerate(tickers):
                    if len(out) == args.rows:
                        return out
                    p = 100.0 + i + k * 0.01 + revision * 0.25
                    out.append(CandleUpdate(ticker, "5s", Candle(t, p, p + 0.5, p - 0.5, p + 0.125,
                                                                 1000 + k + revision, 7 + revision), True))
            return out

        results = []
        for label, revision in (("new rows", 0), ("all conflicts (revised)", 1)):
            batch = updates(revision)
            slowest = 0.0
            started = time.perf_counter()
            for i in range(0, len(batch), args.batch):
                t = time.perf_counter()
                services.candle_store_checkpointed(updates=batch[i:i + args.batch], symbol_ids=ids,
                                                   writer="bench-rows", epoch=epoch, states={},
                                                   position=i)
                slowest = max(slowest, time.perf_counter() - t)
            elapsed = time.perf_counter() - started
            results.append((label, len(batch), elapsed, slowest))
        connections.close_all()
    finally:
        if args.services:
            scratch_postgres(admin_url, db_name, drop=True)
    where = "PostgreSQL" if args.services else "SQLite"
    print(f"bare candle write into {where}, {args.symbols} symbols, {args.batch} rows per transaction")
    print(f"| pass | rows | seconds | rows/s | slowest call |")
    print(f"|---|---:|---:|---:|---:|")
    for label, n, elapsed, slowest in results:
        print(f"| {label} | {n:,} | {elapsed:.2f} | {n / elapsed:,.0f} | {slowest:.3f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--services", action="store_true", help="PostgreSQL + Redis instead of SQLite")
    parser.add_argument("--sustained", type=float, default=0.0, metavar="TICKS_PER_S",
                        help="replay in real time at this many ticks per second (default: flat out)")
    parser.add_argument("--rows", type=int, default=0, metavar="N",
                        help="no replay: N candles through the writer's transaction alone")
    parser.add_argument("--batch", type=int, default=5000, help="with --rows: rows per transaction")
    args = parser.parse_args()
    admin_url = os.environ.get("TEST_POSTGRES_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    db_name = f"tickchart_bench_{uuid.uuid4().hex[:8]}"
    if args.rows:
        bare_rows(args, admin_url, db_name)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "session.jsonl"
        with open(path, "wb") as f:
            per_instrument = args.sustained / (args.symbols + 1) if args.sustained else 2.0  # + 1 index
            for msg in fyers_session(symbols=args.symbols, messages=args.messages, repeat_every=0,
                                     rate=per_instrument):
                f.write(orjson.dumps(msg) + b"\n")
        env = dict(os.environ, TICKCHART_DB_PATH=str(Path(tmp) / "bench.sqlite3"))
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        if args.services:
            env["DATABASE_URL"] = scratch_postgres(admin_url, db_name)
            env["REDIS_URL"] = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
            env["TICKCHART_CHANNEL_PREFIX"] = f"bench{uuid.uuid4().hex[:6]}"
        try:
            subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "manage.py", "runfeed", "--source", "replay", "--file", str(path),
                 "--speed", "1" if args.sustained else "0", "--no-migrate"],
                cwd=ROOT, env=env, check=True, stderr=subprocess.PIPE, text=True,
            )
            elapsed = time.perf_counter() - started
        finally:
            if args.services:
                scratch_postgres(admin_url, db_name, drop=True)
    summaries = [line for line in done.stderr.splitlines() if re.search(r"accepted", line)]
    where = "PostgreSQL + Redis" if args.services else "SQLite"
    target = TARGET_SERVICES if args.services else TARGET
    rate = args.messages / elapsed
    if summaries:
        print("runfeed's last summary: " + summaries[-1])
    if args.sustained:
        found = re.search(r"slowest_write=([\d.]+)s", summaries[-1] if summaries else "")
        slowest = float(found.group(1)) if found else float("nan")
        flush = float(os.environ.get("TICKCHART_FLUSH_INTERVAL") or 0.5)
        span = args.messages / args.sustained
        kept_up = elapsed <= span + 5.0  # + start-up and the final flush
        lag = flush + slowest
        print(f"sustained {args.sustained:,.0f} ticks/s into {'PostgreSQL + Redis' if args.services else 'SQLite'}: "
              f"{span:.0f} s of exchange time in {elapsed:.1f} s ({'kept up' if kept_up else 'FELL BEHIND'}); "
              f"slowest write {slowest:.2f} s, so a tick is stored within {lag:.2f} s "
              f"(target < 1 s: {'met' if kept_up and lag < 1.0 else 'NOT met'})")
        return
    last = summaries[-1] if summaries else ""
    found = re.search(r"candles_written=(\d+)", last)
    written = int(found.group(1)) if found else 0
    found = re.search(r"slowest_write=([\d.]+)s", last)
    slowest = float(found.group(1)) if found else float("nan")
    found = re.search(r"(\d+) lines in ([\d.]+)s", done.stderr)
    loop = f"{int(found.group(1)) / float(found.group(2)):,.0f} lines/s in {float(found.group(2)):.2f} s" if found else "?"
    print(f"replay end to end into {where}: {args.messages} messages, {args.symbols} symbols, "
          f"{elapsed:.2f} s, {rate:,.0f} ticks/s (target {target:,}: {'met' if rate >= target else 'NOT met'}); "
          f"the replay loop alone: {loop}")
    print("| into | messages | symbols | seconds | ticks/s | candle rows written | rows/s | slowest write |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {where} | {args.messages:,} | {args.symbols} | {elapsed:.2f} | {rate:,.0f} | {written:,} | "
          f"{written / elapsed:,.0f} | {slowest:.2f} s |")


if __name__ == "__main__":
    main()
