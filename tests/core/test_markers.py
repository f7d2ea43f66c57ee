"""What a valid marker is (market.core.markers): each bad field is named."""

import pytest

from market.core.markers import MarkerError, MarkerSpec, parse_marker


def test_defaults_and_positions():
    assert parse_marker({"symbol": " NSE:SBIN-EQ ", "time": 1_700_000_000.7}) == MarkerSpec(
        "NSE:SBIN-EQ", 1_700_000_000, None, "circle", "#2962ff", "", "aboveBar")
    assert parse_marker({"symbol": "X:Y", "time": 1, "shape": "arrowUp"}).position == "belowBar"
    assert parse_marker({"symbol": "X:Y", "time": 1, "shape": "arrowUp", "position": None}).position == "belowBar"
    assert parse_marker({"symbol": "X:Y", "time": 1, "price": 812.5}).position == "atPriceMiddle"
    assert parse_marker({"symbol": "X:Y", "time": 1, "price": 1, "position": "atPriceTop", "color": "#ABC",
                         "text": "buy 10"}).text == "buy 10"


@pytest.mark.parametrize("body, field", [
    ({"time": 1}, "symbol"),
    ({"symbol": "X:Y"}, "time"),
    ({"symbol": "X:Y", "time": True}, "time"),
    ({"symbol": "X:Y", "time": -1}, "time"),
    ({"symbol": "X:Y", "time": float("nan")}, "time"),
    ({"symbol": "X:Y", "time": 1, "price": "812"}, "price"),
    ({"symbol": "X:Y", "time": 1, "price": float("inf")}, "price"),
    ({"symbol": "X:Y", "time": 1, "shape": "star"}, "shape"),
    ({"symbol": "X:Y", "time": 1, "color": "red"}, "color"),
    ({"symbol": "X:Y", "time": 1, "color": "#12345"}, "color"),
    ({"symbol": "X:Y", "time": 1, "text": "x" * 81}, "text"),
    ({"symbol": "X:Y", "time": 1, "text": "a\nb"}, "text"),
    ({"symbol": "X:Y", "time": 1, "position": "atPriceTop"}, "position"),
    ({"symbol": "X:Y", "time": 1, "position": "somewhere"}, "position"),
    ({"symbol": "X:Y", "time": 1, "position": {}}, "position"),  # not taken as absent (schemathesis found it)
    ({"symbol": "X:Y", "time": 1, "position": 0}, "position"),
    ({"symbol": "X:Y", "time": 1, "size": 3}, "'size'"),
])
def test_each_bad_field_is_named(body, field):
    with pytest.raises(MarkerError, match=field):
        parse_marker(body)
