"""Reconnect storm (issue 17): N signed-in browsers subscribe to one daphne at the same moment.

After a deploy or a network blip every open chart reconnects at once. This starts one
daphne with the production command line of the checkout's Procfile (sign-in required,
DEBUG off, the listen backlog), creates one user and N sessions of theirs (so every socket
carries its own session cookie, as N browsers do), stores history for a few symbols, then
opens all N sockets at once; each subscribes to one of the symbols on 1m without ``since``
(a 1000-candle snapshot) as soon as it is upgraded. It prints the time from starting the TCP
connect to the whole snapshot having arrived (p50 / p99 / max), the handshakes that failed
(refused, reset, not 101, closed before the snapshot) and daphne's CPU seconds.

    python bench/storm.py --clients 1000 3000 --runs 3             # embedded: SQLite, in-process layer
    python bench/storm.py --clients 1000 --runs 3 --services       # PostgreSQL (DATABASE_URL) + Redis (REDIS_URL)
    python bench/storm.py --clients 1000 --runs 3 --services --pool 8   # daphne with TICKCHART_DB_POOL=8
    python bench/storm.py --clients 1000 --root /work/main          # another checkout's code, same storm

The clients (``bench/wsload.py``'s frame parser) run in this process, on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from wsload import LoadClient, client_frame  # noqa: E402

HISTORY = 1200  # stored 1m candles per symbol (a snapshot carries the newest 1000)
T0 = 1_800_000_000 - 1_800_000_000 % 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SETUP = """
import sys
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from market import services
from market.core.types import Candle, CandleUpdate
from market.models import Candle as Row, Symbol
symbols = {symbols!r}
for i, ticker in enumerate(symbols):
    symbol, _ = Symbol.objects.get_or_create(ticker=ticker, defaults={{"exchange": "BENCH", "source": "simulated"}})
    if not Row.objects.filter(symbol=symbol).exists():
        bars = [Candle(time={t0} + 60 * k, open=100.0 + k, high=101.5 + k, low=99.25 + k, close=100.75 + i,
                       volume=1234.0 + k, ticks=17) for k in range({history})]
        services.candle_upsert_many(updates=[CandleUpdate(ticker, "1m", c, True) for c in bars],
                                    symbol_ids={{ticker: symbol.pk}})
User = get_user_model()
user = User.objects.filter(username="storm").first() or User.objects.create_user("storm", password=None)
keys = []
for _ in range({sessions}):
    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    keys.append(s.session_key)
open({out!r}, "w").write("\\n".join(keys))
"""


def setup(env: dict, root: Path, symbols: list[str], sessions: int, tmp: Path) -> list[str]:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=root, env=env, check=True)
    out = tmp / "sessions.txt"
    code = SETUP.format(symbols=symbols, t0=T0, history=HISTORY, sessions=sessions, out=str(out))
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=root, env=env, check=True)
    return out.read_text().split()


def production_argv(root: Path, port: int) -> list[str]:
    """The checkout's Procfile web line, on loopback and ``port``."""
    line = next(ln for ln in (root / "Procfile").read_text().splitlines() if ln.startswith("web:"))
    argv = shlex.split(line.split(":", 1)[1])
    argv = [a.replace("$PORT", str(port)).replace("0.0.0.0", "127.0.0.1") for a in argv]
    argv[0] = str(Path(sys.executable).parent / "daphne")
    return argv


