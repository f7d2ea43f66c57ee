"""Fan-out: publish-to-browser latency and deliveries/s through Redis and daphne.

Starts N daphne processes (embedded SQLite for the symbol table, the Redis pub/sub
layer), opens C WebSocket clients spread over them, each watching one of 50 symbols,
and publishes a candle update for every symbol R times a second through the same layer
runfeed uses. Each frame carries its send time, so clients measure the delay.

    python bench/fanout.py --clients 100 1000 --processes 1 2 --rate 4 --seconds 10 [--svg docs/fanout.svg]

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0). Clients run in this process
(``bench/wsload.py`` by default, ``--client websockets`` for the library's client), so on
a 2-core machine they compete with daphne for CPU; the CPU each side used is printed.
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
import urllib.request
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
SYMBOLS = [f"BENCH:S{i:02d}" for i in range(50)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    code = ("from market.models import Symbol\n"
            f"for t in {SYMBOLS!r}: Symbol.objects.get_or_create(ticker=t, defaults={{'exchange': 'BENCH'}})")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_daphne(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                             "tickchart.asgi:application"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("daphne did not start")


async def client(port: int, symbol: str, latencies: list[float], ready: asyncio.Event, stop: asyncio.Event,
                 failed: list[int]) -> None:
    try:
        await _client(port, symbol, latencies, ready, stop)
    except Exception:  # noqa: BLE001 - a refused or dropped handshake is counted, not fatal
        failed.append(1)
        ready.set()


async def _client(port: int, symbol: str, latencies: list[float], ready: asyncio.Event, stop: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/market/", origin=f"http://127.0.0.1:{port}",
                                  max_queue=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "symbol": symbol, "tf": "5s"}))
        while True:
            msg = orjson.loads(await ws.recv())
            if msg["type"] == "snapshot":
                break
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except asyncio.TimeoutError:
                continue
            msg = orjson.loads(raw)
            if msg["type"] == "candle":
                latencies.append(time.time() - msg["sent"])
            elif msg["type"] in ("sync", "behind"):  # flow control: ack like the browser does
                await ws.send('{"type":"ack","seq":%d}' % msg["seq"])


async def raw_client(port: int, symbol: str, latencies: list[float], ready: asyncio.Event, stop: asyncio.Event,
                     failed: list[int]) -> None:
    """The same client as ``client`` on ``wsload.LoadClient``: parses frames in bulk."""
    from wsload import connect

    lost = asyncio.Event()

    def closed() -> None:
        if not ready.is_set():
            failed.append(1)
            ready.set()
        lost.set()

    try:
        transport = await connect("127.0.0.1", port, {"type": "subscribe", "symbol": symbol, "tf": "5s"},
                                  latencies, ready, closed)
    except OSError:
        failed.append(1)
        ready.set()
        return
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([stopped, asyncio.ensure_future(lost.wait())], return_when=asyncio.FIRST_COMPLETED)
    transport.close()


async def run_case(env: dict, ports: list[int], clients: int, rate: float, seconds: float, ramp: float,
                   kind: str = "raw", pids: tuple[int, ...] = ()) -> dict:
    from channels_redis.pubsub import RedisPubSubChannelLayer

    from market.live.broadcast import EVENT_TYPE, group_name

    layer = RedisPubSubChannelLayer(hosts=[{"address": env["REDIS_URL"], "socket_timeout": None}],
                                    prefix=env["TICKCHART_CHANNEL_PREFIX"])
    latencies: list[float] = []
    failed: list[int] = []
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(clients)]
    tasks = []
    for i in range(clients):
        make = raw_client if kind == "raw" else client
        tasks.append(asyncio.create_task(
            make(ports[i % len(ports)], SYMBOLS[i % 50], latencies, readies[i], stop, failed)))
        if i % 10 == 9:
            await asyncio.sleep(10 / ramp)  # connections per second, all processes together
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=120)
    await asyncio.sleep(1)
    t0 = 1_800_000_000
    sent = 0
    cpu0 = [cpu_seconds(p) for p in pids], time.process_time()
    started = time.perf_counter()
    n = 0
    while time.perf_counter() - started < seconds:
        n += 1
        for sym in SYMBOLS:
            candle = {"time": t0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0, "ticks": n}
            now = time.time()
            text = orjson.dumps({"type": "candle", "symbol": sym, "tf": "5s", "candle": candle, "sent": now}).decode()
            await layer.group_send(group_name(sym, "5s"), {"type": EVENT_TYPE, "symbol": sym, "tf": "5s",
                                                           "candle": candle, "final": False, "text": text})
            sent += 1
        await asyncio.sleep(max(0.0, n / rate - (time.perf_counter() - started)))
    await asyncio.sleep(2)  # drain
    elapsed = time.perf_counter() - started
    server_cpu = max((cpu_seconds(p) - c for p, c in zip(pids, cpu0[0])), default=float("nan")) / elapsed
    client_cpu = (time.process_time() - cpu0[1]) / elapsed
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await layer.flush()
    expected = sent * (clients - len(failed)) / 50
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100) if len(lat) > 100 else [float("nan")] * 99
    return {"clients": clients, "processes": len(ports), "failed": len(failed), "delivered": len(lat),
            "expected": int(expected),
            "per_s": len(lat) / (elapsed - 2 + 1e-9), "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000,
            "server_cpu": server_cpu, "client_cpu": client_cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rate", type=float, default=4.0, help="updates per second per symbol")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--ramp", type=float, default=400.0,
                    help="new connections per second while clients connect (daphne closes handshakes "
                         "its application has not accepted within 5 s)")
    ap.add_argument("--client", choices=("raw", "websockets"), default="raw",
                    help="raw: bench/wsload.py, frames parsed in bulk, so the clients sharing this machine "
                         "take little of daphne's CPU; websockets: one websockets-library client each")
    ap.add_argument("--svg", help="also draw p50/p99 latency against clients per process count here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TICKCHART_DB_PATH=str(Path(tmp) / "bench.sqlite3"),
                   REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                   TICKCHART_CHANNEL_PREFIX=f"bench{uuid.uuid4().hex[:6]}", DJANGO_DEBUG="1", LOG_LEVEL="WARNING")
        env.pop("DATABASE_URL", None)
        os.environ.update({k: env[k] for k in ("REDIS_URL", "TICKCHART_CHANNEL_PREFIX")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tickchart.settings")
        setup(env)
        print(f"{'clients':>7} {'procs':>5} {'failed':>6} {'delivered':>10} {'expected':>9} {'deliv/s':>9} "
              f"{'p50 ms':>8} {'p99 ms':>8} {'daphne cpu':>10} {'client cpu':>10}")
        results = []
        for procs in args.processes:
            ports = [free_port() for _ in range(procs)]
            servers = [start_daphne(env, p) for p in ports]
            try:
                for clients in args.clients:
                    r = asyncio.run(run_case(env, ports, clients, args.rate, args.seconds, args.ramp, args.client,
                                                 tuple(p.pid for p in servers)))
                    results.append(r)
                    print(f"{r['clients']:>7} {r['processes']:>5} {r['failed']:>6} {r['delivered']:>10} {r['expected']:>9} "
                          f"{r['per_s']:>9,.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['server_cpu']:>10.0%} "
                          f"{r['client_cpu']:>10.0%}", flush=True)
            finally:
                for s in servers:
                    s.terminate()
                    s.wait()
    if args.svg:
        draw(results, args.rate, args.svg)


def draw(results: list[dict], rate: float, path: str) -> None:
    from svgplot import line_chart

    colours = {1: ("#1f77b4", "#aec7e8"), 2: ("#d62728", "#ff9896"), 3: ("#2ca02c", "#98df8a")}
    series = []
    for procs in sorted({r["processes"] for r in results}):
        rows = [r for r in results if r["processes"] == procs and r["p99_ms"] == r["p99_ms"]]
        dark, light = colours.get(procs, ("#555", "#aaa"))
        name = "1 daphne" if procs == 1 else f"{procs} daphnes"
        series.append((f"p99, {name}", dark, [(r["clients"], r["p99_ms"]) for r in rows]))
        series.append((f"p50, {name}", light, [(r["clients"], r["p50_ms"]) for r in rows]))
    Path(path).write_text(line_chart(
        f"Publish-to-browser latency, {rate:g} updates/s per client (Redis pub/sub)",
        "WebSocket clients", "milliseconds (log scale)", series, hline=(100.0, "p99 target")))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
