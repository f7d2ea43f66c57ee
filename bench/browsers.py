"""Realistic browsers (issue 17): 4 charts and a 20-symbol watchlist per browser, every stream
updating twice a second, on one daphne.

Each browser is one socket (as the layout page is) subscribed to 24 streams: 4 chart symbols on
1m and 20 watchlist symbols on 1d, drawn from 50 symbols (a fixed seed per browser). A
publisher in this process sends, every 0.5 s, one update of each of the 100 streams in one
burst through the Redis pub/sub layer, as runfeed's flush does. With ``hello {batch: true}``
(the default, as static/market/js/socket.js) the server sends a socket the updates of one
burst as one ``candles`` frame; ``--no-batch`` sends each as its own frame. Every update
carries its send time, so clients measure publish-to-receipt latency of each update.

Prints p50/p99 latency per update, frames per socket per second, updates per frame,
deliveries per second and daphne's CPU per delivery (microseconds).

    python bench/browsers.py --browsers 500 --seconds 20            # batched
    python bench/browsers.py --browsers 500 --seconds 20 --no-batch  # one frame per update

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0); SQLite for the symbol table. The
clients (``bench/wsload.py``'s frame parser) run in this process, on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout import ROOT, SYMBOLS, cpu_seconds, free_port, setup, start_daphne  # noqa: E402
from wsload import LoadClient, client_frame  # noqa: E402

CHARTS, WATCHLIST = 4, 20
CHART_TF, WATCH_TF = "1m", "1d"


def streams_of(browser: int) -> list[tuple[str, str]]:
    picked = random.Random(browser).sample(SYMBOLS, CHARTS + WATCHLIST)
    return [(s, CHART_TF) for s in picked[:CHARTS]] + [(s, WATCH_TF) for s in picked[CHARTS:]]


class Browser(LoadClient):
    """Says hello, subscribes to its 24 streams once upgraded, and stamps every update."""

    def __init__(self, *args, streams: list[tuple[str, str]], batch: bool, stats: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.streams = streams
        self.batch = batch
        self.stats = stats
        self.subscribed = False
        self.snapshots = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # (the first write after the upgrade is ``subscribe``: the hello)
        if self.upgraded and not self.subscribed:
            self.subscribed = True
            self.transport.write(b"".join(client_frame(orjson.dumps(
                {"type": "subscribe", "symbol": s, "tf": tf}).decode()) for s, tf in self.streams))

    def frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode != 1:
            super().frame(opcode, payload, now)
            return
        msg = orjson.loads(payload)
        kind = msg["type"]
        if kind in ("candle", "candles"):
            if not self.ready.is_set():
                return
            updates = msg["updates"] if kind == "candles" else [msg]
            self.stats["frames"] += 1
            self.stats["updates"] += len(updates)
            self.latencies.extend(now - u["sent"] for u in updates)
        elif kind == "snapshot":
            self.snapshots += 1
            if self.snapshots == len(self.streams):
                self.ready.set()
        elif kind in ("sync", "behind"):
            self.transport.write(client_frame('{"type":"ack","seq":%d}' % msg["seq"]))
        elif kind == "error":
            self.stats["errors"] += 1


async def run(port: int, browsers: int, seconds: float, batch: bool, pid: int, env: dict) -> dict:
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from market.live.broadcast import EVENT_TYPE, group_name

    loop = asyncio.get_running_loop()
    layer = RedisPubSubChannelLayer(hosts=[{"address": env["REDIS_URL"], "socket_timeout": None}],
                                    prefix=env["TICKCHART_CHANNEL_PREFIX"])
    latencies: list[float] = []
    stats = {"frames": 0, "updates": 0, "errors": 0}
    readies = [asyncio.Event() for _ in range(browsers)]
    transports = []
    hello = {"type": "hello", "batch": batch}
    for i in range(browsers):
        transport, _ = await loop.create_connection(
            lambda i=i: Browser("127.0.0.1", port, f"http://127.0.0.1:{port}", hello, latencies, readies[i],
                                lambda: None, streams=streams_of(i), batch=batch, stats=stats),
            "127.0.0.1", port)
        transports.append(transport)
        if i % 20 == 19:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=300)
    watched = sorted({s for i in range(browsers) for s in streams_of(i)})
    await asyncio.sleep(1)
    stats.update(frames=0, updates=0)
    latencies.clear()
    cpu0, mine0 = cpu_seconds(pid), time.process_time()
    started = time.perf_counter()
    n = 0
    t0 = 1_800_000_000
    while time.perf_counter() - started < seconds:
        n += 1
        for symbol, tf in watched:  # one flush of runfeed: every stream once
            candle = {"time": t0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0, "ticks": n}
            text = orjson.dumps({"type": "candle", "symbol": symbol, "tf": tf, "candle": candle,
                                 "sent": time.time()}).decode()
            await layer.group_send(group_name(symbol, tf), {"type": EVENT_TYPE, "symbol": symbol, "tf": tf,
                                                            "candle": candle, "final": False, "text": text})
        await asyncio.sleep(max(0.0, n * 0.5 - (time.perf_counter() - started)))
    await asyncio.sleep(2)  # drain
    elapsed = time.perf_counter() - started
    cpu, mine = cpu_seconds(pid) - cpu0, time.process_time() - mine0
    for t in transports:
        t.close()
    await layer.flush()
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100) if len(lat) > 100 else [float("nan")] * 99
    expected = n * sum(len(streams_of(i)) for i in range(browsers))
    return {"browsers": browsers, "batch": batch, "delivered": len(lat), "expected": expected,
            "per_s": len(lat) / (elapsed - 2), "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
            "frames_per_socket_s": stats["frames"] / browsers / (elapsed - 2),
            "updates_per_frame": stats["updates"] / max(stats["frames"], 1),
            "cpu_us_per_delivery": cpu / max(len(lat), 1) * 1e6, "daphne_cpu": cpu / elapsed,
            "errors": stats["errors"], "client_cpu": mine / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--browsers", type=int, nargs="+", default=[500])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--no-batch", dest="batch", action="store_false", help="no hello batch: a frame per update")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TICKCHART_DB_PATH=str(Path(tmp) / "bench.sqlite3"),
                   REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                   TICKCHART_CHANNEL_PREFIX=f"bench{uuid.uuid4().hex[:6]}", DJANGO_DEBUG="1", LOG_LEVEL="WARNING")
        env.pop("DATABASE_URL", None)
        os.environ.update({k: env[k] for k in ("REDIS_URL", "TICKCHART_CHANNEL_PREFIX")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tickchart.settings")
        setup(env)
        print(f"{'browsers':>8} {'batch':>5} {'delivered':>10} {'expected':>9} {'deliv/s':>8} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'frames/sock/s':>13} {'upd/frame':>9} {'cpu us/deliv':>12} {'daphne cpu':>10} {'client cpu':>10}")
        for browsers in args.browsers:
            for _ in range(args.runs):
                port = free_port()
                server = start_daphne(env, port)
                try:
                    r = asyncio.run(run(port, browsers, args.seconds, args.batch, server.pid, env))
                finally:
                    server.terminate()
                    server.wait()
                print(f"{r['browsers']:>8} {str(r['batch']):>5} {r['delivered']:>10} {r['expected']:>9} "
                      f"{r['per_s']:>8,.0f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['frames_per_socket_s']:>13.2f} "
                      f"{r['updates_per_frame']:>9.1f} {r['cpu_us_per_delivery']:>12.1f} {r['daphne_cpu']:>10.0%} {r['client_cpu']:>10.0%}",
                      flush=True)


if __name__ == "__main__":
    main()
