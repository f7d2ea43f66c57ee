"""Gap repair end to end: live ticks, a drop, history answering for the gap; the database
and a subscribed browser both end with the complete series, in order."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from channels.testing import WebsocketCommunicator
from channels.layers import get_channel_layer
from django.test import override_settings

from market.live.broadcast import group_name

from market.feed.runner import run_feed
from tests.vendors.fyers.live import TOKENS, Market, candles, db, eventually, make_symbols
from tickchart.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


async def test_a_dropped_connection_is_repaired_from_history_for_db_and_browser(http, ws, fyers_settings, token,
                                                                               caplog):
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ")
    broker = Market(ws)
    now = int(time.time())
    t0 = now - now % 60 - 120
    official = {t0 + 5: [t0 + 5, 101.0, 109.0, 100.0, 101.5, 40],   # differs from ours: the engine's, skipped
                t0 + 10: [t0 + 10, 102.0, 104.0, 101.5, 103.0, 30],
                t0 + 15: [t0 + 15, 103.0, 103.5, 102.0, 102.5, 20],
                t0 + 20: [t0 + 20, 102.5, 106.0, 102.5, 105.0, 25]}
    dropped = False

    def history(q):
        if not dropped or q["resolution"] != "5S":
            return 200, {"s": "no_data", "candles": []}
        time.sleep(1.0)  # a slow answer: the snapshot Fyers re-sends on subscribe is held meanwhile
        a, b = int(q["range_from"]), int(q["range_to"])
        return 200, {"s": "ok", "candles": [bar for t, bar in sorted(official.items()) if a <= t <= b]}

    http.history = history
    with override_settings(FYERS={**fyers_settings, "WS_URL": ws.url}):
        browser = WebsocketCommunicator(application, "/ws/market/", headers=HEADERS)
        assert (await browser.connect())[0]
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)
        await browser.send_json_to({"type": "subscribe", "symbol": "NSE:SBIN-EQ", "tf": "5s"})
        await asyncio.sleep(0.5)  # start-up catch-up done (no history before the drop)
        broker.trade("NSE:SBIN-EQ", 100.0, 10, t0 + 1)
        broker.trade("NSE:SBIN-EQ", 101.0, 10, t0 + 6)
        await eventually(lambda: len(candles("NSE:SBIN-EQ", "5s")) == 3, 5)  # snapshot + 2

        # while disconnected the market trades on; the snapshot after re-subscribing is the last trade
        broker.snapshot_time["NSE:SBIN-EQ"] = t0 + 66
        broker.snapshot_price["NSE:SBIN-EQ"] = 105.5
        broker.volume["NSE:SBIN-EQ"] += 130
        dropped = True
        ws.drop()
        await eventually(lambda: len(ws.subscribed) == 2, 15)
        await eventually(lambda: len(candles("NSE:SBIN-EQ", "5s")) == 7, 10)

        frames = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(f["candle"]["time"] == t0 + 65 for f in frames):
            msg = await browser.receive_json_from(timeout=5)
            if msg["type"] == "candle":
                frames.append(msg)
        # the held bucket's correction is its own write after the held ticks': a loaded
        # machine may not have made it yet when the t0 + 65 frame arrives
        await eventually(lambda: {c[0]: c for c in candles("NSE:SBIN-EQ", "5s")}.get(t0 + 5, ())[1:]
                         == (101.0, 109.0, 100.0, 101.5, 40.0), 10)
        stop.set()
        await asyncio.wait_for(task, 30)
        await browser.disconnect()

    stored = await db(candles, "NSE:SBIN-EQ", "5s")
    assert [c[0] for c in stored[1:]] == [t0, t0 + 5, t0 + 10, t0 + 15, t0 + 20, t0 + 65]
    by_time = {c[0]: c for c in stored}
    for t in (t0 + 10, t0 + 15, t0 + 20):
        assert by_time[t][1:] == tuple(float(x) for x in official[t][1:])
    # the bucket the engine held open during the repair is corrected after the held ticks went in
    assert by_time[t0 + 5][1:] == (101.0, 109.0, 100.0, 101.5, 40.0)
    assert by_time[t0 + 65][1:5] == (105.5, 105.5, 105.5, 105.5)
    # the browser got the repaired candles, and before the newer live one (so none were dropped as stale)
    seen = [f["candle"]["time"] for f in frames]
    for t in (t0 + 10, t0 + 15, t0 + 20):
        assert t in seen and seen.index(t) < seen.index(t0 + 65)
    last = {f["candle"]["time"]: f["candle"] for f in frames}
    assert last[t0 + 20]["high"] == 106.0 and last[t0 + 20]["volume"] == 25
    # larger timeframes are rebuilt from the repaired 5 s candles once closed
    # the log counts the history requests each job made (the start-up back-fill's no_data too)
    assert re.search(r"backfill NSE:SBIN-EQ: 0 candles written from [1-9]\d* history requests", caplog.text)
    assert re.search(r"repair NSE:SBIN-EQ: \d+ candles written from [1-9]\d* history requests", caplog.text)
    minute = {c[0]: c for c in await db(candles, "NSE:SBIN-EQ", "1m")}
    assert minute[t0][1:] == (100.0, 109.0, 100.0, 105.0, 10.0 + 40 + 30 + 20 + 25)
    assert minute[t0 + 60][1:5] == (105.5, 105.5, 105.5, 105.5)


async def test_reconciliation_corrects_a_closed_candle_and_publishes_it(http, ws, fyers_settings, token):
    """The correction is published to the candle's group. (Today's consumer drops an update
    older than what a browser already has, so open charts see it after a reload.)"""
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ")
    broker = Market(ws)
    now = int(time.time())
    t0 = now - now % 60 - 120
    reconciling = False

    def history(q):
        if reconciling and q["resolution"] == "5S":
            a, b = int(q["range_from"]), int(q["range_to"])
            official = [[t0, 100.0, 100.9, 99.2, 100.5, 20]]  # a high and a low our snapshots missed
            return 200, {"s": "ok", "candles": [bar for bar in official if a <= bar[0] <= b]}
        return 200, {"s": "no_data", "candles": []}

    http.history = history
    with override_settings(FYERS={**fyers_settings, "WS_URL": ws.url, "RECONCILE_SECONDS": 1.0}):
        layer = get_channel_layer()
        listener = await layer.new_channel()
        await layer.group_add(group_name("NSE:SBIN-EQ", "5s"), listener)
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)
        await asyncio.sleep(0.5)
        broker.trade("NSE:SBIN-EQ", 100.0, 10, t0 + 1)
        broker.trade("NSE:SBIN-EQ", 100.5, 10, t0 + 3)
        broker.trade("NSE:SBIN-EQ", 100.2, 5, t0 + 7)  # closes bucket t0
        await eventually(lambda: len(candles("NSE:SBIN-EQ", "5s")) == 3, 5)
        reconciling = True
        await eventually(lambda: candles("NSE:SBIN-EQ", "5s")[1][2] == 100.9, 10)
        frame = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and frame is None:
            msg = await asyncio.wait_for(layer.receive(listener), 5)
            if msg["candle"]["time"] == t0 and msg["candle"]["high"] == 100.9:
                frame = msg
        stop.set()
        await asyncio.wait_for(task, 30)
    assert (await db(candles, "NSE:SBIN-EQ", "5s"))[1] == (t0, 100.0, 100.9, 99.2, 100.5, 20.0)
    assert frame is not None and frame["final"] is True and frame["candle"]["ticks"] == 2  # our tick count kept


async def test_a_gap_is_filled_from_1m_history_when_5s_is_refused(http, ws, fyers_settings, token, caplog):
    """The loopback history server refuses 5S (as an account without seconds history would):
    the repair falls back to 1m bars, rebuilds the larger timeframes from them, says which
    resolution filled the gap, and stops asking 5S for that symbol."""
    http.tokens.update(TOKENS)
    await db(make_symbols, "NSE:SBIN-EQ")
    broker = Market(ws)
    now = int(time.time())
    boundary = now - now % 300  # the gap's 5m bar closes with the first tick after the drop
    t0 = boundary - 180
    official = {t0: [t0, 100.0, 108.0, 99.0, 104.0, 90], t0 + 60: [t0 + 60, 104.0, 106.0, 103.0, 105.0, 60]}
    dropped = False

    def history(q):
        if q["resolution"] == "5S":
            return 200, {"s": "error", "code": -50, "message": "Invalid resolution"}
        if not dropped or q["resolution"] != "1":
            return 200, {"s": "no_data", "candles": []}
        time.sleep(1.0)  # a slow answer: the snapshot Fyers re-sends on subscribe is held meanwhile
        a, b = int(q["range_from"]), int(q["range_to"])
        return 200, {"s": "ok", "candles": [bar for t, bar in sorted(official.items()) if a <= t <= b]}

    http.history = history
    with override_settings(FYERS={**fyers_settings, "WS_URL": ws.url}):
        stop = asyncio.Event()
        task = asyncio.create_task(run_feed("fyers", stop, standby=True))
        await eventually(lambda: len(ws.subscribed) == 1, 40)
        await asyncio.sleep(0.5)  # start-up catch-up: 5S refused, 1m empty
        broker.trade("NSE:SBIN-EQ", 100.0, 10, t0 + 1)
        broker.trade("NSE:SBIN-EQ", 101.0, 10, t0 + 6)
        await eventually(lambda: len(candles("NSE:SBIN-EQ", "5s")) == 3, 5)  # snapshot + 2

        broker.snapshot_time["NSE:SBIN-EQ"] = boundary + 5
        broker.snapshot_price["NSE:SBIN-EQ"] = 105.5
        broker.volume["NSE:SBIN-EQ"] += 150
        dropped = True
        ws.drop()
        await eventually(lambda: len(ws.subscribed) == 2, 15)
        await eventually(lambda: {c[0] for c in candles("NSE:SBIN-EQ", "1m")} >= {t0, t0 + 60, boundary}
                         and candles("NSE:SBIN-EQ", "1m")[1][2] == 108.0, 10)
        stop.set()
        await asyncio.wait_for(task, 30)

    minute = {c[0]: c for c in await db(candles, "NSE:SBIN-EQ", "1m")}
    assert minute[t0][1:] == (100.0, 108.0, 99.0, 104.0, 90.0)       # the broker's whole minute
    assert minute[t0 + 60][1:] == (104.0, 106.0, 103.0, 105.0, 60.0)  # a minute we had no tick of
    assert minute[boundary][1:5] == (105.5, 105.5, 105.5, 105.5)     # live again
    # the 5 s candles are still only where ticks were (1m bars are not split up)
    assert [c[0] for c in (await db(candles, "NSE:SBIN-EQ", "5s"))[1:]] == [t0, t0 + 5, boundary + 5]
    five = {c[0]: c for c in await db(candles, "NSE:SBIN-EQ", "5m")}  # rebuilt from the 1m bars
    assert five[boundary - 300][1:] == (100.0, 108.0, 99.0, 105.0, 150.0)
    requests = [q["resolution"] for m, p, q, h in http.requests if p == "/data/history"]
    assert requests.count("5S") == 1  # refused once at start-up; the repair went straight to 1m
    assert "1" in requests
    assert re.search(r"repair NSE:SBIN-EQ: [1-9]\d* candles written from [1-9]\d* history requests \(1m: 5S refused\)",
                     caplog.text)
    assert "5S history refused for NSE:SBIN-EQ" in caplog.text
