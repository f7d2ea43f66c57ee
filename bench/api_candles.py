"""``/api/candles`` through Django (the test client: URL routing, middleware, the view, JSON),
newest N candles of one symbol: the described API (django-ninja, ``market.web.api``) next
to the plain view it delegates to, mounted at a URL of its own as it was before issue 16.

Both run in one process on one scratch database, alternating, so a loaded machine slows
both alike; the figure is the median of ``--runs`` requests each.

    python bench/api_candles.py [--candles 5000] [--runs 60]

Embedded SQLite in a temporary directory, unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from django.urls import include, path  # noqa: E402

urlpatterns: list = []  # filled in main(), after django.setup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candles", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tickchart-bench-")
    os.environ.setdefault("TICKCHART_DB_PATH", os.path.join(tmp, "db.sqlite3"))
    os.environ.update(DJANGO_SETTINGS_MODULE="tickchart.settings", TICKCHART_PUBLIC_ACCESS="1",
                      TICKCHART_HTTP_RATE_PER_MINUTE="1000000")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings, setup_test_environment

    from market import services
    from market.core.types import Candle, CandleUpdate
    from market.models import Symbol
    from market.web import views

    setup_test_environment()
    call_command("migrate", verbosity=0)
    ticker = "BENCH:A"
    symbol, _ = Symbol.objects.get_or_create(ticker=ticker, defaults={"name": ticker, "exchange": "DEMO"})
    t0 = 1_700_000_000 - 1_700_000_000 % 60
    services.candle_upsert_many(updates=[
        CandleUpdate(ticker, "1m", Candle(t0 + 60 * i, 100.0 + i % 7, 101.0 + i % 5, 99.0 - i % 3, 100.5, 10.0 + i, 3),
                     True) for i in range(args.candles)], symbol_ids={ticker: symbol.id})
    urlpatterns[:] = [path("before/candles", views.api_candles), path("", include("tickchart.urls"))]
    query = f"?symbol={ticker}&tf=1m&limit={args.candles}"
    client = Client()
    timings: dict[str, list[float]] = {"before (plain view)": [], "after (django-ninja)": []}
    urls = {"before (plain view)": "/before/candles" + query, "after (django-ninja)": "/api/candles" + query}
    with override_settings(ROOT_URLCONF=__name__):
        for name, url in urls.items():  # warm up, and check both answer the same body
            response = client.get(url)
            assert response.status_code == 200 and len(response.json()["candles"]) == args.candles, response.content
        assert client.get(urls["before (plain view)"]).content == client.get(urls["after (django-ninja)"]).content
        for _ in range(args.runs):
            for name, url in urls.items():
                started = time.perf_counter()
                client.get(url)
                timings[name].append((time.perf_counter() - started) * 1000)
    print(f"GET /api/candles, newest {args.candles:,} candles, {args.runs} requests each (ms)")
    print(f"{'':22} {'median':>8} {'p95':>8} {'min':>8}")
    for name, values in timings.items():
        values.sort()
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        print(f"{name:22} {statistics.median(values):8.2f} {p95:8.2f} {values[0]:8.2f}")


if __name__ == "__main__":
    main()
