"""Fyers data-socket messages -> Tick, from hand-written dicts and from the real SDK decoder."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.core.engine import CandleEngine
from market.vendors.fyers.messages import _parse_checked, exchange_of, kind_of, parse
from market.core.timeframes import BASE
from market.core.types import Reject, Tick

from tests.vendors.fyers import frames as ff
from tests.core.helpers import BOOK, STORED, C, t1

T = int(t1(10, 0, 1))

# Exactly the key set fyers-apiv3 3.2.0 hands to on_message for a full-mode "sf" update
# (map.json data_val minus OI/Yhigh/Ylow, plus lower_ckt/upper_ckt forced to 0, ch, chp).
SF = {
    "ltp": 812.5, "vol_traded_today": 10423911, "last_traded_time": T, "exch_feed_time": T,
    "bid_size": 120, "ask_size": 75, "bid_price": 812.45, "ask_price": 812.55,
    "last_traded_qty": 10, "tot_buy_qty": 251234, "tot_sell_qty": 198765,
    "avg_trade_price": 810.02, "low_price": 805.1, "high_price": 815.0, "open_price": 806.0,
    "prev_close_price": 800.0, "type": "sf", "symbol": "NSE:SBIN-EQ",
    "lower_ckt": 0, "upper_ckt": 0, "ch": 12.5, "chp": 1.5625,
}
# map.json index_val, with ch/chp added by the SDK.
IF = {
    "ltp": 24350.1, "prev_close_price": 24000.0, "ch": 350.1, "chp": 1.46,
    "exch_feed_time": T, "high_price": 24400.0, "low_price": 24300.0, "open_price": 24310.0,
    "type": "if", "symbol": "NSE:NIFTY50-INDEX",
}


def test_equity_message_becomes_a_tick_with_cumulative_volume_and_last_traded_time():
    tick = parse(SF)
    assert tick == Tick("NSE:SBIN-EQ", float(T), 812.5, 10423911.0, float(T))
    # ints from the SDK stay ints (exact); never bools or strings
    assert type(tick.time) in (int, float) and type(tick.day_volume) in (int, float)


def test_index_message_becomes_a_tick_without_volume():
    assert parse(IF) == Tick("NSE:NIFTY50-INDEX", float(T), 24350.1, None, None)


def test_equity_message_without_volume_is_a_tick_without_volume():
    m = {k: v for k, v in SF.items() if k != "vol_traded_today"}
    assert parse(m).day_volume is None


@pytest.mark.parametrize("message", [
    {"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"},
    {"type": "ful", "code": 200, "message": "Full Mode On", "s": "ok"},
    {"type": "sub", "code": 11011, "message": "Subscribed", "s": "ok"},
    {"type": "dp", "symbol": "NSE:SBIN-EQ", "bid_price1": 812.4, "ask_price1": 812.6},
])
def test_control_and_depth_messages_are_not_market_data(message):
    assert parse(message) is None


@pytest.mark.parametrize("message,reason", [
    (None, Reject.MALFORMED),
    ("sf", Reject.MALFORMED),
    ([SF], Reject.MALFORMED),
    ({}, Reject.MALFORMED),
    ({"type": "xx"}, Reject.MALFORMED),
    ({"type": ["sf"]}, Reject.MALFORMED),          # unhashable: must not raise
    ({"type": {"k": 1}}, Reject.MALFORMED),
    ({**SF, "symbol": None}, Reject.NO_SYMBOL),
    ({**SF, "symbol": ""}, Reject.NO_SYMBOL),
    ({**SF, "symbol": 3045}, Reject.NO_SYMBOL),
    ({k: v for k, v in SF.items() if k != "ltp"}, Reject.BAD_PRICE),
    ({**SF, "ltp": None}, Reject.BAD_PRICE),
    ({**SF, "ltp": "812.5"}, Reject.BAD_PRICE),
    ({**SF, "ltp": float("nan")}, Reject.BAD_PRICE),
    ({**SF, "ltp": float("inf")}, Reject.BAD_PRICE),
    ({**SF, "ltp": float("-inf")}, Reject.BAD_PRICE),
    ({**SF, "ltp": 0}, Reject.BAD_PRICE),
    ({**SF, "ltp": 0.0}, Reject.BAD_PRICE),
    ({**SF, "ltp": -812.5}, Reject.BAD_PRICE),
    ({**SF, "ltp": True}, Reject.BAD_PRICE),
    ({**IF, "ltp": -1}, Reject.BAD_PRICE),
    ({k: v for k, v in SF.items() if k != "exch_feed_time"}, Reject.NO_TIME),
    ({**SF, "exch_feed_time": None}, Reject.NO_TIME),
    ({**SF, "exch_feed_time": "1732076701"}, Reject.NO_TIME),
    ({**SF, "exch_feed_time": T * 1000}, Reject.NO_TIME),     # milliseconds
    ({**SF, "exch_feed_time": 0}, Reject.NO_TIME),
    ({**SF, "exch_feed_time": float("inf")}, Reject.NO_TIME),
    ({k: v for k, v in IF.items() if k != "exch_feed_time"}, Reject.NO_TIME),
    ({**SF, "vol_traded_today": -1.0}, Reject.BAD_VOLUME),     # (a negative int is a wrapped int32)
    ({**SF, "vol_traded_today": -2**31 - 1}, Reject.BAD_VOLUME),  # not an int32 at all
    ({**SF, "vol_traded_today": "100"}, Reject.BAD_VOLUME),
    ({**SF, "vol_traded_today": float("nan")}, Reject.BAD_VOLUME),
    ({"type": "sf", "symbol": "NSE:SBIN-EQ", "ltp": 812.5}, Reject.NO_TIME),   # lite mode
    ({**SF, "ltp": 10**400}, Reject.BAD_PRICE),                 # int beyond float range
    ({**SF, "exch_feed_time": 10**400}, Reject.NO_TIME),
    ({**SF, "vol_traded_today": 10**400}, Reject.BAD_VOLUME),
])
def test_invalid_messages_are_rejected_with_a_reason_and_never_raise(message, reason):
    assert parse(message) is reason


def test_numeric_edge_values_keep_their_meaning():
    assert parse({**SF, "ltp": 812}).price == 812.0                    # int price
    assert parse({**SF, "exch_feed_time": float(T) + 0.25}).time == T + 0.25
    assert parse({**SF, "vol_traded_today": 0}).day_volume == 0.0
    assert parse({**SF, "vol_traded_today": 2**60}).day_volume == float(2**60)
    assert parse({**SF, "last_traded_time": "x"}).last_traded_time is None
    assert parse({**SF, "last_traded_time": 10**400}).last_traded_time is None
    assert parse({**SF, "last_traded_time": 5}).last_traded_time == 5.0


_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-10**400, 10**400), st.floats(),
    st.text(max_size=5), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(overrides=st.dictionaries(
    st.sampled_from(["type", "symbol", "ltp", "exch_feed_time", "vol_traded_today", "last_traded_time"]),
    _values, max_size=4,
), drop=st.sets(st.sampled_from(list(SF)), max_size=3))
def test_parse_never_raises_and_accepts_only_valid_ticks(overrides, drop):
    message = {k: v for k, v in SF.items() if k not in drop}
    message.update(overrides)
    result = parse(message)
    assert result is None or isinstance(result, (Reject, Tick))
    if isinstance(result, Tick):
        assert type(result.price) is float and 0 < result.price < float("inf")
        assert type(result.time) in (int, float) and 1e9 <= result.time < 1e10
        assert result.day_volume is None or (type(result.day_volume) in (int, float) and result.day_volume >= 0)
        assert result.symbol and type(result.symbol) is str


_edge_values = st.one_of(
    _values, st.sampled_from([T, T + 1, 0, 1, 2**53 - 1, 2**53, 10**9 - 1, 10**9, 10**10 - 1, 10**10,
                              812.5, 0.0, -0.0, -1.0, float("nan"), float("inf"), "sf", "if", "",
                              "NSE:X-EQ", True]),
)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(overrides=st.dictionaries(
    st.sampled_from(["type", "symbol", "ltp", "exch_feed_time", "vol_traded_today", "last_traded_time"]),
    _edge_values, max_size=4,
), drop=st.sets(st.sampled_from(list(SF)), max_size=3), index=st.booleans())
def test_the_fast_path_of_parse_returns_what_every_rule_spelled_out_returns(overrides, drop, index):
    base = {"type": "if", "symbol": "NSE:NIFTY50-INDEX", "ltp": 24350.1, "exch_feed_time": T} if index else SF
    message = {k: v for k, v in base.items() if k not in drop}
    message.update(overrides)
    # repr: the same class, field values and their types (an int stays an int)
    assert repr(parse(message)) == repr(_parse_checked(message))


_EDGES = [None, True, False, T, T + 1, 0, 1, -1, -5, 2**53 - 1, 2**53, 10**9 - 1, 10**9, 10**10 - 1,
          10**10, 10**400, 812.5, 812.0, 0.0, -0.0, -1.0, 1e9, float("nan"), float("inf"), "sf", "if",
          "", "NSE:X-EQ", [1], {"a": 1}]
_INDEX = {"type": "if", "symbol": "NSE:NIFTY50-INDEX", "ltp": 24350.1, "exch_feed_time": T}


def test_the_fast_path_of_parse_agrees_on_every_single_field_edge():
    for base in (SF, _INDEX):
        for key in ("type", "symbol", "ltp", "exch_feed_time", "vol_traded_today", "last_traded_time"):
            for value in _EDGES:
                message = {**base, key: value}
                assert repr(parse(message)) == repr(_parse_checked(message)), message
            message = {k: v for k, v in base.items() if k != key}
            assert repr(parse(message)) == repr(_parse_checked(message)), message


def test_the_fast_path_of_parse_builds_the_same_tick_as_the_constructor():
    assert repr(parse(SF)) == repr(Tick("NSE:SBIN-EQ", T, 812.5, 10423911, T))
    index = {"type": "if", "symbol": "NSE:NIFTY50-INDEX", "ltp": 24350.1, "exch_feed_time": T}
    assert repr(parse(index)) == repr(Tick("NSE:NIFTY50-INDEX", T, 24350.1))
    assert parse(SF) == Tick("NSE:SBIN-EQ", T, 812.5, 10423911, T)


def test_kind_and_exchange_of_symbols():
    assert kind_of(SF) == "equity"
    assert kind_of(IF) == "index"
    assert kind_of({"type": "sf", "symbol": "NSE:NIFTY24DECFUT"}) == "future"
    assert kind_of({"type": "sf", "symbol": "NSE:NIFTY24D1924000CE"}) == "option"
    assert kind_of({"type": "sf", "symbol": "BSE:RELIANCE-A"}) == "equity"
    assert kind_of({"symbol": "MCX:SOMETHING"}) == "other"
    assert exchange_of("NSE:SBIN-EQ") == "NSE"
    assert exchange_of("bse:SBIN-A") == "BSE"
    assert exchange_of("SBIN") == ""
    assert exchange_of(":SBIN") == ""


# -- through the real SDK decoder --------------------------------------------------------
SF_TOPIC, IF_TOPIC = "sf|nse_cm|3045", "if|nse_cm|26000"


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    """The real FyersDataSocket (a singleton) with its binary decoder, no network."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources deprecation inside the SDK
        data_ws = pytest.importorskip("fyers_apiv3.FyersWebsocket.data_ws")
    got: list = []
    sock = data_ws.FyersDataSocket(
        access_token="APPID-100:fake-token", write_to_file=False,
        log_path=str(tmp_path_factory.mktemp("fyers")), litemode=False, reconnect=False,
        on_message=got.append,
    )
    sock.symbol_token = {SF_TOPIC: "NSE:SBIN-EQ", IF_TOPIC: "NSE:NIFTY50-INDEX"}

    def feed(frame: bytes) -> list:
        got.clear()
        sock._FyersDataSocket__datafeed_resp(bytearray(frame))
        return list(got)

    return feed


