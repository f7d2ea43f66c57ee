"""Soak (issue 17): a long run of the production topology, watched for leaks.

One daphne on the checkout's Procfile command line (sign-in required, DEBUG off) and one
``runfeed`` with the simulated market grown to ``--symbols`` symbols (``TICKCHART_SIM_SYMBOLS``),
over Redis and PostgreSQL (``--services``) or a SQLite file, with ``--backfill-hours`` of
history made first (deep enough that every 5s snapshot cache starts full). ``--sockets`` signed-in
WebSockets, each saying hello with ``batch`` as the chart page does, subscribe to two
streams each (one symbol's 5s, another's 1m) and ack flow control; a socket that drops is
counted and reconnected. Every ``--every`` seconds it samples, for daphne and runfeed: RSS,
open file descriptors, threads and the tasks on the event loop (the
``tickchart_event_loop_tasks`` metric), plus the candle updates the sockets received and
how many are open. One line per sample shows progress; at the end a table says whether
RSS stayed within ±10 % of its value after the warm-up and whether tasks or descriptors
grew, and ``--svg`` draws RSS over time.

    python bench/soak.py --minutes 60 --symbols 500 --sockets 1000 --services --svg docs/soak.svg
    python bench/soak.py --minutes 3 --symbols 100 --sockets 200        # a quick look, SQLite + Redis

Needs Redis (REDIS_URL, default redis://127.0.0.1:6379/0); ``--services`` also PostgreSQL
(DATABASE_URL, default postgres://postgres@127.0.0.1:5432/tickchart_soak; that database is
created afresh and dropped after). The clients run in this process, on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from storm import (ROOT, StormClient, cpu_seconds, create_database, drop_database, free_port,  # noqa: E402
                   production_env, setup, start_daphne)
from svgplot import time_chart  # noqa: E402
from wsload import LoadClient, client_frame  # noqa: E402

DEMO = ["DEMO:ALPHA", "DEMO:BETA", "DEMO:GAMMA", "DEMO:INDEX"]


def universe(n: int) -> list[str]:
    """The tickers of ``market.core.simulator.sim_universe(n - 4)``."""
    return DEMO[:n] + [f"DEMO:S{i:04d}" for i in range(max(0, n - len(DEMO)))]


def proc_stats(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {ln.split(":", 1)[0]: ln.split(":", 1)[1].split() for ln in status}
    return {"rss": int(fields["VmRSS"][0]) / 1024, "threads": int(fields["Threads"][0]),
            "fds": len(os.listdir(f"/proc/{pid}/fd")), "cpu": cpu_seconds(pid)}


def metric(url: str, name: str, token: str | None = None) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        text = urllib.request.urlopen(request, timeout=5).read().decode()
    except OSError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return float("nan")


class Counters:
    def __init__(self) -> None:
        self.updates = 0
        self.open = 0
        self.drops = 0
        self.refused = 0
        self.errors = 0


class SoakClient(StormClient):
    """A browser's socket: hello with batch, two subscribes, acks; counts candle updates."""

    def __init__(self, *args, streams: list[tuple[str, str]], counters: Counters, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.streams = streams
        self.counters = counters
        self.opened = False

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            # The first bytes finish the handshake; LoadClient then sends self.subscribe (the hello).
            super().data_received(data)
            if self.upgraded and not self.opened:
                self.opened = True
                self.counters.open += 1
                for symbol, tf in self.streams:
                    self.transport.write(client_frame(orjson.dumps({"type": "subscribe", "symbol": symbol,
                                                                    "tf": tf}).decode()))
            return
        super().data_received(data)

    def frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 1:
            if payload.startswith(b'{"type":"candles"'):
                self.counters.updates += payload.count(b'"type":"candle"')
            elif payload.startswith(b'{"type":"candle"'):
                self.counters.updates += 1
            elif payload.startswith((b'{"type":"sync"', b'{"type":"behind"')):
                seq = int(payload.rsplit(b":", 1)[1].rstrip(b"}"))
                self.transport.write(client_frame('{"type":"ack","seq":%d}' % seq))
            elif payload.startswith(b'{"type":"error"'):
                self.counters.errors += 1
        elif opcode in (8, 9):  # close, ping: as any client
            LoadClient.frame(self, opcode, payload, now)

    def connection_lost(self, exc) -> None:
        if self.opened:
            self.counters.open -= 1
        if not self.done.done():
            self.done.set_result(None)


async def keep_open(port: int, cookie: str, streams: list[tuple[str, str]], counters: Counters,
                    stop: asyncio.Event) -> None:
    """One browser tab: connected for the whole soak, reconnecting a second after a drop."""
    loop = asyncio.get_running_loop()
    first = True
    while not stop.is_set():
        done: asyncio.Future = loop.create_future()
        try:
            transport, proto = await loop.create_connection(
                lambda: SoakClient("127.0.0.1", port, f"http://127.0.0.1:{port}", {"type": "hello", "batch": True},
                                   [], asyncio.Event(), lambda: None, cookie=cookie, done=done, streams=streams,
                                   counters=counters), "127.0.0.1", port)
        except OSError:
            counters.refused += 1
            await asyncio.sleep(1)
            continue
        if not first:
            counters.drops += 1  # counted when the next connection is made: only real drops
        first = False
        stop_wait = asyncio.ensure_future(stop.wait())
        await asyncio.wait([done, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        transport.close()
        if not stop.is_set():
            await asyncio.sleep(1)


def wait_live(port: int, timeout: float = 1800) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            body = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).read())
            if body["checks"]["feeds"].get("simulated", {}).get("state") == "live":
                return time.monotonic() - started
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1)
    raise RuntimeError("the simulated feed did not go live")


