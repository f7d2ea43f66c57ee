"""market.core.drawings: what a valid drawing is; each error names its field."""

import math

import pytest

from market.core.drawings import (
    DEFAULT_STYLE, KINDS, POINTS, DrawingError, parse_kind, parse_points, parse_style,
)

P = {"time": 1_700_000_000, "price": 101.5}
Q = {"time": 1_700_000_300.5, "price": 99}


def test_kinds_and_their_point_counts():
    assert set(KINDS) == {"hline", "hray", "trend", "ray", "rect", "fib", "text"}
    for kind in KINDS:
        points = [P, Q][: POINTS[kind]]
        assert parse_points(kind, points)[0] == {"time": 1_700_000_000, "price": 101.5}
        wrong = [P, Q, P][: 3 - POINTS[kind]] if POINTS[kind] == 2 else [P, Q]
        with pytest.raises(DrawingError, match=r"^points: "):
            parse_points(kind, wrong)
    assert parse_points("trend", [P, Q])[1] == {"time": 1_700_000_300.5, "price": 99.0}
    with pytest.raises(DrawingError, match="^kind: "):
        parse_kind("circle")


@pytest.mark.parametrize("point, field", [
    ({"time": "x", "price": 1}, "points[0].time"),
    ({"time": -1, "price": 1}, "points[0].time"),
    ({"time": 1e11, "price": 1}, "points[0].time"),
    ({"time": True, "price": 1}, "points[0].time"),
    ({"time": 1, "price": math.nan}, "points[0].price"),
    ({"time": 1, "price": 1e16}, "points[0].price"),
    ({"time": 1}, "points[0]"),
    ({"time": 1, "price": 1, "x": 2}, "points[0]"),
    ([1, 2], "points[0]"),
])
def test_bad_points_name_the_field(point, field):
    with pytest.raises(DrawingError) as info:
        parse_points("hline", [point])
    assert str(info.value).startswith(field + ":")


def test_style_defaults_merge_and_limits():
    assert parse_style("trend", None) == DEFAULT_STYLE
    assert parse_style("trend", {"color": "#FF0000"}) == {**DEFAULT_STYLE, "color": "#ff0000"}
    base = {"color": "#00ff00", "width": 3, "text": ""}
    assert parse_style("trend", {"width": 1}, base=base) == {"color": "#00ff00", "width": 1, "text": ""}
    assert parse_style("text", {"text": "x" * 500})["text"] == "x" * 500
    for style, field in [({"color": "red"}, "style.color"), ({"width": 0}, "style.width"),
                         ({"width": 5}, "style.width"), ({"width": 2.5}, "style.width"),
                         ({"text": "x" * 501}, "style.text"), ({"text": 3}, "style.text"),
                         ({"dash": 1}, "style.dash"), ([], "style")]:
        with pytest.raises(DrawingError) as info:
            parse_style("trend", style)
        assert str(info.value).startswith(field + ":"), (style, str(info.value))
    with pytest.raises(DrawingError, match="^style.text: a text note needs text"):
        parse_style("text", {"text": "  "})
