"""Replay end to end: JSON Lines file -> runfeed -> database -> /api/candles."""

from __future__ import annotations

import datetime as dt
import gzip
import logging
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from market.vendors.fyers import messages as fyers_messages
from market.core.engine import CandleEngine
from market.vendors.fyers.recording import fyers_session, session_open
from market.core.sessions import DEFAULT_SESSIONS, SessionBook
from market.core.timeframes import TimeframePlan
from market.core.types import Tick
from market.models import Candle, Symbol

OPEN = session_open(dt.date(2026, 11, 20))  # 09:15 IST


def sf(symbol: str, t: int, ltp: float, vol: int, **extra) -> dict:
    return {"type": "sf", "symbol": symbol, "ltp": ltp, "vol_traded_today": vol,
            "last_traded_time": t, "exch_feed_time": t, "bid_price": ltp - 0.05, **extra}


def write_lines(path: Path, lines: list, *, gz: bool = False) -> Path:
    data = b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


HAND_MADE = [
    {"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"},
    sf("NSE:SBIN-EQ", OPEN + 1, 800.0, 1000),       # baseline: adds 0
    sf("NSE:SBIN-EQ", OPEN + 2, 805.0, 1100),       # +100
    sf("NSE:SBIN-EQ", OPEN + 2, 805.0, 1100, bid_price=1.0),  # repeat (only the bid moved)
    sf("NSE:SBIN-EQ", OPEN + 3, 795.0, 1150),       # +50
    sf("NSE:SBIN-EQ", OPEN + 7, 801.0, 1200),       # next 5 s bucket, +50
    sf("NSE:SBIN-EQ", OPEN + 4, 900.0, 1300),       # late: before the open 5 s bucket
    sf("NSE:SBIN-EQ", OPEN - 60, 700.0, 1300),      # pre-open: out of session
    {"type": "if", "symbol": "NSE:NIFTY50-INDEX", "ltp": 24000.5, "exch_feed_time": OPEN + 61},
    b"{not json",
    {"type": "sf", "symbol": "NSE:SBIN-EQ", "ltp": "abc", "exch_feed_time": OPEN + 8},
    {"type": "sf", "symbol": "NSE:SBIN-EQ", "ltp": 801.0},
    ["a", "list"],
    {"type": "dp", "symbol": "NSE:SBIN-EQ", "bid_price1": 800.0},
]


def candles_of(ticker: str, tf: str) -> list[tuple]:
    return list(
        Candle.objects.filter(symbol__ticker=ticker, timeframe=tf)
        .order_by("time").values_list("time", "open", "high", "low", "close", "volume", "ticks")
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_replay_stores_exact_candles_and_reports_rejects(tmp_path, caplog, gz):
    path = write_lines(tmp_path / ("s.jsonl.gz" if gz else "s.jsonl"), HAND_MADE, gz=gz)
    with caplog.at_level(logging.INFO, logger="market.feed"):
        call_command("runfeed", source="replay", file=str(path), speed=0, no_migrate=True)

    assert candles_of("NSE:SBIN-EQ", "5s") == [
        (OPEN, 800.0, 805.0, 795.0, 795.0, 150.0, 3),
        (OPEN + 5, 801.0, 801.0, 801.0, 801.0, 50.0, 1),
    ]
    assert candles_of("NSE:SBIN-EQ", "1m") == [(OPEN, 800.0, 805.0, 795.0, 801.0, 200.0, 4)]
    assert candles_of("NSE:SBIN-EQ", "1d") == [
        (int(dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc).timestamp()), 800.0, 805.0, 795.0, 801.0, 200.0, 4)
    ]
    assert candles_of("NSE:NIFTY50-INDEX", "1m") == [(OPEN + 60, 24000.5, 24000.5, 24000.5, 24000.5, 0.0, 1)]
    sbin = Symbol.objects.get(ticker="NSE:SBIN-EQ")
    nifty = Symbol.objects.get(ticker="NSE:NIFTY50-INDEX")
    assert (sbin.exchange, sbin.kind, sbin.source) == ("NSE", "equity", "replay")
    assert (nifty.exchange, nifty.kind) == ("NSE", "index")
    summary = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()][-1]
    for part in ("accepted=5", "bad_json=1", "bad_price=1", "no_time=1", "malformed=1", "repeat=1",
                 "late=1", "out_of_session=1", "not_ticks=2"):
        assert part in summary, (part, summary)


