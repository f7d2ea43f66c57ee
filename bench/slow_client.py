"""Slow clients: does one stalled browser raise the others' latency or daphne's memory?

Starts one daphne process (SQLite for the symbol table, the Redis pub/sub layer) with
flow control on (the default window) and then off (TICKCHART_WS_WINDOW_FRAMES=0, the
old behaviour), and for each: C reading clients, each watching one of 50 symbols and
acking like the browser, plus S stalled clients whose sockets stop reading, watching
40 of those and 10 more symbols whose frames are padded to P bytes (so that a stalled client
is sent megabytes while the readers' frames stay small). It publishes every symbol R
times a second and prints the readers' publish-to-receive p50/p99 and daphne's RSS
before and after.

    python bench/slow_client.py --clients 100 1000 --stalled 5 --rate 4 --seconds 10 --pad 20000

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). Clients run in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout import ROOT, SYMBOLS, free_port, setup, start_daphne  # noqa: E402

FAT = [f"BENCH:F{i}" for i in range(10)]  # padded streams only the stalled clients watch


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def reader(port: int, symbol: str, latencies: list[float], behind: list[int], ready: asyncio.Event,
                 stop: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/market/", origin=f"http://127.0.0.1:{port}",
                                  max_queue=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "symbol": symbol, "tf": "5s"}))
        while orjson.loads(await ws.recv())["type"] != "snapshot":
            pass
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except asyncio.TimeoutError:
                continue
            msg = orjson.loads(raw)
            if msg["type"] == "candle":
                latencies.append(time.time() - msg["sent"])
            elif msg["type"] in ("sync", "behind"):
                await ws.send('{"type":"ack","seq":%d}' % msg["seq"])
                if msg["type"] == "behind":
                    behind.append(1)


async def stalled(port: int, ready: asyncio.Event, stop: asyncio.Event) -> None:
    """Subscribes to every symbol, then stops reading its socket (a tiny receive buffer)."""
    import websockets

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/market/", origin=f"http://127.0.0.1:{port}",
                                  sock=sock, max_queue=None, ping_interval=None, close_timeout=0.1) as ws:
        watched = FAT + SYMBOLS[:40]  # 50: the subscription limit
        for sym in watched:
            await ws.send(json.dumps({"type": "subscribe", "symbol": sym, "tf": "5s"}))
        snapshots = 0
        while snapshots < len(watched):
            if orjson.loads(await ws.recv())["type"] == "snapshot":
                snapshots += 1
        ws.transport.pause_reading()
        ready.set()
        await stop.wait()
        ws.transport.abort()


async def run_case(env: dict, port: int, pid: int, clients: int, stalled_n: int, rate: float, seconds: float,
                   pad: int) -> dict:
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from market.live.broadcast import EVENT_TYPE, group_name

    layer = RedisPubSubChannelLayer(hosts=[{"address": env["REDIS_URL"], "socket_timeout": None}],
                                    prefix=env["TICKCHART_CHANNEL_PREFIX"])
    latencies: list[float] = []
    behind: list[int] = []
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(clients + stalled_n)]
    tasks = [asyncio.create_task(stalled(port, readies[clients + i], stop)) for i in range(stalled_n)]
    for i in range(clients):
        tasks.append(asyncio.create_task(reader(port, SYMBOLS[i % 50], latencies, behind, readies[i], stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=120)
    await asyncio.sleep(1)
    rss0, cpu0 = rss_mb(pid), cpu_seconds(pid)
    filler = "x" * pad
    started, n, sent = time.perf_counter(), 0, 0
    while time.perf_counter() - started < seconds:
        n += 1
        for sym in SYMBOLS + FAT:
            candle = {"time": 1_800_000_000, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0,
                      "ticks": n}
            frame = {"type": "candle", "symbol": sym, "tf": "5s", "candle": candle, "sent": time.time()}
            if sym in FAT:
                frame["pad"] = filler
            text = orjson.dumps(frame).decode()
            await layer.group_send(group_name(sym, "5s"), {"type": EVENT_TYPE, "symbol": sym, "tf": "5s",
                                                           "candle": candle, "final": False, "text": text})
            sent += 1
        await asyncio.sleep(max(0.0, n / rate - (time.perf_counter() - started)))
    await asyncio.sleep(2)
    rss1, cpu1 = rss_mb(pid), cpu_seconds(pid)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await layer.flush()
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100) if len(lat) > 100 else [float("nan")] * 99
    fat_bytes = n * len(FAT) * (pad + 150) + n * 40 * 150
    return {"delivered": len(lat), "expected": n * clients, "p50": q[49] * 1000, "p99": q[98] * 1000,
            "rss0": rss0, "rss1": rss1, "cpu": (cpu1 - cpu0) / (seconds + 2), "stalled_bytes": fat_bytes * stalled_n, "behind": len(behind)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--stalled", type=int, default=1)
    ap.add_argument("--rate", type=float, default=4.0, help="updates per second per symbol")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pad", type=int, default=20000, help="bytes of padding per frame of the 10 fat streams")
    ap.add_argument("--modes", nargs="+", default=["on", "off"], choices=["on", "off"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TICKCHART_DB_PATH=str(Path(tmp) / "bench.sqlite3"),
                   REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                   TICKCHART_CHANNEL_PREFIX=f"bench{uuid.uuid4().hex[:6]}", DJANGO_DEBUG="1", LOG_LEVEL="WARNING",
                   TICKCHART_WS_MESSAGES_PER_SECOND="1000", TICKCHART_WS_MESSAGE_BURST="1000")
        env.pop("DATABASE_URL", None)
        os.environ.update({k: env[k] for k in ("REDIS_URL", "TICKCHART_CHANNEL_PREFIX")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tickchart.settings")
        setup(env)
        code = ("from market.models import Symbol\n"
                f"for t in {FAT!r}: Symbol.objects.get_or_create(ticker=t, defaults={{'exchange': 'BENCH'}})")
        subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True)
        print(f"{args.stalled} stalled client(s) on 40 + {len(FAT)} symbols ({len(FAT)} with ~{args.pad + 130} B frames); "
              f"{args.rate:g} updates/s per symbol for {args.seconds:g} s")
        print(f"{'flow':>4} {'clients':>7} {'delivered':>9} {'expected':>8} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'behind':>6} {'to stalled MB':>13} {'RSS MB before':>13} {'after':>7} {'daphne CPU':>10}")
        for mode in args.modes:
            menv = dict(env, TICKCHART_WS_WINDOW_FRAMES="256" if mode == "on" else "0")
            for clients in args.clients:
                port = free_port()
                server = start_daphne(menv, port)
                try:
                    r = asyncio.run(run_case(menv, port, server.pid, clients, args.stalled, args.rate,
                                             args.seconds, args.pad))
                finally:
                    server.terminate()
                    server.wait()
                print(f"{mode:>4} {clients:>7} {r['delivered']:>9} {r['expected']:>8} {r['p50']:>7.1f} "
                      f"{r['p99']:>7.1f} {r['behind']:>6} {r['stalled_bytes'] / 1e6:>13.1f} {r['rss0']:>13.1f} "
                      f"{r['rss1']:>7.1f} {r['cpu']:>10.0%}", flush=True)


if __name__ == "__main__":
    main()
