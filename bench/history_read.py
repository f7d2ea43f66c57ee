"""History reads on a large candle table (PostgreSQL): the newest-first range read.

Creates a scratch database, fills it with ROWS candles (default 10 M: 100 symbols x
100,000 5s candles, generated inside PostgreSQL), VACUUM ANALYZEs it, then times the
page's read (newest 1000 / 5000 of one symbol) through ``selectors.candle_list`` and
``/api/candles``-style serialisation, and prints the query plan.

    python bench/history_read.py [--rows 10000000] [--keep]

Needs PostgreSQL (TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    import psycopg

    admin_url = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name = f"tickchart_bench_{uuid.uuid4().hex[:6]}"
    admin = psycopg.connect(admin_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    env = dict(os.environ, DATABASE_URL=url)
    env.pop("REDIS_URL", None)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        per_symbol = args.rows // args.symbols
        t0 = 1_700_000_000
        # The candle table is partitioned by day on PostgreSQL (docs/durability.md): make the
        # days the generated rows fall on before inserting them in bulk.
        ensure = ("from django.db import transaction; from market import services\n"
                  f"with transaction.atomic(): services.candle_partition_ensure(pairs=[('5s', t) for t in "
                  f"range({t0}, {t0 + per_symbol * 5 + 86_400}, 86_400)])")
        subprocess.run([sys.executable, "manage.py", "shell", "-c", ensure], cwd=ROOT, env=env, check=True)
        with psycopg.connect(url, autocommit=True) as db:
            started = time.perf_counter()
            db.execute("INSERT INTO market_symbol (ticker, name, exchange, kind, tick_size, lot_size, active, source,"
                       " always_record, created_at, updated_at, fytoken, isin, trading_session)"
                       " SELECT 'BENCH:S' || g, 'bench', 'BENCH',"
                       " 'equity', 0.05, 1, true, 'bench', false, now(), now(), '', '', ''"
                       " FROM generate_series(1, %s) g", (args.symbols,))
            db.execute(
                "INSERT INTO market_candle (symbol_id, timeframe, time, open, high, low, close, volume, ticks)"
                " SELECT s.id, '5s', %s + g * 5, 100 + random(), 101 + random(), 99 + random(), 100 + random(),"
                " (random() * 1000)::int, 1 FROM market_symbol s, generate_series(0, %s - 1) g",
                (t0, per_symbol))
            load = time.perf_counter() - started
            db.execute("VACUUM ANALYZE market_candle")
            size = db.execute("SELECT pg_size_pretty(pg_total_relation_size('market_candle'))").fetchone()[0]
            sid = db.execute("SELECT id FROM market_symbol ORDER BY id LIMIT 1").fetchone()[0]
            plan = db.execute(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT time, open, high, low, close, volume, ticks FROM market_candle"
                " WHERE symbol_id = %s AND timeframe = '5s' AND time <= %s ORDER BY time DESC LIMIT 5000",
                (sid, t0 + per_symbol * 5)).fetchall()
        print(f"loaded {args.rows:,} rows in {load:.1f} s; table + indexes {size}")
        print("plan of the newest-5000 read:")
        for (line,) in plan:
            print("   ", line)
        code = (
            "import time, orjson\n"
            "from market import selectors\nfrom market.models import Symbol\n"
            "from market.core.timeframes import Timeframe\n"
            "s = Symbol.objects.order_by('id').first()\n"
            "for tf, limit in (('5s', 1000), ('5s', 5000), ('30s', 1000)):\n"
            "    best = 1e9\n"
            "    for _ in range(5):\n"
            "        t = time.perf_counter()\n"
            "        rows = selectors.candle_list(symbol=s, tf=Timeframe.parse(tf), limit=limit)\n"
            "        body = orjson.dumps([c.as_dict() for c in rows])\n"
            "        best = min(best, time.perf_counter() - t)\n"
            "    print(f'{tf} newest {limit}: {best*1000:.1f} ms (read + JSON, best of 5; 30s is derived from 5s)')\n"
        )
        subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True)
    finally:
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
