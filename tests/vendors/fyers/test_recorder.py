"""``runfeed --record``: raw messages to gzip JSON Lines per trading day; a recorded day
replayed into an empty database rebuilds the same candles."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import time

import pytest
from django.test import override_settings

from market.models import Candle, Symbol
from market.vendors.fyers.recorder import Recorder
from market.feed.runner import run_feed
from tests.vendors.fyers.live import TOKENS, Market, db, eventually, make_symbols


def test_one_file_per_trading_day_by_exchange_time_and_appends_across_restarts(tmp_path):
    ist_midnight = int(dt.datetime(2026, 11, 20, 18, 30, tzinfo=dt.timezone.utc).timestamp())  # 00:00 IST 21 Nov
    rec = Recorder(tmp_path, clock=lambda: ist_midnight + 10)
    rec.write({"type": "sf", "symbol": "NSE:A-EQ", "ltp": 1.5, "exch_feed_time": ist_midnight - 1})
    rec.write({"type": "sf", "symbol": "NSE:A-EQ", "ltp": 1.6, "exch_feed_time": ist_midnight})
    rec.write({"type": "cn", "code": 200})  # no exchange time: the wall clock's day
    rec.close()
    rec = Recorder(tmp_path, clock=lambda: ist_midnight + 20)  # a restart appends a gzip member
    rec.write({"type": "sf", "symbol": "NSE:A-EQ", "ltp": 1.7, "exch_feed_time": ist_midnight + 5})
    rec.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["fyers-2026-11-20.jsonl.gz", "fyers-2026-11-21.jsonl.gz"]
    day2 = [json.loads(line) for line in gzip.open(tmp_path / files[1], "rt")]
    assert [m.get("ltp") for m in day2] == [1.6, None, 1.7]
    assert rec.written == 1 and rec.failures == 0


def test_a_disk_error_is_counted_not_raised(tmp_path):
    rec = Recorder(tmp_path)
    (tmp_path / "fyers-2026-11-20.jsonl.gz").mkdir()  # a directory where the file should be
    rec.write({"type": "sf", "exch_feed_time": int(dt.datetime(2026, 11, 20, 6, tzinfo=dt.timezone.utc).timestamp())})
    assert rec.failures == 1


def snapshot_candles() -> dict:
    return {(c.symbol.ticker, c.timeframe, c.time): (c.open, c.high, c.low, c.close, c.volume, c.ticks)
            for c in Candle.objects.select_related("symbol")}


@pytest.mark.django_db(transaction=True)
async def test_a_recorded_live_session_replays_into_the_same_candles(http, ws, fyers_settings, token, tmp_path):
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ", "NSE:TCS-EQ")
    broker = Market(ws)
    now = int(time.time())
    t0 = now - now % 60 - 180
    with override_settings(FYERS={**fyers_settings, "WS_URL": ws.url}):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True, record=str(tmp_path / "rec")))
        await eventually(lambda: len(ws.subscribed) == 1, 40)
        await asyncio.sleep(0.5)
        for i in range(60):  # two symbols, repeats included (a bid-only change re-sends the state)
            ticker = ("NSE:SBIN-EQ", "NSE:TCS-EQ")[i % 2]
            broker.trade(ticker, 100 + (i * 7 % 11) * 0.05, 0 if i % 5 == 4 else 3 + i % 4, t0 + i * 2)
        await eventually(lambda: Candle.objects.filter(symbol__ticker="NSE:TCS-EQ", timeframe="5s",
                                                       time__gte=t0 + 110).exists(), 10)
        stop.set()
        await asyncio.wait_for(task, 30)
    live = await db(snapshot_candles)
    files = sorted((tmp_path / "rec").iterdir())
    # One file a day (IST): a run across midnight IST leaves two, read in order.
    assert 1 <= len(files) <= 2 and all(f.name.startswith("fyers-") and f.name.endswith(".jsonl.gz") for f in files)
    recorded = files[0]
    if len(files) == 2:
        recorded = tmp_path / "both.jsonl.gz"
        recorded.write_bytes(files[0].read_bytes() + files[1].read_bytes())  # two gzip members: one stream

    await db(lambda: (Candle.objects.all().delete(), Symbol.objects.all().delete()))
    await run_feed("replay", asyncio.Event(), standby=True, file=str(recorded))  # what `runfeed --source replay` runs
    replayed = await db(snapshot_candles)
    assert replayed == live and len(live) > 20
