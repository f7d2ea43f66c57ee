"""History over HTTP (issue 17): ``/api/candles`` newest N candles through daphne, against the
floor of the same answer (the SQL query and orjson) in the same run.

Starts one daphne on the checkout's Procfile command line (DEBUG off, sign-in required, a
session cookie sent as a browser would), stores ``--stored`` 5s candles of one symbol, then
alternates, ``--requests`` times each:

- raw: the selector's SQL (newest N over the unique index) on a connection of this
  process, rows made into the body's dicts and serialised with orjson (the least any
  server could do for this answer);
- django: the same GET through Django's test client in this process (URL routing, every
  middleware with the session and user reads, the view, the JSON body; no network);
- daphne: the same GET on a kept-alive loopback connection to daphne, the whole body read.

It prints median / p95 of each and the ratios of the medians to raw, per run.

    python bench/history_http.py --runs 3                 # SQLite
    python bench/history_http.py --runs 3 --services      # PostgreSQL (DATABASE_URL) + Redis (REDIS_URL)
    python bench/history_http.py --runs 3 --services --pool 4   # daphne with TICKCHART_DB_POOL=4
"""

from __future__ import annotations

import argparse
import http.client
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the checkout, for django_client
from storm import ROOT, drop_database, free_port, production_env, setup, start_daphne, use_services  # noqa: E402

TICKER = "HIST:A"
STORE = """
from market import services
from market.core.types import Candle, CandleUpdate
from market.models import Symbol
symbol, _ = Symbol.objects.get_or_create(ticker={ticker!r}, defaults={{"exchange": "DEMO", "name": "History"}})
t0 = 1_790_000_000 - 1_790_000_000 % 86400
updates = [CandleUpdate({ticker!r}, "5s", Candle(t0 + 5 * i, 100.0 + i % 7, 101.25 + i % 5, 99.5 - i % 3,
                                                 100.75 + i % 11 * 0.05, 10.0 + i % 97, 3 + i % 5), True)
           for i in range({n})]
for k in range(0, len(updates), 5000):
    services.candle_upsert_many(updates=updates[k:k + 5000], symbol_ids={{{ticker!r}: symbol.pk}})
print(symbol.pk)
"""

SQL = ("SELECT time, open, high, low, close, volume, ticks FROM market_candle "
       "WHERE symbol_id = {p} AND timeframe = {p} ORDER BY time DESC LIMIT {p}")


def raw_answer(conn, paramstyle: str, symbol_id: int, limit: int) -> bytes:
    cur = conn.cursor()
    cur.execute(SQL.format(p=paramstyle), (symbol_id, "5s", limit))
    rows = cur.fetchall()
    rows.reverse()
    keys = ("time", "open", "high", "low", "close", "volume", "ticks")
    return orjson.dumps({"symbol": TICKER, "tf": "5s", "candles": [dict(zip(keys, r)) for r in rows]})


def one_run(args: argparse.Namespace, env: dict, ctx: dict, tmp: Path, run: int) -> dict:
    port = free_port()
    daphne = start_daphne(env, ROOT, port, tmp / f"daphne-{run}.log")
    try:
        if args.services:
            import psycopg

            conn, style = psycopg.connect(env["DATABASE_URL"], autocommit=True), "%s"
        else:
            conn, style = sqlite3.connect(env["TICKCHART_DB_PATH"]), "?"
        web = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        path = f"/api/candles?symbol={TICKER}&tf=5s&limit={args.candles}"
        headers = {"Cookie": f"sessionid={ctx['cookie']}", "Accept": "application/json"}

        def get() -> bytes:
            web.request("GET", path, headers=headers)
            response = web.getresponse()
            body = response.read()
            if response.status != 200:
                log = (tmp / f"daphne-{run}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}\ndaphne's log:\n{log}")
            return body

        served = orjson.loads(get())
        floor = orjson.loads(raw_answer(conn, style, ctx["symbol_id"], args.candles))
        assert len(served["candles"]) == args.candles and served["candles"] == floor["candles"], "different answers"
        for _ in range(10):  # warm both paths
            get()
            raw_answer(conn, style, ctx["symbol_id"], args.candles)
        client = django_client(ctx["cookie"])
        assert orjson.loads(client.get(path).content)["candles"] == floor["candles"]
        for _ in range(10):
            client.get(path)
        times: dict[str, list[float]] = {"raw": [], "django": [], "daphne": []}
        for _ in range(args.requests):
            t = time.perf_counter()
            raw_answer(conn, style, ctx["symbol_id"], args.candles)
            times["raw"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            client.get(path)
            times["django"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            get()
            times["daphne"].append((time.perf_counter() - t) * 1000)
        web.close()
        conn.close()
    finally:
        daphne.terminate()
        daphne.wait(timeout=30)

    def stats(values: list[float]) -> tuple[float, float]:
        values = sorted(values)
        return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.95))]

    raw, django_, web_ = stats(times["raw"]), stats(times["django"]), stats(times["daphne"])
    return {"raw": raw, "django": django_, "daphne": web_, "ratio": django_[0] / raw[0],
            "ratio_daphne": web_[0] / raw[0]}