def start_daphne(env: dict, root: Path, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(production_argv(root, port), cwd=root, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT)
    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    raise RuntimeError(f"daphne did not start:\n{log.read_text()[-3000:]}")


def production_env(tmp: Path, name: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like daphne (DEBUG off, sign-in required) for a
    benchmark named ``name``: its own SQLite file and channel prefix under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKCHART_", "PYTEST"))}
    env.update(DJANGO_DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1",
               TICKCHART_PUBLIC_ACCESS="0", LOG_LEVEL="WARNING", TICKCHART_DB_PATH=str(tmp / f"{name}.sqlite3"),
               TICKCHART_CHANNEL_PREFIX=f"{name}{uuid.uuid4().hex[:6]}", STATIC_ROOT=str(tmp / "static"), **extra)
    return env


def _admin(url: str):
    import psycopg

    return psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True)


def create_database(url: str, name: str) -> None:
    with _admin(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str, name: str) -> None:
    with _admin(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')



def use_services(env: dict[str, str], services: bool, name: str, pool: int = 0) -> str | None:
    """With ``services``: PostgreSQL (database ``name``, made afresh; DATABASE_URL names
    another) and Redis, daphne pooling ``pool`` connections; else SQLite and the in-process
    layer. Returns the database to drop after (None: none)."""
    if not services:
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        return None
    env.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{name}")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    if pool:
        env["TICKCHART_DB_POOL"] = str(pool)
    dbname = env["DATABASE_URL"].rsplit("/", 1)[1]
    create_database(env["DATABASE_URL"], dbname)
    return dbname


class StormClient(LoadClient):
    """Sends its session cookie on the handshake; notes when its snapshot has arrived whole."""

    def __init__(self, *args, cookie: str, done: asyncio.Future, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cookie = cookie
        self.done = done

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(
            b"GET /ws/market/ HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: %s\r\nCookie: sessionid=%s\r\n\r\n"
            % (self.host.encode(), self.port, self.key, self.origin.encode(), self.cookie.encode()))

    def frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 1 and payload.startswith(b'{"type":"snapshot"') and not self.done.done():
            self.done.set_result(time.perf_counter())
        elif opcode == 1 and payload.startswith(b'{"type":"error"') and not self.done.done():
            self.done.set_exception(RuntimeError(payload[:200].decode()))
        elif opcode == 1 and payload.startswith((b'{"type":"sync"', b'{"type":"behind"')):
            seq = int(payload.rsplit(b":", 1)[1].rstrip(b"}"))
            self.transport.write(client_frame('{"type":"ack","seq":%d}' % seq))
        elif opcode in (8, 9):
            super().frame(opcode, payload, now)

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("closed before the snapshot"))


async def one(port: int, symbol: str, cookie: str, t0: float) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    sub = {"type": "subscribe", "symbol": symbol, "tf": "1m"}
    transport, _ = await loop.create_connection(
        lambda: StormClient("127.0.0.1", port, f"http://127.0.0.1:{port}", sub, [], asyncio.Event(), lambda: None,
                            cookie=cookie, done=done), "127.0.0.1", port)
    try:
        return await asyncio.wait_for(done, timeout=60) - t0
    finally:
        transport.close()


async def storm(port: int, symbols: list[str], cookies: list[str], pid: int) -> dict:
    cpu0, mine0 = cpu_seconds(pid), time.process_time()
    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(port, symbols[i % len(symbols)], cookies[i], t0)
                                     for i in range(len(cookies))), return_exceptions=True)
    wall = time.perf_counter() - t0
    cpu, mine = cpu_seconds(pid) - cpu0, time.process_time() - mine0
    times = sorted(r for r in results if isinstance(r, float))
    failed = [r for r in results if not isinstance(r, float)]
    q = statistics.quantiles(times, n=100) if len(times) > 1 else [float("nan")] * 99
    kinds: dict[str, int] = {}
    for f in failed:
        kinds[type(f).__name__] = kinds.get(type(f).__name__, 0) + 1
    return {"clients": len(cookies), "ok": len(times), "failed": len(failed), "why": kinds,
            "p50": q[49], "p99": q[98], "max": times[-1] if times else float("nan"), "wall": wall, "cpu": cpu, "client_cpu": mine}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[1000])
    ap.add_argument("--runs", type=int, default=3, help="storms per client count (a fresh daphne each)")
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--services", action="store_true",
                    help="PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) instead of SQLite and the in-process layer")
    ap.add_argument("--pool", type=int, default=0, help="--services: TICKCHART_DB_POOL for daphne (0: no pool)")
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout whose code and Procfile are run")
    ap.add_argument("--logs", type=Path, help="keep daphne's output here (else a temporary directory)")
    args = ap.parse_args()
    root = args.root.resolve()
    symbols = [f"STORM:S{i}" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = production_env(tmp, "storm", TICKCHART_FEED="simulated")
        dbname = use_services(env, args.services, "tickchart_storm", args.pool)
        try:
            cookies = setup(env, root, symbols, max(args.clients), tmp)
            where = "PostgreSQL + Redis" if args.services else "SQLite + in-process layer"
            if args.pool:
                where += f", daphne's pool {args.pool}"
            print(f"storm: {root} ({where}), {len(symbols)} symbols x 1m, {HISTORY} stored candles each")
            print(f"{'clients':>7} {'run':>3} {'ok':>5} {'failed':>6} {'p50 s':>7} {'p99 s':>7} {'max s':>7} "
                  f"{'daphne cpu s':>12} {'client cpu s':>12}  failures")
            for clients in args.clients:
                rows = []
                for run in range(1, args.runs + 1):
                    port = free_port()
                    logs = args.logs or tmp
                    logs.mkdir(parents=True, exist_ok=True)
                    proc = start_daphne(env, root, port, logs / f"daphne-{clients}-{run}.log")
                    try:
                        r = asyncio.run(storm(port, symbols, cookies[:clients], proc.pid))
                    finally:
                        proc.terminate()
                        proc.wait(timeout=30)
                    rows.append(r)
                    print(f"{clients:>7} {run:>3} {r['ok']:>5} {r['failed']:>6} {r['p50']:>7.2f} {r['p99']:>7.2f} "
                          f"{r['max']:>7.2f} {r['cpu']:>12.2f} {r['client_cpu']:>12.2f}  {r['why'] or ''}", flush=True)
                if len(rows) > 1:
                    def med(key: str) -> str:
                        values = [r[key] for r in rows]
                        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
                    print(f"{clients:>7} median of {len(rows)}: p50 {med('p50')} s, p99 {med('p99')} s, "
                          f"max {med('max')} s, daphne cpu {med('cpu')} s, failed {sum(r['failed'] for r in rows)}")
        finally:
            if dbname:
                drop_database(env["DATABASE_URL"], dbname)


if __name__ == "__main__":
    main()