async def soak(args: argparse.Namespace, port: int, daphne: subprocess.Popen, feed: subprocess.Popen,
               cookies: list[str], token: str, metrics_port: int) -> list[dict]:
    tickers = universe(args.symbols)
    counters = Counters()
    stop = asyncio.Event()
    tasks = []
    for i in range(args.sockets):
        streams = [(tickers[i % len(tickers)], "5s"), (tickers[(7 * i + 3) % len(tickers)], "1m")]
        tasks.append(asyncio.create_task(keep_open(port, cookies[i], streams, counters, stop)))
        if i % 50 == 49:
            await asyncio.sleep(0.1)  # the tabs open over a few seconds, not as one storm
    samples: list[dict] = []
    started = time.monotonic()
    last_updates, last_t = 0, started
    print(f"{'min':>6} {'sockets':>7} {'upd/s':>7} {'drops':>5} | {'daphne MB':>9} {'fds':>5} {'thr':>4} {'tasks':>6}"
          f" | {'runfeed MB':>10} {'fds':>5} {'thr':>4} {'tasks':>6} {'tick lag s':>10}", flush=True)
    try:
        while time.monotonic() - started < args.minutes * 60:
            await asyncio.sleep(args.every - (time.monotonic() - started) % args.every)
            if daphne.poll() is not None or feed.poll() is not None:
                raise RuntimeError("daphne or runfeed exited during the soak")
            now = time.monotonic()
            d, r = proc_stats(daphne.pid), proc_stats(feed.pid)
            d_tasks, r_tasks, lag = await asyncio.gather(
                asyncio.to_thread(metric, f"http://127.0.0.1:{port}/metrics", "tickchart_event_loop_tasks", token),
                asyncio.to_thread(metric, f"http://127.0.0.1:{metrics_port}/", "tickchart_event_loop_tasks"),
                asyncio.to_thread(metric, f"http://127.0.0.1:{metrics_port}/", "tickchart_tick_lag_seconds"))
            rate = (counters.updates - last_updates) / (now - last_t)
            last_updates, last_t = counters.updates, now
            sample = {"t": now - started, "sockets": counters.open, "updates_per_s": rate, "drops": counters.drops,
                      "daphne": {**d, "tasks": d_tasks}, "runfeed": {**r, "tasks": r_tasks}, "tick_lag": lag}
            samples.append(sample)
            print(f"{sample['t'] / 60:>6.1f} {counters.open:>7} {rate:>7.0f} {counters.drops:>5} | {d['rss']:>9.1f} "
                  f"{d['fds']:>5} {d['threads']:>4} {d_tasks:>6.0f} | {r['rss']:>10.1f} {r['fds']:>5} "
                  f"{r['threads']:>4} {r_tasks:>6.0f} {lag:>10.2f}", flush=True)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return samples