@pytest.mark.django_db(transaction=True)
def test_replay_matches_the_engine_and_serves_the_api(tmp_path, client):
    messages = list(fyers_session(symbols=5, messages=3000, seed=3))
    path = write_lines(tmp_path / "s.jsonl", messages)
    call_command("runfeed", source="replay", file=str(path), speed=0, no_migrate=True)

    plan = TimeframePlan.build(["5s", "1m", "5m", "15m", "1h", "1d"])
    engine = CandleEngine(plan.stored, SessionBook.from_config(DEFAULT_SESSIONS))
    expected: dict = {}
    for msg in messages:
        tick = fyers_messages.parse(msg)
        if isinstance(tick, Tick):
            engine.register(tick.symbol, "NSE")
            engine.add(tick)
    for u in engine.collect():
        expected[(u.symbol, u.timeframe, u.candle.time)] = u.candle
    stored = {
        (ticker, tf, t): (o, h, l, c, v, n)
        for ticker, tf, t, o, h, l, c, v, n in Candle.objects.values_list(
            "symbol__ticker", "timeframe", "time", "open", "high", "low", "close", "volume", "ticks")
    }
    assert len(stored) == len(expected) > 100
    for key, c in expected.items():
        assert stored[key] == (c.open, c.high, c.low, c.close, c.volume, c.ticks), key

    ticker = messages[5]["symbol"]
    body = client.get("/api/candles", {"symbol": ticker, "tf": "1m", "limit": 10000}).json()
    api = [(c["time"], c["close"], c["volume"]) for c in body["candles"]]
    assert api == [(k[2], v.close, v.volume) for k, v in sorted(expected.items()) if k[:2] == (ticker, "1m")]


@pytest.mark.django_db(transaction=True)
def test_replaying_the_same_file_twice_changes_nothing(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", list(fyers_session(symbols=3, messages=1500, seed=5)))
    call_command("runfeed", source="replay", file=str(path), speed=0, no_migrate=True)
    first = sorted(Candle.objects.values_list("symbol__ticker", "timeframe", "time", "open", "high",
                                              "low", "close", "volume", "ticks"))
    call_command("runfeed", source="replay", file=str(path), speed=0, no_migrate=True)
    second = sorted(Candle.objects.values_list("symbol__ticker", "timeframe", "time", "open", "high",
                                               "low", "close", "volume", "ticks"))
    assert second == first


@pytest.mark.django_db(transaction=True)
def test_missing_replay_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="replay file not found"):
        call_command("runfeed", source="replay", file=str(tmp_path / "nope.jsonl"), no_migrate=True)
    with pytest.raises(CommandError, match="needs --file"):
        call_command("runfeed", source="replay", no_migrate=True)


@pytest.mark.django_db(transaction=True)
def test_replay_at_speed_one_paces_by_exchange_time(tmp_path):
    lines = [sf("NSE:SBIN-EQ", OPEN + i, 800.0 + i, 1000 + i) for i in range(3)]
    path = write_lines(tmp_path / "s.jsonl", lines)
    import time

    started = time.monotonic()
    call_command("runfeed", source="replay", file=str(path), speed=1, no_migrate=True)
    assert time.monotonic() - started >= 1.9  # three ticks one exchange second apart
    assert candles_of("NSE:SBIN-EQ", "5s")[0][1:5] == (800.0, 802.0, 800.0, 802.0)
