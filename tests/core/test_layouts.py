"""Layout specs (issue 12): what market.core.layouts accepts, normalises and refuses."""

from __future__ import annotations

import pytest

from market.core.layouts import LayoutError, parse_name, parse_spec, symbols_of

CHART = {"symbol": "NSE:SBIN-EQ", "tf": "5m"}


def spec(grid=1, charts=None, **extra):
    return {"grid": grid, "charts": charts if charts is not None else [dict(CHART) for _ in range(grid)], **extra}


def test_defaults_are_filled_in_and_study_keys_normalised():
    got = parse_spec(spec(2, [CHART, {**CHART, "studies": ["EMA", "rsi:14", "ema:20"], "link_group": "A",
                                      "type": "area", "drawings_visible": False}]))
    assert got == {"grid": 2, "theme": "dark", "charts": [
        {"symbol": "NSE:SBIN-EQ", "tf": "5m", "type": "candles", "studies": [], "drawings_visible": True,
         "link_group": None},
        {"symbol": "NSE:SBIN-EQ", "tf": "5m", "type": "area", "studies": ["ema:20", "rsi:14"],
         "drawings_visible": False, "link_group": "A"}]}
    assert parse_spec(got) == got  # a parsed spec parses to itself
    assert symbols_of(got) == ["NSE:SBIN-EQ"]


@pytest.mark.parametrize("grid", [1, 2, 4, 6])
def test_every_grid(grid):
    assert len(parse_spec(spec(grid))["charts"]) == grid


@pytest.mark.parametrize("bad, field", [
    ([], "spec"),
    (spec(extra=1), "spec.extra"),
    (spec(3, [CHART] * 3), "spec.grid"),
    (spec(True, [CHART]), "spec.grid"),
    ({"charts": [CHART]}, "spec.grid"),
    (spec(2, [CHART]), "spec.charts"),
    (spec(1, "NSE:SBIN-EQ"), "spec.charts"),
    (spec(theme="blue"), "spec.theme"),
    (spec(1, ["NSE:SBIN-EQ"]), "spec.charts[0]"),
    (spec(2, [CHART, {"tf": "1m"}]), "spec.charts[1].symbol"),
    (spec(1, [{"symbol": "has space"}]), "spec.charts[0].symbol"),
    (spec(1, [{**CHART, "tf": "7m"}]), "spec.charts[0].tf"),
    (spec(1, [{**CHART, "type": "renko"}]), "spec.charts[0].type"),
    (spec(1, [{**CHART, "scale": "linear"}]), "spec.charts[0].scale"),
    (spec(1, [{**CHART, "scale": None}]), "spec.charts[0].scale"),
    (spec(1, [{**CHART, "compare": "NSE:TCS-EQ"}]), "spec.charts[0].compare"),
    (spec(1, [{**CHART, "compare": ["has space"]}]), "spec.charts[0].compare"),
    (spec(1, [{**CHART, "compare": [5]}]), "spec.charts[0].compare"),
    (spec(1, [{**CHART, "compare": ["NSE:TCS-EQ", "NSE:TCS-EQ"]}]), "spec.charts[0].compare"),
    (spec(1, [{**CHART, "compare": ["NSE:SBIN-EQ"]}]), "spec.charts[0].compare"),
    (spec(1, [{**CHART, "compare": ["NSE:A%d" % i for i in range(5)]}]), "spec.charts[0].compare"),
    (spec(1, [{**CHART, "studies": "ema"}]), "spec.charts[0].studies"),
    (spec(1, [{**CHART, "studies": ["bogus"]}]), "spec.charts[0].studies"),
    (spec(1, [{**CHART, "studies": ["ema:%d" % i for i in range(1, 10)]}]), "spec.charts[0].studies"),
    (spec(1, [{**CHART, "drawings_visible": "yes"}]), "spec.charts[0].drawings_visible"),
    (spec(1, [{**CHART, "link_group": "Z"}]), "spec.charts[0].link_group"),
    (spec(1, [{**CHART, "colour": "red"}]), "spec.charts[0].colour"),
])
def test_a_bad_field_is_named(bad, field):
    with pytest.raises(LayoutError) as err:
        parse_spec(bad)
    assert str(err.value).startswith(field + ":"), str(err.value)


@pytest.mark.parametrize("kind", ["candles", "hollow", "bars", "heikin_ashi", "line", "area", "baseline"])
def test_every_chart_type(kind):
    assert parse_spec(spec(1, [{**CHART, "type": kind}]))["charts"][0]["type"] == kind


def test_scale_and_compare_are_kept():
    chart = {**CHART, "scale": "log", "compare": ["NSE:TCS-EQ", "NSE:INFY-EQ"]}
    got = parse_spec(spec(1, [chart]))["charts"][0]
    assert (got["scale"], got["compare"]) == ("log", ["NSE:TCS-EQ", "NSE:INFY-EQ"])
    assert parse_spec(spec(1, [{**CHART, "scale": "percent", "compare": ["NSE:A%d" % i for i in range(4)]}]))
    # At their defaults they are left out: a layout saved before them reads back unchanged.
    plain = parse_spec(spec(1, [{**CHART, "scale": "normal", "compare": []}]))["charts"][0]
    assert "scale" not in plain and "compare" not in plain


def test_names():
    assert parse_name("  Morning   scan ") == "Morning scan"
    for bad in ("", "   ", None, 5, "x" * 81, "tab\x00"):
        with pytest.raises(LayoutError, match="^name:"):
            parse_name(bad)
