"""``GET /api/candles?…&studies=``: one row per returned candle, equal to the whole stored
series' values however far the page is from the first candle (issue 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from market import services
from market.core import studies as st
from market.core.derive import aggregate
from market.core.types import Candle, CandleUpdate
from tests.core.helpers import NSE, RTC, TF
from tests.core.test_studies import assert_rows_equal, nse_minutes, random_walk

EVERY = "sma,ema:50,wma,bb,rsi,atr,macd,stoch"
MORE = "obv,vwap,supertrend,ema:9"


def store(symbol, candles, session):
    """1m candles and the other stored timeframes (default plan) consistent with them."""
    updates = [CandleUpdate(symbol.ticker, "1m", c, True) for c in candles]
    for code in ("5m", "15m", "1h", "1d"):
        updates += [CandleUpdate(symbol.ticker, code, c, True) for c in aggregate(candles, TF(code), session)]
    services.candle_upsert_many(updates=updates, symbol_ids={symbol.ticker: symbol.pk})


@pytest.fixture
def demo(make_symbol):
    symbol = make_symbol("DEMO:ALPHA", "DEMO")
    candles = random_walk(4000, seed=21, step=60)
    store(symbol, candles, RTC)
    return symbol, candles


@pytest.fixture
def nse(make_symbol):
    symbol = make_symbol("NSE:SBIN-EQ", "NSE")
    candles = nse_minutes(8, seed=22)
    store(symbol, candles, NSE)
    return symbol, candles


def whole(keys, candles, session, tf):
    """The studies over the whole series from its first candle (tests/core/test_studies.py
    pins this against TA-Lib's batch functions and the Pine scripts)."""
    return st.compute(st.parse_studies(keys), candles, tf=tf, session=session)


def get(client, **params):
    response = client.get("/api/candles", params)
    return response.status_code, response.json()


@pytest.mark.django_db
def test_studies_come_one_row_per_candle_in_order_with_normalised_keys(client, demo):
    _, candles = demo
    status, body = get(client, symbol="DEMO:ALPHA", tf="1m", limit=300, studies="ema,macd,bb,stoch,supertrend")
    assert status == 200
    times = [c["time"] for c in body["candles"]]
    assert times == [c.time for c in candles[-300:]]
    assert list(body["studies"]) == ["ema:20", "macd:12:26:9", "bb:20:2", "stoch:14:3:3", "supertrend:10:3"]
    for key, rows in body["studies"].items():
        assert [r["time"] for r in rows] == times, key
    assert set(body["studies"]["macd:12:26:9"][0]) == {"time", "macd", "signal", "hist"}
    assert set(body["studies"]["bb:20:2"][0]) == {"time", "upper", "middle", "lower"}
    assert set(body["studies"]["stoch:14:3:3"][0]) == {"time", "k", "d"}
    assert set(body["studies"]["supertrend:10:3"][0]) == {"time", "value", "direction"}
    assert set(body["studies"]["ema:20"][0]) == {"time", "value"}
    ema = talib.EMA(np.array([c.close for c in candles]), 20)[-300:]
    assert [r["value"] for r in body["studies"]["ema:20"]] == pytest.approx(ema.tolist(), rel=1e-6)


@pytest.mark.django_db
def test_without_studies_there_is_no_studies_key(client, demo):
    _, body = get(client, symbol="DEMO:ALPHA", tf="1m", limit=3)
    assert "studies" not in body
    _, body = get(client, symbol="DEMO:ALPHA", tf="1m", limit=3, studies="")
    assert body["studies"] == {}


@pytest.mark.django_db
@pytest.mark.parametrize("keys", [EVERY, MORE])
@pytest.mark.parametrize("window", [dict(limit=150, to_index=3000), dict(limit=200, from_index=30),
                                    dict(limit=120, from_index=2500), dict(limit=1000, to_index=3999)])
def test_a_page_far_from_the_first_candle_equals_the_whole_series(client, demo, keys, window):
    _, candles = demo
    params = dict(symbol="DEMO:ALPHA", tf="1m", limit=window["limit"], studies=keys)
    if "to_index" in window:
        last = window["to_index"]
        params["to"] = candles[last].time
        first = last + 1 - window["limit"]
    else:
        first = window["from_index"]
        params["from"] = candles[first].time
    status, body = get(client, **params)
    assert status == 200
    assert [c["time"] for c in body["candles"]] == [c.time for c in candles[first:first + window["limit"]]]
    for key, rows in whole(keys, candles, RTC, TF("1m")).items():
        assert_rows_equal(body["studies"][key], rows[first:first + window["limit"]], key)


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["3m", "30m", "2h"])
def test_derived_timeframes_compute_on_the_derived_candles(client, demo, code):
    _, candles = demo
    tf = TF(code)
    derived = list(aggregate(candles, tf, RTC))
    keys = "ema,rsi,macd,bb,obv,vwap,supertrend,stoch"
    status, body = get(client, symbol="DEMO:ALPHA", tf=code, limit=40, studies=keys)
    assert status == 200
    assert [c["time"] for c in body["candles"]] == [c.time for c in derived[-40:]]
    for key, rows in whole(keys, derived, RTC, tf).items():
        assert_rows_equal(body["studies"][key], rows[-40:], key)