def _sf(ltp, vol, ltt, eft, **extra):
    return {"ltp": ltp, "vol_traded_today": vol, "last_traded_time": ltt, "exch_feed_time": eft,
            "bid_price": ltp - 5, "ask_price": ltp + 5, "bid_size": 100, "ask_size": 80,
            "prev_close_price": 80000, "open_price": 80500, "low_price": 80400,
            "high_price": 81500, "avg_trade_price": 81000, "last_traded_qty": 10,
            "tot_buy_qty": 251234, "tot_sell_qty": 198765, **extra}


def test_sdk_snapshot_messages_parse_to_ticks(sdk):
    msgs = sdk(ff.frame(
        ff.snapshot(7, SF_TOPIC, _sf(81250, 1000, T, T), symbol="SBIN-EQ"),
        ff.snapshot(8, IF_TOPIC, {"ltp": 2435010, "exch_feed_time": T, "prev_close_price": 2400000,
                                  "high_price": 2440000, "low_price": 2430000, "open_price": 2431000}),
    ))
    assert len(msgs) == 2
    sf, idx = msgs
    assert set(sf) == set(SF)  # the hand-written dict above has the SDK's key set
    assert set(idx) == set(IF)
    assert parse(sf) == Tick("NSE:SBIN-EQ", float(T), 812.5, 1000.0, float(T))
    assert parse(idx) == Tick("NSE:NIFTY50-INDEX", float(T), 24350.1)


