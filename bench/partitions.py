"""Years of data on PostgreSQL (issue 14): the partitioned candle table at size.

Makes the scratch database ``tickchart_bench_partitions`` (migrated: candles partitioned
by timeframe, 5 s by day, 1 m by month), fills ROWS stored candles inside PostgreSQL
(``generate_series``: SYMBOLS symbols, each trading day 4,500 5 s candles and 375 1 m
ones, days back from the day before the replay; 500 symbols make ~2.4 M rows a day, so
``--rows 100000000`` is ~41 days), ANALYZEs it, then measures

- a 5,000-candle history read (``selectors.candle_list``, newest 5 s of a random symbol,
  crossing a day boundary): median / p99 / range over ``--reads`` x ``--runs`` reads
  (target < 20 ms), with the plan of one; first as written (time-major, a symbol's candles
  one per page), then after those two days are compacted as ``prune_candles`` does once a
  day has ended (``CLUSTER`` in key order; its time is printed too);
- retention of one day's 5 s partition: ``DETACH PARTITION … CONCURRENTLY`` + ``DROP
  TABLE`` of the oldest full day, once per run (target < 1 s);
- ingest: a synthetic Fyers session replayed through ``runfeed --source replay`` (the
  real writer path, as ``bench/replay.py --services``) into that table, one fresh trading
  day per run, so each run's first write makes its day's partitions (target >= 20,000
  ticks/s).

    python bench/partitions.py [--rows 5000000] [--symbols 500] [--runs 3] [--reads 200]
                               [--messages 300000] [--keep]

Needs PostgreSQL (TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres)
and Redis (REDIS_URL, default redis://127.0.0.1:6379/0); the database is dropped at the
end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = "tickchart_bench_partitions"
REPLAY_DAY = dt.date(2026, 11, 20)  # the first replayed day; the fill ends the day before
OPEN = 3 * 3600 + 45 * 60  # 09:15 IST in seconds after 00:00 UTC
PER_DAY_5S, PER_DAY_1M = 4500, 375  # 6 h 15 min of 5 s and 1 m candles


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


def _figures(times: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"median {statistics.median(ordered) * scale:.1f} {unit}, p99 {p99 * scale:.1f} {unit}, "
            f"range {ordered[0] * scale:.1f}-{ordered[-1] * scale:.1f} {unit} ({len(ordered)})")


def fill(db, *, rows: int, symbols: int, before: dt.date = REPLAY_DAY) -> list[dt.date]:
    """Symbols and ``rows`` candles, newest day first back from the day before ``before``
    (the replay's; a reused database's oldest, to top it up: the symbols exist then)."""
    from market import services

    if before == REPLAY_DAY:
        db.execute(
            "INSERT INTO market_symbol (ticker, name, exchange, kind, tick_size, lot_size, active, source,"
            " always_record, created_at, updated_at, fytoken, isin, trading_session)"
            " SELECT 'NSE:SYM' || lpad(g::text, 4, '0') || '-EQ', 'bench', 'NSE', 'equity', 0.05, 1, true,"
            " 'replay', false, now(), now(), '', '', '' FROM generate_series(0, %s - 1) g", (symbols,))
    per_day = symbols * (PER_DAY_5S + PER_DAY_1M)
    days = [before - dt.timedelta(days=i + 1) for i in range(-(-rows // per_day))]
    left = rows
    for day in days:
        start = _epoch(day) + OPEN
        services.candle_partition_ensure(pairs=[("5s", start), ("1m", start)])
        n5 = min(PER_DAY_5S, -(-left // symbols))
        n1 = min(PER_DAY_1M, max(0, -(-(left - n5 * symbols) // symbols)))
        for tf, step, n in (("5s", 5, n5), ("1m", 60, n1)):
            if n:
                db.execute(
                    "INSERT INTO market_candle (symbol_id, timeframe, time, open, high, low, close, volume, ticks)"
                    " SELECT s.id, %s, %s + g * %s, 100 + random(), 101 + random(), 99 + random(),"
                    " 100 + random(), (random() * 1000)::int, 1"
                    " FROM market_symbol s CROSS JOIN generate_series(0, %s - 1) g"
                    " WHERE s.ticker LIKE 'NSE:SYM%%'",
                    (tf, start, step, n))
        left -= (n5 + n1) * symbols
        if left <= 0:
            break
    return days


def reads(*, symbols: list, count: int) -> list[float]:
    from market import selectors
    from market.core.timeframes import Timeframe

    tf = Timeframe.parse("5s")
    rng = random.Random(1)
    out = []
    for _ in range(count):
        t = time.perf_counter()
        got = selectors.candle_list(symbol=rng.choice(symbols), tf=tf, limit=5000)
        out.append(time.perf_counter() - t)
        assert got
    return out


def drop_oldest_day() -> tuple[str, int, float]:
    """DETACH … CONCURRENTLY + DROP of the oldest 5 s day partition (autocommit)."""
    from django.db import connection

    from market import selectors
    from market.core.partitions import drop_sql

    oldest = min(r.partition for r in selectors.candle_partition_list()
                 if r.partition.timeframe == "5s" and r.partition.start is not None)
    n = selectors.candle_partition_count(partition=oldest)
    t = time.perf_counter()
    with connection.cursor() as cursor:
        for sql in drop_sql(oldest, concurrently=True):
            cursor.execute(sql)
    return oldest.name, n, time.perf_counter() - t


def ingest(*, url: str, day: dt.date, messages: int, symbols: int, tmp: Path) -> float:
    """Ticks/s of one replayed day through runfeed, the production writer."""
    from market.vendors.fyers.recording import fyers_session

    path = tmp / f"session-{day}.jsonl"
    with open(path, "wb") as f:
        for msg in fyers_session(symbols=symbols, messages=messages, repeat_every=0, date=day):
            f.write(orjson.dumps(msg) + b"\n")
    env = dict(os.environ, DATABASE_URL=url, REDIS_URL=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
               TICKCHART_CHANNEL_PREFIX=f"bench{uuid.uuid4().hex[:6]}")
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "runfeed", "--source", "replay", "--file", str(path),
                    "--speed", "0", "--no-migrate"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return messages / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000, help="stored candles to fill (full figure: 100000000)")
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reads", type=int, default=200, help="history reads per run")
    ap.add_argument("--messages", type=int, default=300_000, help="replayed ticks per ingest run")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--top-up", action="store_true",
                    help="with --reuse: fill older days until the database holds --rows candles again")
    ap.add_argument("--reuse", action="store_true",
                    help="measure a database kept by an earlier --keep run instead of filling a new one "
                         "(fill once, however busy the machine, then measure when it is quiet)")
    args = ap.parse_args()
    import psycopg

    admin_url = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    url = admin_url.rsplit("/", 1)[0] + f"/{NAME}"
    admin = psycopg.connect(admin_url, autocommit=True)
    reuse = args.reuse and admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (NAME,)).fetchone()
    if args.reuse and not reuse:
        print(f"--reuse: no database {NAME} kept yet; filling one")
    if not reuse:
        admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{NAME}"')
    os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="tickchart.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections, transaction

    from market import selectors
    from market.core.partitions import compact_sql, partition_for

    try:
        call_command("migrate", verbosity=0)
        with psycopg.connect(url, autocommit=True) as db:
            started = time.perf_counter()
            if reuse:
                days = [dt.datetime.fromtimestamp(t, dt.timezone.utc).date() for (t,) in db.execute(
                    "SELECT DISTINCT (time / 86400) * 86400 FROM market_candle WHERE timeframe = '5s'").fetchall()]
                short = args.rows - db.execute("SELECT count(*) FROM market_candle").fetchone()[0]
                if args.top_up and short > 0:  # what earlier runs' retention dropped, added back
                    oldest = db.execute("SELECT min(time) FROM market_candle").fetchone()[0]  # 1 m outlive 5 s
                    days += fill(db, rows=short, symbols=args.symbols,
                                 before=dt.datetime.fromtimestamp(oldest, dt.timezone.utc).date())
                    db.execute("ANALYZE market_candle")
                    print(f"topped up {short:,} candles")
            else:
                days = fill(db, rows=args.rows, symbols=args.symbols)
                db.execute("ANALYZE market_candle")
            load = time.perf_counter() - started
            total = db.execute("SELECT count(*) FROM market_candle").fetchone()[0]
            size = db.execute("SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) "
                              "FROM pg_partition_tree('market_candle')").fetchone()[0]
            parts = db.execute("SELECT count(*) FROM pg_partition_tree('market_candle') WHERE isleaf").fetchone()[0]
        if reuse:
            print(f"kept database: {total:,} candles ({len(days)} days with 1 m candles); "
                  f"{parts} leaf partitions, {size} with indexes")
        else:
            print(f"filled {total:,} candles ({len(days)} days, {args.symbols} symbols) in {load:.1f} s "
                  f"({total / load:,.0f} rows/s); {parts} leaf partitions, {size} with indexes")

        from market.models import Symbol

        symbols = list(Symbol.objects.filter(ticker__startswith="NSE:SYM"))  # the filled ones, not the ingest's
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) SELECT time, open, high, low, close, volume, ticks "
                           "FROM market_candle WHERE symbol_id = %s AND timeframe = '5s' ORDER BY time DESC "
                           "LIMIT 5000", [symbols[0].pk])
            print("plan of the newest-5000 read:")
            for (line,) in cursor.fetchall():
                print("   ", line)

        # The newest two filled days, the ones a 5,000-candle read spans: as written (time-major,
        # as a live feed writes), then rewritten in key order as prune_candles does after the close.
        newest = sorted(d for d in days if d < REPLAY_DAY)[-2:]
        todo = selectors.candle_partition_unclustered(partitions=[
            partition_for("market_candle", "5s", _epoch(d) + OPEN) for d in newest])
        compactions = []
        if todo:
            written = reads(symbols=symbols, count=args.reads)
            print(f"history read, newest 5,000 5 s candles, as written: {_figures(written)}")
            for p, index in sorted(todo.items()):
                n = selectors.candle_partition_count(partition=p)
                t = time.perf_counter()
                with transaction.atomic(), connection.cursor() as cursor:
                    for sql in compact_sql(p, index):
                        cursor.execute(sql)
                compactions.append(time.perf_counter() - t)
                print(f"compacted {p.name} ({n:,} candles) in {compactions[-1]:.1f} s")
        else:
            print("the newest days were compacted by an earlier run: no as-written figure")
        read_times, drops, rates = [], [], []
        per_day = args.symbols * (PER_DAY_5S + PER_DAY_1M)
        full_days = (total if reuse else args.rows) // per_day
        if not reuse and args.rows % per_day:  # the oldest filled day is partial: not a day's figure
            drop_oldest_day()
        first_day = max(REPLAY_DAY, max(days) + dt.timedelta(days=1))  # a fresh day for each ingest run
        droppable = max(0, full_days - 2)  # keep two days: a 5,000-candle read spans them
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(args.runs):
                read_times += reads(symbols=symbols, count=args.reads)
                if run < droppable:
                    drops.append(drop_oldest_day())
                with connection.cursor() as cursor:  # a fresh writer: the replay starts from its start
                    cursor.execute("DELETE FROM market_writercheckpoint; DELETE FROM market_symbolcheckpoint")
                connections.close_all()
                rates.append(ingest(url=url, day=first_day + dt.timedelta(days=run), messages=args.messages,
                                    symbols=args.symbols, tmp=Path(tmp)))
                print(f"run {run + 1}: ingest {rates[-1]:,.0f} ticks/s"
                      + (f"; dropped {drops[-1][0]} ({drops[-1][1]:,} candles) in {drops[-1][2] * 1000:.0f} ms"
                         if run < droppable else ""))
        print(f"history read, newest 5,000 5 s candles, compacted: {_figures(read_times)} (target < 20 ms)")
        if compactions:
            print(f"compaction (CLUSTER) of a day's 5 s partition: {_figures(compactions, 's', 1.0)}")
        if drops:
            print(f"retention, DETACH CONCURRENTLY + DROP of a day's partition: {_figures([d[2] for d in drops])} "
                  f"(target < 1 s)")
        print(f"ingest through runfeed into the partitioned table: median {statistics.median(rates):,.0f} ticks/s, "
              f"range {min(rates):,.0f}-{max(rates):,.0f} ({len(rates)} runs, {args.messages:,} ticks each; "
              f"target >= 20,000)")
    finally:
        connections.close_all()
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
