"""The Finnhub frame parser: trades to ticks (ms -> s, per-trade size), controls, counted rejects."""

from __future__ import annotations

import pytest

from market.vendors.finnhub import messages as fm
from market.core.types import Tick


def test_trade_batch_becomes_ticks_with_seconds_and_per_trade_size():
    frame = '{"type":"trade","data":[{"s":"AAPL","p":190.25,"t":1732287600123,"v":100,"c":["1","12"]},' \
            '{"s":"BINANCE:BTCUSDT","p":90000,"t":1732287600999,"v":0.015,"c":null}]}'
    out = fm.parse(frame)
    assert out.ticks == [Tick("AAPL", 1732287600.123, 190.25, size=100.0),
                         Tick("BINANCE:BTCUSDT", 1732287600.999, 90000.0, size=0.015)]
    assert out.rejects == {} and out.controls == []


def test_missing_volume_is_zero_not_none_so_prints_are_never_treated_as_repeats():
    out = fm.parse({"type": "trade", "data": [{"s": "OANDA:EUR_USD", "p": 1.05, "t": 1732287600000}]})
    assert out.ticks[0].size == 0.0 and out.ticks[0].day_volume is None


@pytest.mark.parametrize("entry, reason", [
    ({"p": 1.0, "t": 1, "v": 1}, "no_symbol"),
    ({"s": "", "p": 1.0, "t": 1, "v": 1}, "no_symbol"),
    ({"s": "A", "p": 0, "t": 1, "v": 1}, "bad_price"),
    ({"s": "A", "p": "1.0", "t": 1, "v": 1}, "bad_price"),
    ({"s": "A", "p": float("nan"), "t": 1, "v": 1}, "bad_price"),
    ({"s": "A", "p": True, "t": 1, "v": 1}, "bad_price"),
    ({"s": "A", "p": 1.0, "v": 1}, "no_time"),
    ({"s": "A", "p": 1.0, "t": -5, "v": 1}, "no_time"),
    ({"s": "A", "p": 1.0, "t": 1, "v": -1}, "bad_volume"),
    ({"s": "A", "p": 1.0, "t": 1, "v": "lots"}, "bad_volume"),
    ("not a dict", "malformed"),
])
def test_bad_entries_are_counted_by_reason_and_do_not_spoil_the_frame(entry, reason):
    good = {"s": "AAPL", "p": 1.0, "t": 1732287600000, "v": 1}
    out = fm.parse({"type": "trade", "data": [entry, good]})
    assert out.rejects == {reason: 1}
    assert [t.symbol for t in out.ticks] == ["AAPL"]


def test_excluded_conditions_drop_only_those_prints():
    data = [{"s": "AAPL", "p": 1.0, "t": 1732287600000, "v": 5, "c": ["1", "7"]},
            {"s": "AAPL", "p": 2.0, "t": 1732287600001, "v": 5, "c": ["1"]},
            {"s": "AAPL", "p": 3.0, "t": 1732287600002, "v": 5, "c": None}]
    out = fm.parse({"type": "trade", "data": data}, excluded_conditions=["7"])
    assert [t.price for t in out.ticks] == [2.0, 3.0]
    assert out.rejects == {"excluded_condition": 1}
    assert len(fm.parse({"type": "trade", "data": data}).ticks) == 3  # default: none excluded


def test_control_frames_and_garbage():
    assert fm.parse('{"type":"ping"}').controls == [fm.Control("ping")]
    assert fm.parse('{"type":"error","msg":"Invalid API key"}').controls == [fm.Control("error", "Invalid API key")]
    assert fm.parse('{"type":"news","data":[]}').controls == [fm.Control("other", "news")]
    assert fm.parse("{oops").rejects == {"bad_json": 1}
    assert fm.parse("[1,2]").rejects == {"malformed": 1}
    assert fm.parse('{"type":"trade","data":5}').rejects == {"malformed": 1}
    assert fm.parse('{"data":[]}').rejects == {"unknown_type": 1}


def test_subscribe_frames_are_finnhubs_shape():
    assert fm.subscribe_frame("AAPL") == '{"type":"subscribe","symbol":"AAPL"}'
    assert fm.unsubscribe_frame("OANDA:EUR_USD") == '{"type":"unsubscribe","symbol":"OANDA:EUR_USD"}'


@pytest.mark.parametrize("symbol, expected", [
    ("AAPL", ("US", "equity")),
    ("BRK.B", ("US", "equity")),
    ("OANDA:EUR_USD", ("OANDA", "currency")),
    ("BINANCE:BTCUSDT", ("BINANCE", "crypto")),
    ("binance:ethusdt", ("BINANCE", "crypto")),
    ("WEIRD:THING", ("WEIRD", "other")),
])
def test_classify_gives_exchange_and_asset_class(symbol, expected):
    assert fm.classify(symbol) == expected