def test_sdk_full_mode_updates_through_parse_and_engine(sdk):
    sdk(ff.frame(ff.snapshot(7, SF_TOPIC, _sf(81250, 1000, T, T)),
                 ff.snapshot(8, IF_TOPIC, {"ltp": 2435010, "exch_feed_time": T})))
    engine = CandleEngine(STORED, BOOK)
    engine.register("NSE:SBIN-EQ", "NSE")
    engine.register("NSE:NIFTY50-INDEX", "NSE")
    # the snapshot values become the first tick (baseline 1000)
    frames = [
        ff.frame(ff.update(7, SF_TOPIC, _sf(81250, 1000, T, T))),           # unchanged: SDK is silent
        ff.frame(ff.update(7, SF_TOPIC, _sf(81300, 1150, T + 1, T + 1))),   # +150
        ff.frame(ff.update(7, SF_TOPIC, _sf(81300, 1150, T + 1, T + 2, bid_size=5))),  # quote only
        ff.frame(ff.update(7, SF_TOPIC, _sf(81100, 1200, T + 2, T + 3)),    # +50, new low
                 ff.update(8, IF_TOPIC, {"ltp": 2436000, "exch_feed_time": T + 3})),
        ff.frame(ff.update(7, SF_TOPIC, _sf(81200, 1230, T + 5, T + 5))),   # next 5 s bucket: +30
    ]
    messages = [parse(m) for m in sdk(ff.frame(ff.snapshot(7, SF_TOPIC, _sf(81250, 1000, T, T))))]
    per_frame = [sdk(f) for f in frames]
    assert [len(x) for x in per_frame] == [0, 1, 1, 2, 1]
    messages += [parse(m) for batch in per_frame for m in batch]
    results = [engine.add(t) for t in messages]
    assert results == [None, None, Reject.REPEAT, None, None, None]
    first = int(t1(10, 0, 0))
    assert engine.current("NSE:SBIN-EQ", BASE) == C(first + 5, 812.0, 812.0, 812.0, 812.0, 30, 1)
    ups = engine.collect()
    closed = [u.candle for u in ups if u.final and u.symbol == "NSE:SBIN-EQ"]
    assert closed == [C(first, 812.5, 813.0, 811.0, 811.0, 200, 3)]
    assert engine.current("NSE:NIFTY50-INDEX", BASE) == C(first, 24360.0, 24360.0, 24360.0, 24360.0, 0, 1)


def test_sdk_day_volume_above_2_31_wraps_negative_and_is_read_unsigned(sdk):
    (m,) = sdk(ff.frame(ff.snapshot(9, SF_TOPIC, _sf(81250, 2**31 + 5, T, T))))
    assert m["vol_traded_today"] == -2**31 + 5  # the SDK's signed decode
    assert parse(m).day_volume == float(2**31 + 5)
    (m,) = sdk(ff.frame(ff.update(9, SF_TOPIC, _sf(81300, 2**32 - 1, T + 1, T + 1))))
    assert m["vol_traded_today"] == -1 and parse(m).day_volume == float(2**32 - 1)


def test_sdk_missing_values_are_left_out_and_still_parse(sdk):
    vals = _sf(81250, 1000, T, T)
    del vals["vol_traded_today"]  # sent as -2147483648: the SDK leaves the key out
    (m,) = sdk(ff.frame(ff.snapshot(9, SF_TOPIC, vals)))
    assert "vol_traded_today" not in m
    assert parse(m) == Tick("NSE:SBIN-EQ", float(T), 812.5, None, float(T))