def verdict(samples: list[dict], warmup_s: float) -> list[tuple[str, str, str, str]]:
    """Rows (what, after warm-up, at the end, verdict) for both processes."""
    after = [s for s in samples if s["t"] >= warmup_s] or samples
    rows = []
    for name in ("daphne", "runfeed"):
        base = after[0][name]["rss"]
        rss = [s[name]["rss"] for s in after]
        up, down = max(rss) / base - 1, min(rss) / base - 1
        said = "flat" if max(up, -down) <= 0.10 else "GREW" if up > 0.10 else "fell (no growth)"
        rows.append((f"{name} RSS MB", f"{base:.1f}", f"{rss[-1]:.1f} (min {min(rss):.1f}, max {max(rss):.1f})",
                     f"{said}: {down:+.1%} to {up:+.1%} of the start"))
        for key in ("fds", "threads", "tasks"):
            values = [s[name][key] for s in after if s[name][key] == s[name][key]]  # drop NaN
            if not values:
                rows.append((f"{name} {key}", "-", "-", "not sampled"))
                continue
            q = max(1, len(values) // 4)
            first, last = statistics.median(values[:q]), statistics.median(values[-q:])
            grew = last > first + max(2, 0.01 * first)
            rows.append((f"{name} {key}", f"{values[0]:.0f}", f"{values[-1]:.0f} (max {max(values):.0f})",
                         f"{'GREW' if grew else 'no growth'} (first quarter median {first:.0f}, last {last:.0f})"))
    return rows


def plot(samples: list[dict], warmup_s: float, title: str) -> str:
    after = [s for s in samples if s["t"] >= warmup_s] or samples
    series = []
    for name, colour in (("daphne", "#1f77b4"), ("runfeed", "#d62728")):
        base = after[0][name]["rss"]
        series.append((f"{name} ({base:.0f} MB)", colour,
                       [(s["t"] / 60, 100 * s[name]["rss"] / base) for s in samples]))
    return time_chart(title, "minutes", "RSS, % of the value after the warm-up (in the legend)", series,
                      band=(90, 110, "±10 %"), y_range=(50, 130))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--symbols", type=int, default=500, help="simulated symbols (the 4 demo ones and N-4 more)")
    ap.add_argument("--sockets", type=int, default=1000)
    ap.add_argument("--every", type=float, default=30, help="seconds between samples")
    ap.add_argument("--warmup", type=float, help="minutes before RSS is taken as the start (default: 5, or a "
                                                  "quarter of a shorter run)")
    ap.add_argument("--backfill-hours", type=float, default=1.5,
                    help="simulated history made before the sockets connect: with 1.5 h each 5s stream already "
                         "has the 1,000 candles (HISTORY_LIMIT) its snapshot cache keeps, so a filling cache "
                         "does not pass for a leak")
    ap.add_argument("--services", action="store_true", help="PostgreSQL (DATABASE_URL) instead of a SQLite file")
    ap.add_argument("--svg", type=Path, help="draw RSS over time here")
    ap.add_argument("--json", type=Path, help="write every sample here")
    ap.add_argument("--report", type=Path, help="no run: the table (and --svg) of a --json file written before")
    args = ap.parse_args()
    warmup_s = 60 * (args.warmup if args.warmup is not None else min(5.0, args.minutes / 4))
    if args.report:
        report(json.loads(args.report.read_text())["samples"], warmup_s, args)
        return
    root = ROOT
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        token = secrets.token_urlsafe(24)
        env = production_env(tmp, "soak", TICKCHART_FEED="simulated",
                             TICKCHART_SIM_SYMBOLS=str(max(0, args.symbols - len(DEMO))),
                             TICKCHART_SIM_BACKFILL_HOURS=str(args.backfill_hours), TICKCHART_METRICS_TOKEN=token,
                             TICKCHART_JOURNAL_DIR=str(tmp / "journal"))
        env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
        dbname = None
        if args.services:
            env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tickchart_soak")
            dbname = env["DATABASE_URL"].rsplit("/", 1)[1]
            create_database(env["DATABASE_URL"], dbname)
        else:
            env.pop("DATABASE_URL", None)
        try:
            cookies = setup(env, root, [], args.sockets, tmp)
            port, metrics_port = free_port(), free_port()
            daphne = start_daphne(env, root, port, tmp / "daphne.log")
            feed_log = open(tmp / "runfeed.log", "wb")
            feed = subprocess.Popen([sys.executable, "manage.py", "runfeed", "--no-migrate", "--source", "simulated",
                                     "--metrics-port", str(metrics_port)], cwd=root, env=env, stdout=feed_log,
                                    stderr=subprocess.STDOUT)
            try:
                took = wait_live(port)
                where = "PostgreSQL + Redis" if args.services else "SQLite + Redis"
                print(f"soak: {args.minutes:g} min, {args.symbols} simulated symbols, {args.sockets} signed-in sockets "
                      f"x 2 streams, {where}; feed live after {took:.0f} s; warm-up {warmup_s / 60:g} min", flush=True)
                samples = asyncio.run(soak(args, port, daphne, feed, cookies, token, metrics_port))
            finally:
                for p in (feed, daphne):
                    p.terminate()
                for p in (feed, daphne):
                    try:
                        p.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        p.kill()
                print("runfeed log tail:\n" + (tmp / "runfeed.log").read_text(errors="replace")[-1500:]
                      if feed.returncode not in (0, -15) else "", end="")
        finally:
            if dbname:
                drop_database(env["DATABASE_URL"], dbname)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "samples": samples}))
    report(samples, warmup_s, args)


def report(samples: list[dict], warmup_s: float, args: argparse.Namespace) -> None:
    print(f"\n{'':<18} {'after warm-up':>14}  {'at the end':<32} verdict")
    for what, start, end, said in verdict(samples, warmup_s):
        print(f"{what:<18} {start:>14}  {end:<32} {said}")
    rates = [s["updates_per_s"] for s in samples[1:]] or [0.0]
    first, last = samples[0], samples[-1]
    seconds = max(1e-9, last["t"] - first["t"])
    print(f"candle updates received: median {statistics.median(rates):,.0f}/s (min {min(rates):,.0f}); "
          f"drops {last['drops']}; CPU daphne {(last['daphne']['cpu'] - first['daphne']['cpu']) / seconds:.0%}, "
          f"runfeed {(last['runfeed']['cpu'] - first['runfeed']['cpu']) / seconds:.0%} of a core")
    if args.svg:
        minutes = last["t"] / 60
        args.svg.write_text(plot(samples, warmup_s, f"Soak: {minutes:.0f} min, {args.symbols} symbols, "
                                                    f"{args.sockets} sockets"))
        print(f"wrote {args.svg}")


if __name__ == "__main__":
    main()
