"""``/api/candles`` server time with studies (SQLite in a temporary file, issue 11).

    .venv/bin/python bench/studies.py [--history 50000] [--repeat 30]

Stores ``--history`` 1m candles of one round-the-clock symbol (a random walk, so the
newest 5,000 are far from the first candle and the warm-up reads are real), then times
``GET /api/candles?limit=5000`` through Django's test client (view, selector, studies and
JSON; no network): without studies, with 4 studies of bounded warm-up (ema:20, rsi:14,
macd, bb), with 4 including the whole-series ones (obv, supertrend), and on a derived
timeframe. Prints the median and range over ``--repeat`` requests. Targets: < 20 ms
without studies, < 40 ms with 4.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
tmp = tempfile.mkdtemp(prefix="tickchart-bench-")
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
os.environ["TICKCHART_DB_PATH"] = str(Path(tmp) / "bench.sqlite3")
os.environ["TICKCHART_HTTP_RATE_PER_MINUTE"] = "0"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tickchart.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from market import services  # noqa: E402
from market.core.types import Candle, CandleUpdate  # noqa: E402
from market.models import Symbol  # noqa: E402

CASES = [
    ("1m, no studies", "1m", None),
    ("1m, ema:20 rsi:14 macd bb", "1m", "ema:20,rsi:14,macd,bb"),
    ("1m, ema:20 rsi:14 vwap stoch", "1m", "ema:20,rsi:14,vwap,stoch"),
    ("1m, ema:20 rsi:14 obv supertrend (whole series)", "1m", "ema:20,rsi:14,obv,supertrend"),
    ("3m derived, no studies", "3m", None),
    ("3m derived, ema:20 rsi:14 macd bb", "3m", "ema:20,rsi:14,macd,bb"),
]


def load(history: int) -> None:
    call_command("migrate", verbosity=0)
    symbol = Symbol.objects.create(ticker="DEMO:BENCH", exchange="DEMO", name="bench")
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, history)))
    t0 = 1_732_000_000 - 1_732_000_000 % 86400
    updates = []
    for i in range(history):
        o = close[i - 1] if i else close[0]
        c = close[i]
        updates.append(CandleUpdate(symbol.ticker, "1m", Candle(
            t0 + 60 * i, float(o), float(max(o, c) + 0.02), float(min(o, c) - 0.02), float(c),
            float(rng.integers(1, 1000)), 1), True))
    for start in range(0, history, 5000):
        services.candle_upsert_many(updates=updates[start:start + 5000], symbol_ids={symbol.ticker: symbol.pk})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--history", type=int, default=50_000, help="stored 1m candles")
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    load(args.history)
    client = Client(HTTP_HOST="localhost")
    print(f"{args.history:,} stored 1m candles; newest 5,000 per request; {args.repeat} requests each")
    for label, tf, studies in CASES:
        params = {"symbol": "DEMO:BENCH", "tf": tf, "limit": 5000}
        if studies:
            params["studies"] = studies
        times = []
        for i in range(args.repeat + 2):
            t = time.perf_counter()
            response = client.get("/api/candles", params)
            elapsed = time.perf_counter() - t
            assert response.status_code == 200, response.content[:200]
            if i >= 2:  # the first two warm caches (SQLite pages, imports)
                times.append(elapsed * 1000)
        print(f"{label:52s} median {statistics.median(times):6.1f} ms"
              f"  range {min(times):6.1f}–{max(times):6.1f} ms")


if __name__ == "__main__":
    main()
