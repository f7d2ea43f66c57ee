import pytest

from market.core.timeframes import (
    ALL, BASE, CODES, DEFAULT_STORED, Timeframe, TimeframeError, TimeframePlan, divides,
)


def test_codes_are_the_contract_set_in_ascending_length():
    assert CODES == ("5s", "10s", "15s", "30s", "1m", "2m", "3m", "5m", "10m", "15m", "30m",
                     "1h", "2h", "4h", "1d")
    seconds = [tf.seconds for tf in ALL]
    assert seconds == sorted(seconds)
    assert seconds == [5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1800, 3600, 7200, 14400, 86400]


def test_parse_round_trips_and_rejects_unknown_codes():
    for code in CODES:
        tf = Timeframe.parse(code)
        assert tf.code == code and str(tf) == code
    for bad in ("7s", "1w", "", "1D", None, 5):
        with pytest.raises(TimeframeError):
            Timeframe.parse(bad)


def test_base_is_5s_and_only_1d_is_daily():
    assert BASE == Timeframe.parse("5s")
    assert [tf.code for tf in ALL if tf.is_daily] == ["1d"]


def test_divides():
    tf = Timeframe.parse
    assert divides(tf("5s"), tf("1m"))
    assert divides(tf("1m"), tf("3m"))
    assert not divides(tf("2m"), tf("3m"))
    assert not divides(tf("5m"), tf("2m"))
    assert divides(tf("15m"), tf("30m"))
    assert divides(tf("1h"), tf("4h"))
    assert not divides(tf("1d"), tf("1h"))
    for small in ALL:
        assert divides(small, tf("1d"))  # a trading day is a union of its intraday buckets


def test_default_plan_derives_each_code_from_the_largest_stored_divisor():
    plan = TimeframePlan.build(DEFAULT_STORED)
    assert [t.code for t in plan.stored] == ["5s", "1m", "5m", "15m", "1h", "1d"]
    expected = {
        "5s": "5s", "10s": "5s", "15s": "5s", "30s": "5s",
        "1m": "1m", "2m": "1m", "3m": "1m", "5m": "5m", "10m": "5m", "15m": "15m",
        "30m": "15m", "1h": "1h", "2h": "1h", "4h": "1h", "1d": "1d",
    }
    assert {k.code: v.code for k, v in plan.source.items()} == expected
    for code, base in expected.items():
        assert plan.is_stored(Timeframe.parse(code)) == (code == base)
        assert plan.base_for(Timeframe.parse(code)).code == base
    assert list(plan.codes) == list(CODES)


def test_plan_for_a_minimal_stored_set():
    plan = TimeframePlan.build(["5s"])
    assert all(plan.base_for(tf) == BASE for tf in ALL)
    plan = TimeframePlan.build(["5s", "2m", "1h"])
    assert plan.base_for(Timeframe.parse("3m")).code == "5s"   # 2m does not divide 3m
    assert plan.base_for(Timeframe.parse("10m")).code == "2m"
    assert plan.base_for(Timeframe.parse("1d")).code == "1h"


def test_plan_rejects_sets_without_5s_or_with_unknown_codes():
    with pytest.raises(TimeframeError):
        TimeframePlan.build([])
    with pytest.raises(TimeframeError):
        TimeframePlan.build(["1m", "1h"])
    with pytest.raises(TimeframeError):
        TimeframePlan.build(["5s", "7m"])
