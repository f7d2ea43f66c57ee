"""Symbol search latency over ~5,000 realistic symbols (SQLite in a temporary file).

    .venv/bin/python bench/symbol_search.py

Prints the median and worst time of market.selectors.symbol_search per query. Target:
well under 100 ms for each query.
"""

from __future__ import annotations

import os
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
tmp = tempfile.mkdtemp(prefix="tickchart-bench-")
os.environ.pop("DATABASE_URL", None)
os.environ["TICKCHART_DB_PATH"] = str(Path(tmp) / "bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tickchart.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from market.models import Symbol  # noqa: E402
from market.selectors import symbol_search  # noqa: E402

WORDS = ["TATA", "STATE", "BANK", "INDIA", "RELIANCE", "INDUSTRIES", "POWER", "STEEL", "MOTORS", "FINANCE",
         "LIFE", "INSURANCE", "CAPITAL", "INFRA", "CHEMICALS", "PHARMA", "LABS", "ENERGY", "TEXTILES", "GAS",
         "HOLDINGS", "SERVICES", "TECHNOLOGIES", "CEMENT", "SUGAR", "PAPER", "FOODS", "AUTO", "ELECTRIC"]


def main() -> None:
    call_command("migrate", verbosity=0)
    rng = random.Random(7)
    rows, seen = [], set()
    while len(rows) < 5000:
        n = rng.randint(3, 10)
        bare = "".join(rng.choice(string.ascii_uppercase) for _ in range(n))
        exch = rng.choice(["NSE", "NSE", "BSE"])
        ticker = f"{exch}:{bare}-EQ"
        if ticker in seen:
            continue
        seen.add(ticker)
        name = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4))) + " LIMITED"
        rows.append(Symbol(ticker=ticker, name=name, exchange=exch, active=rng.random() < 0.9))
    rows += [Symbol(ticker="NSE:SBIN-EQ", name="STATE BANK OF INDIA", exchange="NSE"),
             Symbol(ticker="NSE:RELIANCE-EQ", name="RELIANCE INDUSTRIES", exchange="NSE")]
    Symbol.objects.bulk_create(rows)
    print(f"{Symbol.objects.count()} symbols")
    queries = ["s", "sb", "sbin", "rel", "relaince", "tata", "bank", "state bank", "sboi", "hdfcbnak",
               "nse:sb", "zzqx", "powr", "industries", "a"]
    for q in queries:
        symbol_search(query=q)  # warm
    worst = 0.0
    for q in queries:
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            out = symbol_search(query=q)
            times.append((time.perf_counter() - t0) * 1000)
        med, top = statistics.median(times), max(times)
        worst = max(worst, top)
        first = out[0]["ticker"] if out else "-"
        print(f"q={q!r:14} median {med:6.2f} ms  max {top:6.2f} ms  results {len(out):2d}  first {first}")
    print(f"worst single query: {worst:.2f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
