"""Lag from store to the Python client: the writer commits a candle, how long until the
client's ``stream()`` iterator yields it, at ``--rate`` updates a second (default 10).

A production-settings daphne (DJANGO_DEBUG=0, the Redis pub/sub layer) serves
``/ws/market/``. This process is the writer, as ``runfeed``'s flush is: each update of the
forming 5 s candle of one symbol is stored (``services.candle_upsert_many``, committed),
timed, then published (``live.broadcast.candles_publish``). The client (tickchart_client,
token auth) streams the symbol in the same process on another thread; each update carries
its sequence number in ``volume``, so every yield is matched to its commit time.

    REDIS_URL=redis://127.0.0.1:6379/3 python bench/client_stream.py [--seconds 20] [--rate 10]

Needs Redis (the writer and the server are two processes); SQLite in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "client"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=10.0, help="updates a second")
    args = ap.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("set REDIS_URL (the writer publishes to the server through Redis)")
    tmp = Path(tempfile.mkdtemp(prefix="tickchart-stream-"))
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(DJANGO_SETTINGS_MODULE="tickchart.settings", DJANGO_DEBUG="0",
                      SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1", SECURE_COOKIES="0",
                      TICKCHART_DB_PATH=str(tmp / "db.sqlite3"))
    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from market import services
    from market.core.types import Candle, CandleUpdate
    from market.live.broadcast import candles_publish
    from market.tokens import api_token_create
    from tests.servers import free_port
    from tickchart_client import Client

    call_command("migrate", verbosity=0)
    ticker = f"BENCH:LAG{uuid.uuid4().hex[:6].upper()}"  # pub/sub channels are shared by every Redis db
    symbol, _ = services.symbol_register(ticker=ticker, exchange="DEMO", name="lag", source="bench")
    _, secret = api_token_create(user=User.objects.create_user(f"bench-{uuid.uuid4().hex[:6]}"), name="bench")
    port = free_port()
    log = open(tmp / "daphne.log", "ab")
    server = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                               "tickchart.asgi:application"], cwd=ROOT, env=os.environ.copy(),
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    committed: dict[int, float] = {}
    yielded: dict[int, float] = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp / "daphne.log").read_text()
                time.sleep(0.2)

        async def read() -> None:
            async for update in Client(url, secret).stream([ticker], "5s"):
                yielded.setdefault(int(update.candle["volume"]), time.time())

        done = threading.Event()

        def reader() -> None:
            async def run() -> None:
                task = asyncio.create_task(read())
                while not done.is_set():
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)  # the last ones arrive
                task.cancel()
            asyncio.run(run())

        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(2.0)  # subscribed
        layer = get_channel_layer()
        publish = async_to_sync(candles_publish)
        period = 1.0 / args.rate
        seq = 0
        next_at = time.monotonic()
        end = next_at + args.seconds
        while next_at < end:
            seq += 1
            now = time.time()
            bucket = int(now) - int(now) % 5
            update = CandleUpdate(ticker, "5s", Candle(bucket, 100.0, 100.0 + seq % 7, 99.0, 100.0, float(seq), seq), False)
            services.candle_upsert_many(updates=[update], symbol_ids={ticker: symbol.id})  # committed here
            committed[seq] = time.time()
            publish(layer, [update])
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))
        done.set()
        thread.join(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    lags = sorted((yielded[s] - committed[s]) * 1000 for s in committed if s in yielded)
    if not lags:
        sys.exit(f"no update reached the client; see {tmp / 'daphne.log'}")

    def pct(p: float) -> float:
        return lags[min(len(lags) - 1, int(round(p / 100 * (len(lags) - 1))))]

    print(f"store -> client stream() lag, {args.rate:g} updates/s for {args.seconds:g} s "
          f"({len(lags)} of {len(committed)} updates yielded; a conflated update is not yielded)")
    print(f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}")
    print(f"{pct(50):8.1f} {pct(95):8.1f} {pct(99):8.1f} {lags[-1]:8.1f} {statistics.mean(lags):8.1f}")


if __name__ == "__main__":
    main()