def django_client(cookie: str):
    """Django's test client in this process, on the environment daphne was given."""
    import django
    from django.conf import settings

    if not settings.configured:
        django.setup()
    from django.test import Client

    client = Client(HTTP_ACCEPT="application/json", HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = cookie
    return client


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candles", type=int, default=5000)
    ap.add_argument("--stored", type=int, default=50_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3, help="a fresh daphne each")
    ap.add_argument("--services", action="store_true")
    ap.add_argument("--pool", type=int, default=0, help="--services: TICKCHART_DB_POOL for daphne (0: no pool)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = production_env(tmp, "hist", TICKCHART_HTTP_RATE_PER_MINUTE="1000000")
        ctx: dict = {}
        dbname = use_services(env, args.services, "tickchart_history", args.pool)
        try:
            ctx["cookie"] = setup(env, ROOT, [], 1, tmp)[0]
            out = subprocess.run([sys.executable, "manage.py", "shell", "-c",
                                  STORE.format(ticker=TICKER, n=args.stored)], cwd=ROOT, env=env, check=True,
                                 capture_output=True, text=True).stdout
            ctx["symbol_id"] = int(out.split()[-1])
            os.environ.update(env, DJANGO_SETTINGS_MODULE="tickchart.settings")  # for django_client
            for key in [k for k in os.environ if k.startswith("PYTEST")]:
                del os.environ[key]
            if args.services:
                import psycopg

                with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
            where = "PostgreSQL + Redis" if args.services else "SQLite"
            if args.pool:
                where += f", a pool of {args.pool} connections"
            print(f"newest {args.candles:,} of {args.stored:,} stored 5s candles, {where}, {args.requests} requests "
                  f"each per run, alternating (ms)")
            print(f"{'run':>3} {'raw median':>10} {'p95':>6} {'django median':>13} {'p95':>6} {'daphne median':>13} "
                  f"{'p95':>6} {'django / raw':>12} {'daphne / raw':>12}")
            rows = []
            for run in range(1, args.runs + 1):
                r = one_run(args, env, ctx, tmp, run)
                rows.append(r)
                print(f"{run:>3} {r['raw'][0]:>10.2f} {r['raw'][1]:>6.2f} {r['django'][0]:>13.2f} "
                      f"{r['django'][1]:>6.2f} {r['daphne'][0]:>13.2f} {r['daphne'][1]:>6.2f} {r['ratio']:>12.2f} "
                      f"{r['ratio_daphne']:>12.2f}", flush=True)
        finally:
            if dbname:
                drop_database(env["DATABASE_URL"], dbname)
    if len(rows) > 1:
        def med(values: list[float]) -> str:
            return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
        print(f"median of {len(rows)} runs: raw {med([r['raw'][0] for r in rows])} ms, django "
              f"{med([r['django'][0] for r in rows])} ms, daphne {med([r['daphne'][0] for r in rows])} ms; "
              f"django / raw {med([r['ratio'] for r in rows])}, daphne / raw {med([r['ratio_daphne'] for r in rows])}")


if __name__ == "__main__":
    main()
