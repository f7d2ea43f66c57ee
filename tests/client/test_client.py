"""The Python client (client/, ``pip install ./client``) against a real server.

A real ``runfeed --serve`` (daphne and the simulated feed in one process, SQLite, production
settings: public access off, so every call needs the token) with 25,000 seeded 1m candles
of one symbol, more than two of the server's 10,000-candle pages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.servers import ROOT, free_port

sys.path.insert(0, str(ROOT / "client"))  # the package as `pip install ./client` installs it

from tickchart_client import Client, StreamError, TickChartError  # noqa: E402
from tickchart_client._time import to_epoch  # noqa: E402
from tickchart_client.cli import main as cli_main  # noqa: E402

SEED = "NSE:SEED-EQ"
T0 = 1_761_968_700  # 2025-11-01 09:15 IST, a session open
COUNT = 25_000
SESSION = 375  # 1m candles in a 09:15-15:30 session


def seed_time(i: int) -> int:
    """The i-th seeded 1m candle: whole sessions, one a day."""
    return T0 + (i // SESSION) * 86_400 + (i % SESSION) * 60

SEED_SCRIPT = f"""
from market import services
from market.core.types import Candle, CandleUpdate
sym, _ = services.symbol_register(ticker={SEED!r}, exchange="NSE", name="Seed")
ups = [CandleUpdate({SEED!r}, "1m", Candle(time={T0} + (i // {SESSION}) * 86_400 + (i % {SESSION}) * 60, open=100 + i % 7, high=110 + i % 5,
       low=90 - i % 3, close=100 + i % 11, volume=1000 + i, ticks=1 + i % 9), True) for i in range({COUNT})]
services.candle_upsert_many(updates=ups, symbol_ids={{{SEED!r}: sym.id}})
from django.contrib.auth.models import User
from market import tokens
user = User.objects.create_user("quant")
print("TOKEN", tokens.api_token_create(user=user, name="client", scopes="read alerts markers")[1])
"""


class Server:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith(("PYTEST", "TICKCHART_"))}
        self.env.update(DJANGO_DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1",
                        SECURE_COOKIES="0", TICKCHART_DB_PATH=str(tmp / "db.sqlite3"), TICKCHART_SIM_RATE="20",
                        TICKCHART_SIM_BACKFILL_HOURS="0.02", PYTHONUNBUFFERED="1")
        self.log_path = tmp / "server.log"
        self.proc: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "manage.py", "runfeed", "--serve", "--no-migrate", "--port",
                                      str(self.port), "--host", "127.0.0.1"], cwd=ROOT, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, self.log_path.read_text()[-3000:]
                time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("client-server"))
    srv.manage("migrate", "-v", "0")
    out = srv.manage("shell", "-c", SEED_SCRIPT)
    srv.token = next(line.split()[1] for line in out.splitlines() if line.startswith("TOKEN"))
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
def client(server) -> Client:
    return Client(server.url, server.token)


# -- times -----------------------------------------------------------------------------------
def test_times_are_read_in_the_exchange_zone():
    assert to_epoch("2025-11-02", "Asia/Kolkata") == 1_762_021_800  # midnight IST
    assert to_epoch("2025-11-02", "Asia/Kolkata", end_of_day=True) == 1_762_021_800 + 86_400 - 1
    assert to_epoch("2025-11-02T09:15", "Asia/Kolkata") == 1_762_021_800 + 9 * 3600 + 15 * 60
    assert to_epoch("2025-11-02T09:15+00:00", "Asia/Kolkata") == 1_762_074_900
    assert to_epoch(dt.datetime(2025, 11, 2, tzinfo=dt.timezone.utc), "Asia/Kolkata") == 1_762_041_600
    assert to_epoch("1762041600", "UTC") == to_epoch(1_762_041_600.9, "UTC") == 1_762_041_600
    assert to_epoch(None, "UTC") is None
    with pytest.raises(ValueError, match="not a time"):
        to_epoch("yesterday", "UTC")


# -- history ---------------------------------------------------------------------------------
def test_history_pages_past_the_server_limit_in_order(client):
    pages = []
    rows = client.history(SEED, "1m", frame=False, progress=lambda n, p: pages.append((n, p)))
    assert len(rows) == COUNT and [r["time"] for r in rows] == [seed_time(i) for i in range(COUNT)]
    assert rows[12_345] == {"time": seed_time(12_345), "open": 100 + 12_345 % 7, "high": 110 + 12_345 % 5,
                            "low": 90 - 12_345 % 3, "close": 100 + 12_345 % 11, "volume": 1000 + 12_345,
                            "ticks": 1 + 12_345 % 9}
    assert [p for _, p in pages] == [1, 2, 3] and pages[-1][0] == COUNT


def test_history_of_a_derived_timeframe_has_no_repeated_bucket_across_pages(client):
    rows = client.history(SEED, "3m", frame=False)  # aggregated from 1m on the server
    times = [r["time"] for r in rows]
    buckets = sorted({t - (t - T0) % 86_400 % 180 for t in map(seed_time, range(COUNT))})
    assert times == buckets  # 3,334 buckets over three pages, none twice, none missing
    assert sum(r["volume"] for r in rows) == sum(1000 + i for i in range(COUNT))


def test_history_range_and_studies_as_a_dataframe(client):
    pd = pytest.importorskip("pandas")
    day = dt.datetime.fromtimestamp(T0, dt.timezone.utc).astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    frame = client.history(SEED, "1m", day.date().isoformat(), day.date().isoformat(), studies=["ema:20", "macd"])
    assert isinstance(frame, pd.DataFrame)
    assert str(frame.index.tz) == "Asia/Kolkata" and frame.index[0] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert frame.index[-1].date() == day.date() and len(frame) == SESSION  # --to a date: the whole day
    assert {"open", "close", "volume", "ema:20", "macd:12:26:9.macd", "macd:12:26:9.hist"} <= set(frame.columns)
    api = client.request("GET", "/api/candles", {"symbol": SEED, "tf": "1m", "from": T0, "limit": 100,
                                                 "studies": "ema:20"})
    assert frame["ema:20"].iloc[50] == pytest.approx(api["studies"]["ema:20"][50]["value"], rel=1e-12)


def test_errors_and_tokens(server, client):
    with pytest.raises(TickChartError) as bad:
        client.history("NSE:NOPE-EQ", "1m")
    assert bad.value.status == 404 and "unknown symbol" in bad.value.message
    with pytest.raises(TickChartError) as refused:
        Client(server.url, "tc_not-a-real-token").history(SEED, "1m")
    assert refused.value.status == 401
    assert "token" not in repr(client) and server.token not in repr(client)


def test_alerts_through_the_client(client):
    made = client.alert_create(symbol=SEED, tf="1m", left="price", op="crosses_above", right=150.0, trigger="once")
    assert [a["id"] for a in client.alerts()] == [made["id"]]
    assert client.alert_events(made["id"]) == []
    client.alert_delete(made["id"])
    assert client.alerts() == []


def test_markers_through_the_client(client):
    made = client.marker_create(SEED, "2025-11-03T10:00", price=101.5, shape="arrowDown", text="exit")
    assert made["time"] == T0 + 2 * 86_400 + 45 * 60 and made["position"] == "atPriceMiddle"
    assert [m["id"] for m in client.markers(SEED, "2025-11-03", "2025-11-03")] == [made["id"]]
    assert client.markers(SEED, "2025-11-04") == []
    client.marker_delete(made["id"])
    assert client.markers(SEED) == []


def test_the_command_line_writes_csv(server, capsys, monkeypatch):
    monkeypatch.setenv("TICKCHART_TOKEN", server.token)
    assert cli_main(["--url", server.url, "history", SEED, "3m", "--from", "2025-11-02", "--to", "2025-11-02",
                     "--csv"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "time,epoch,open,high,low,close,volume,ticks"
    assert len(lines) == 1 + SESSION // 3 and lines[1].startswith(f"2025-11-02T09:15:00+05:30,{T0 + 86_400},")
    assert "125 candles" in err
    monkeypatch.setenv("TICKCHART_TOKEN", "tc_not-a-real-token")
    assert cli_main(["--url", server.url, "history", SEED, "1h"]) == 1
    assert "HTTP 401" in capsys.readouterr().err


# -- stream ----------------------------------------------------------------------------------
async def _collect(client: Client, ticker: str, seconds: float, since: int | None, out: list, *,
                   kill_after: float | None = None, server: Server | None = None) -> None:
    async def run() -> None:
        async for update in client.stream([ticker], "5s", since=since):
            out.append(update)

    task = asyncio.create_task(run())
    try:
        if kill_after is not None:
            await asyncio.sleep(kill_after)
            await asyncio.to_thread(server.kill)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(server.start)
            seconds -= kill_after
        await asyncio.sleep(seconds)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_stream_resumes_across_a_server_crash_without_gaps_or_repeats(server, client):
    ticker = "DEMO:ALPHA"
    start = int(time.time()) - 60
    updates: list = []
    asyncio.run(_collect(client, ticker, 14.0, start, updates, kill_after=5.0, server=server))
    states = [(u.time, tuple(sorted(u.candle.items()))) for u in updates]
    assert len(states) == len(set(states)), "a candle state was yielded twice"
    assert len({t for t, _ in states}) >= 4, "too few candles to say anything"
    final = {u.time: u.candle for u in updates}
    stored = {c["time"]: c for c in client.history_rows(ticker, "5s", min(final), max(final))[0]}
    newest = max(final)
    # Every stored candle in the span was yielded, and ended as stored (the newest may still form).
    assert sorted(stored) == sorted(final)
    assert {t: c for t, c in final.items() if t != newest} == {t: c for t, c in stored.items() if t != newest}


def test_stream_refuses_a_bad_symbol_and_a_bad_token(server, client):
    async def first(c: Client, ticker: str) -> None:
        async for _ in c.stream([ticker], "1m"):
            return

    with pytest.raises(StreamError):
        asyncio.run(asyncio.wait_for(first(client, "NSE:NOPE-EQ"), 20))
    with pytest.raises(StreamError, match="HTTP 403|token"):
        asyncio.run(asyncio.wait_for(first(Client(server.url, "tc_not-a-real-token"), "DEMO:ALPHA"), 20))


def test_the_package_builds_as_a_wheel_with_its_command(tmp_path):
    import shutil

    source = tmp_path / "client"  # a copy: building leaves build/ and *.egg-info beside the sources
    shutil.copytree(ROOT / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("tickchart_client-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tickchart_client/py.typed" in names and "tickchart_client/stream.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "tickchart = tickchart_client.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_a_snapshot_too_far_ahead_is_preceded_by_the_gap_over_http(monkeypatch):
    """After a long disconnect the server sends its newest page only; the stream reads what
    lies between over HTTP first, so the iterator skips nothing and repeats nothing."""
    from tickchart_client import stream as stream_module

    monkeypatch.setattr(stream_module, "PAGE", 3)
    bar = lambda t: {"time": t, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0, "ticks": 1}  # noqa: E731
    asked = []

    class Pages:
        def pages(self, symbol, tf, start, end, studies=None):
            asked.append((symbol, tf, start, end))
            yield [bar(t) for t in range(start, end + 1, 60)], None, "UTC"

    s = stream_module._Stream("X:Y", mark=60)
    s.fresh(bar(60))
    frame = {"type": "snapshot", "symbol": "X:Y", "tf": "1m", "candles": [bar(600), bar(660), bar(720)]}

    async def collect():
        return [u.time async for u in stream_module._updates(Pages(), s, "1m", frame, None)]

    assert asyncio.run(collect()) == list(range(120, 721, 60))  # 60 was yielded before
    assert asked == [("X:Y", "1m", 60, 599)]
