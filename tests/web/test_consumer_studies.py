"""Studies on /ws/market/ (issue 11): snapshot rows equal GET /api/candles?studies=, live
candle frames carry each study's value equal to the batch functions over the whole stored
series, and a bad study is an error frame with code bad_study on an open socket."""

from __future__ import annotations

import dataclasses
import math

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import Client

from market import services
from market.live.broadcast import candles_publish
from market.core import studies as st
from market.core.studies_live import REGISTRY
from market.core.types import Candle, CandleUpdate
from tests.core.helpers import RTC, TF
from tests.core.test_studies import random_walk
from tests.web.test_api_studies import store
from tests.web.test_consumers import assert_alive, publish, subscribe, ws
from tests.web.test_consumers import recv as recv_any

pytestmark = pytest.mark.django_db(transaction=True)

TICKER = "DEMO:ALPHA"
KEYS = ["ema:20", "rsi:14", "macd", "bb", "stoch", "obv", "vwap", "supertrend"]


@pytest.fixture
def demo(make_symbol):
    symbol = make_symbol(TICKER, "DEMO")
    candles = random_walk(400, seed=31, step=60)
    store(symbol, candles, RTC)
    return symbol, candles


async def recv(comm):
    """The next frame that is not flow control (sync frames are acked)."""
    while True:
        frame = await recv_any(comm)
        if frame["type"] == "sync":
            await comm.send_json_to({"type": "ack", "seq": frame["seq"]})
            continue
        if frame["type"] not in ("behind", "caught_up"):
            return frame


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def assert_live(frame, series, tf="1m"):
    studies = st.parse_studies(KEYS)
    want = st.compute(studies, series, tf=TF(tf), session=RTC)
    assert list(frame["studies"]) == [s.key for s in studies]
    for s in studies:
        row, got = want[s.key][-1], frame["studies"][s.key]
        if len(s.fields) == 1:
            assert close(got, row["value"]), (s.key, got, row)
        else:
            assert set(got) == set(s.fields)
            for f in s.fields:
                assert close(got[f], row[f]), (s.key, f, got, row)


async def test_snapshot_studies_equal_the_rest_api(demo, settings):
    async with ws() as comm:
        snap = await subscribe(comm, "1m", TICKER, studies=KEYS)
    n = len(snap["candles"])
    body = await sync_to_async(lambda: Client().get(
        "/api/candles", {"symbol": TICKER, "tf": "1m", "limit": n, "studies": ",".join(KEYS)}).json())()
    assert [c["time"] for c in body["candles"]] == [c["time"] for c in snap["candles"]]
    assert snap["studies"] == body["studies"]
    assert len(REGISTRY) == 0  # released with the socket


async def test_live_candle_frames_carry_the_whole_series_values(demo):
    symbol, candles = demo
    series = list(candles)
    async with ws() as comm:
        await subscribe(comm, "1m", TICKER, studies=KEYS)
        last = series[-1]
        for k in range(3):  # forming updates of a new candle, then the next one
            nxt = Candle(last.time + 60, last.close, last.close + 0.1 * (k + 1), last.close - 0.1,
                         last.close + 0.05 * k, 10.0 * (k + 1), k + 1)
            series = [*candles, nxt]
            await sync_to_async(services.candle_upsert_many)(
                updates=[CandleUpdate(TICKER, "1m", nxt, False)], symbol_ids={TICKER: symbol.pk})
            await publish(CandleUpdate(TICKER, "1m", nxt, False))
            frame = await recv(comm)
            assert frame["type"] == "candle" and frame["candle"]["time"] == nxt.time
            assert_live(frame, series)
        newer = Candle(nxt.time + 60, nxt.close, nxt.close + 1, nxt.close - 1, nxt.close + 0.5, 5.0, 1)
        series = [*series, newer]
        await publish(CandleUpdate(TICKER, "1m", newer, False))
        frame = await recv(comm)
        assert_live(frame, series)
        # a revised older candle: a resync snapshot from it revises the values after it
        old = dataclasses.replace(series[-2], close=series[-2].close + 2, high=series[-2].high + 2)
        series[-2] = old
        await candles_publish(get_channel_layer(), [CandleUpdate(TICKER, "1m", old, True)], revised=True)
        frame = await recv(comm)
        assert frame["type"] == "snapshot" and frame["resync"] and frame["since"] == old.time
        want = st.compute(st.parse_studies(KEYS), series, tf=TF("1m"), session=RTC, skip=len(series) - 2)
        for key, rows in frame["studies"].items():
            assert len(rows) == 2
            for got, row in zip(rows, want[key]):
                assert all(close(got[f], row[f]) for f in row if f != "time"), key


async def test_derived_timeframe_live_studies(demo):
    _, candles = demo
    async with ws() as comm:
        snap = await subscribe(comm, "2m", TICKER, studies=["ema:9", "obv"])
        assert set(snap["studies"]) == {"ema:9", "obv"}
        last = candles[-1]
        nxt = Candle(last.time + 60, last.close, last.close + 1, last.close - 1, last.close + 0.3, 7.0, 1)
        await publish(CandleUpdate(TICKER, "1m", nxt, False))
        frame = await recv(comm)
        assert frame["type"] == "candle" and "studies" in frame
        assert set(frame["studies"]) == {"ema:9", "obv"}


async def test_bad_study_is_an_error_frame_and_the_socket_stays_open(demo):
    async with ws() as comm:
        await subscribe(comm, "1m", TICKER)
        for bad, name in ((["ema:x"], "ema:x"), (["nope"], "nope"), (["ema"] * 9, "8")):
            await comm.send_json_to({"type": "subscribe", "symbol": TICKER, "tf": "5m", "studies": bad})
            err = await recv(comm)
            assert err["type"] == "error" and err["code"] == "bad_study" and name in err["message"], err
        await assert_alive(comm)
        snap = await subscribe(comm, "5m", TICKER, studies=["rsi"])
        assert "rsi:14" in snap["studies"]
        last = CandleUpdate(TICKER, "1m", dataclasses.replace(demo[1][-1], close=demo[1][-1].close + 0.01), False)
        await publish(last)
        frame = await recv(comm)
        assert frame["type"] == "candle" and "studies" not in frame  # the 1m stream has none