@pytest.mark.django_db
def test_nse_vwap_restarts_at_09_15_and_a_mid_session_page_matches(client, nse):
    _, candles = nse
    keys = "vwap,obv,ema,supertrend"
    reference = whole(keys, candles, NSE, TF("1m"))
    for last in (len(candles) - 1, len(candles) - 200, 1000):
        status, body = get(client, symbol="NSE:SBIN-EQ", tf="1m", limit=50, to=candles[last].time, studies=keys)
        assert status == 200
        for key, rows in reference.items():
            assert_rows_equal(body["studies"][key], rows[last - 49:last + 1], key)
    _, body = get(client, symbol="NSE:SBIN-EQ", tf="30m", limit=30, studies="vwap")
    derived = list(aggregate(candles, TF("30m"), NSE))
    assert_rows_equal(body["studies"]["vwap"], whole("vwap", derived, NSE, TF("30m"))["vwap"][-30:], "vwap 30m")
    opens = [r for r in body["studies"]["vwap"] if NSE.day_of(r["time"]).open == r["time"]]
    assert opens  # each session's first bar: its own typical price
    for row in opens:
        c = next(c for c in derived if c.time == row["time"])
        assert row["value"] == pytest.approx((c.high + c.low + c.close) / 3)


@pytest.mark.django_db
def test_index_symbols_get_null_vwap_and_obv(client, make_symbol):
    symbol = make_symbol("NSE:NIFTY50-INDEX", "NSE", kind="index")
    candles = [Candle(c.time, c.open, c.high, c.low, c.close, 0.0, c.ticks) for c in nse_minutes(2, seed=23)]
    store(symbol, candles, NSE)
    _, body = get(client, symbol="NSE:NIFTY50-INDEX", tf="1m", limit=100, studies="vwap,obv,rsi")
    assert all(r["value"] is None for r in body["studies"]["vwap"] + body["studies"]["obv"])
    assert all(not math.isnan(r["value"]) for r in body["studies"]["rsi:14"])


@pytest.mark.django_db
@pytest.mark.parametrize("studies, names", [
    ("foo", "foo"), ("ema:abc", "ema:abc"), ("ema:1", "ema:1"), ("macd:26:12", "macd:26:12"),
    ("bb:20:0", "bb:20:0"), ("ema,,rsi", "empty"), (",".join(f"sma:{n}" for n in range(2, 11)), "at most 8"),
    ("rsi:14:2", "rsi:14:2"),
])
def test_a_bad_study_is_a_400_naming_it(client, demo, studies, names):
    status, body = get(client, symbol="DEMO:ALPHA", tf="1m", studies=studies)
    assert status == 400 and names in body["error"]


@pytest.mark.django_db
def test_studies_given_twice_is_a_400(client, demo):
    response = client.get("/api/candles?symbol=DEMO:ALPHA&tf=1m&studies=ema&studies=rsi")
    assert response.status_code == 400 and "studies" in response.json()["error"]


@pytest.mark.django_db
def test_an_empty_page_has_empty_studies(client, demo):
    _, body = get(client, symbol="DEMO:ALPHA", tf="1m", to=1000, studies="ema,obv")
    assert body["candles"] == [] and body["studies"] == {"ema:20": [], "obv": []}


@pytest.mark.django_db
def test_a_revised_candle_revises_the_values_after_it(client, demo):
    symbol, candles = demo
    keys = "ema,obv,supertrend"
    _, before = get(client, symbol="DEMO:ALPHA", tf="1m", limit=100, studies=keys)
    revised = list(candles)
    c = revised[3850]  # inside the page's warm-up, before the page: gap repair found more volume
    revised[3850] = Candle(c.time, c.open, c.high * 1.01, c.low, c.close * 1.005, c.volume + 5000, c.ticks + 9)
    services.candle_upsert_many(updates=[CandleUpdate(symbol.ticker, "1m", revised[3850], True)],
                                symbol_ids={symbol.ticker: symbol.pk})
    _, after = get(client, symbol="DEMO:ALPHA", tf="1m", limit=100, studies=keys)
    assert after["studies"]["obv"] != before["studies"]["obv"]
    for key, rows in whole(keys, revised, RTC, TF("1m")).items():
        assert_rows_equal(after["studies"][key], rows[-100:], key)
