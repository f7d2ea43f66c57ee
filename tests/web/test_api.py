"""HTTP edges: /api/candles, /api/symbols and the chart page."""

from __future__ import annotations

import json
import re

import pytest

from market import services
from market.core.derive import aggregate
from market.core.sessions import ROUND_THE_CLOCK
from market.core.timeframes import Timeframe
from market.core.types import Candle, CandleUpdate

T0 = 1_795_000_000 - 1_795_000_000 % 3600  # an hour boundary (UTC)


def one_minute_candles(n: int, start: int = T0) -> list[Candle]:
    return [
        Candle(start + 60 * i, 100 + i, 101 + i + (i % 3), 99 + i, 100.5 + i, 10.0 * (i + 1), i + 1)
        for i in range(n)
    ]


@pytest.fixture
def demo(make_symbol):
    symbol = make_symbol("DEMO:ALPHA", "DEMO", name="Alpha Industries")
    candles = one_minute_candles(300)
    updates = [CandleUpdate(symbol.ticker, "1m", c, True) for c in candles]
    for code in ("5m", "15m", "1h", "1d"):  # the other stored timeframes, consistent with 1m
        updates += [
            CandleUpdate(symbol.ticker, code, c, True)
            for c in aggregate(candles, Timeframe.parse(code), ROUND_THE_CLOCK)
        ]
    services.candle_upsert_many(updates=updates, symbol_ids={symbol.ticker: symbol.pk})
    return symbol, candles


@pytest.mark.django_db
def test_candles_default_is_the_newest_ascending(client, demo):
    _, candles = demo
    body = client.get("/api/candles", {"symbol": "DEMO:ALPHA", "tf": "1m", "limit": 5}).json()
    assert body["symbol"] == "DEMO:ALPHA" and body["tf"] == "1m"
    assert [c["time"] for c in body["candles"]] == [c.time for c in candles[-5:]]
    assert set(body["candles"][0]) >= {"time", "open", "high", "low", "close", "volume"}


@pytest.mark.django_db
def test_candles_to_and_from_bound_the_range(client, demo):
    _, candles = demo
    to = candles[100].time
    body = client.get("/api/candles", {"symbol": "DEMO:ALPHA", "tf": "1m", "to": to, "limit": 3}).json()
    assert [c["time"] for c in body["candles"]] == [c.time for c in candles[98:101]]
    body = client.get("/api/candles", {"symbol": "DEMO:ALPHA", "tf": "1m", "from": candles[10].time,
                                       "to": candles[12].time}).json()
    assert [c["time"] for c in body["candles"]] == [c.time for c in candles[10:13]]


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["2m", "3m", "10m", "30m", "2h", "4h"])
def test_derived_timeframes_equal_aggregation_of_the_base(client, demo, code):
    _, candles = demo
    tf = Timeframe.parse(code)
    expected = [c.as_dict() for c in aggregate(candles, tf, ROUND_THE_CLOCK)]
    body = client.get("/api/candles", {"symbol": "DEMO:ALPHA", "tf": code, "limit": 10000}).json()
    assert body["candles"] == expected


@pytest.mark.django_db
def test_derived_newest_limit_has_no_partial_first_bucket(client, demo):
    _, candles = demo
    body = client.get("/api/candles", {"symbol": "DEMO:ALPHA", "tf": "3m", "limit": 4}).json()
    full = [c.as_dict() for c in aggregate(candles, Timeframe.parse("3m"), ROUND_THE_CLOCK)]
    assert body["candles"] == full[-4:]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params, message",
    [
        ({"symbol": "DEMO:ALPHA", "tf": "7m"}, "unknown timeframe"),
        ({"symbol": "DEMO:ALPHA", "tf": "1m", "limit": "abc"}, "limit must be an integer"),
        ({"symbol": "DEMO:ALPHA", "tf": "1m", "limit": "0"}, "limit must be between"),
        ({"symbol": "DEMO:ALPHA", "tf": "1m", "limit": "10001"}, "limit must be between"),
        ({"symbol": "DEMO:ALPHA", "tf": "1m", "from": "1.5"}, "from must be an integer"),
        ({"symbol": "DEMO:ALPHA", "tf": "1m", "from": "20", "to": "10"}, "from must not be after to"),
        ({"tf": "1m"}, "symbol is required"),
    ],
)
def test_bad_parameters_are_400_with_a_json_error(client, demo, params, message):
    response = client.get("/api/candles", params)
    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.django_db
def test_unknown_symbol_is_404(client, demo):
    response = client.get("/api/candles", {"symbol": "NSE:NOPE-EQ", "tf": "1m"})
    assert response.status_code == 404
    assert "unknown symbol" in response.json()["error"]


@pytest.mark.django_db
def test_symbol_search_ranks_prefix_matches_first(client, make_symbol):
    make_symbol("NSE:SBIN-EQ", name="STATE BANK OF INDIA")
    make_symbol("NSE:ASBINDIA-EQ", name="A S B INDIA")
    make_symbol("NSE:TCS-EQ", name="TATA CONSULTANCY")
    body = client.get("/api/symbols", {"q": "sbin"}).json()
    assert [s["ticker"] for s in body["symbols"]] == ["NSE:SBIN-EQ", "NSE:ASBINDIA-EQ"]
    body = client.get("/api/symbols", {"q": "tata"}).json()
    assert [s["ticker"] for s in body["symbols"]] == ["NSE:TCS-EQ"]


@pytest.mark.django_db
def test_chart_page_embeds_its_history(client, demo):
    symbol, candles = demo
    response = client.get("/chart/DEMO:ALPHA/", {"tf": "5m"})
    assert response.status_code == 200
    html = response.content.decode()
    match = re.search(r'<script id="chart-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page must carry its history as a JSON block"
    config = json.loads(match.group(1))
    assert config["symbol"] == "DEMO:ALPHA" and config["tf"] == "5m"
    expected = [c.as_dict() for c in aggregate(candles, Timeframe.parse("5m"), ROUND_THE_CLOCK)]
    assert config["candles"] == expected
    assert "lightweight-charts.standalone.production.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()


@pytest.mark.django_db
def test_home_shows_the_first_active_symbol(client, demo):
    response = client.get("/")
    assert response.status_code == 200
    assert b"DEMO:ALPHA" in response.content


@pytest.mark.django_db
def test_chart_of_unknown_symbol_is_404(client, demo):
    assert client.get("/chart/NSE:NOPE-EQ/").status_code == 404


@pytest.mark.django_db
def test_admin_lists_and_filters_symbols(admin_client, demo):
    response = admin_client.get("/admin/market/symbol/", {"active__exact": "1", "q": "ALPHA"})
    assert response.status_code == 200
    assert b"DEMO:ALPHA" in response.content


@pytest.mark.django_db
def test_admin_action_deactivates(admin_client, demo):
    symbol, _ = demo
    response = admin_client.post(
        "/admin/market/symbol/", {"action": "deactivate", "_selected_action": [symbol.pk]}, follow=True
    )
    assert response.status_code == 200
    symbol.refresh_from_db()
    assert symbol.active is False
