"""``GET /api/candles?…&type=heikin_ashi`` (issue 12): Heikin-Ashi candles anchored on the
first stored bar, so a bar's values are the same on every page and for every limit; the
parameter is checked and documented in /api/openapi.json."""

from __future__ import annotations

import pytest

from market.core.heikin_ashi import heikin_ashi
from market.core.types import Candle
from tests.core.helpers import NSE, RTC
from tests.core.test_studies import nse_minutes, random_walk
from tests.web.test_api_studies import store


@pytest.fixture
def demo(make_symbol):
    symbol = make_symbol("DEMO:ALPHA", "DEMO")
    candles = random_walk(1500, seed=31, step=60)
    store(symbol, candles, RTC)
    return symbol, candles


def get(client, **params):
    response = client.get("/api/candles", params)
    return response.status_code, response.json()


def by_time(rows):
    return {r["time"]: r for r in rows}


@pytest.mark.django_db
def test_heikin_ashi_from_the_first_stored_bar_whatever_the_page(client, demo):
    _, candles = demo
    whole = by_time([h.as_dict() for h in heikin_ashi(candles)])
    status, newest = get(client, symbol="DEMO:ALPHA", tf="1m", type="heikin_ashi", limit=300)
    assert status == 200 and newest["type"] == "heikin_ashi" and len(newest["candles"]) == 300
    status, wide = get(client, symbol="DEMO:ALPHA", tf="1m", type="heikin_ashi", limit=1200)
    status2, older = get(client, symbol="DEMO:ALPHA", tf="1m", type="heikin_ashi",
                         **{"from": candles[700].time,
                            "limit": 650})
    assert status == status2 == 200
    shared = by_time(newest["candles"]).keys() & by_time(older["candles"]).keys()
    assert len(shared) > 100  # the pages overlap
    for page in (newest, wide, older):
        for row in page["candles"]:
            assert row == whole[row["time"]]
    # The real candles are not changed by it, and differ from the HA ones.
    _, plain = get(client, symbol="DEMO:ALPHA", tf="1m", limit=300)
    assert "type" not in plain  # the plain body keeps its shape (issue 16)
    assert [r["time"] for r in plain["candles"]] == [r["time"] for r in newest["candles"]]
    assert plain["candles"][-1]["close"] == candles[-1].close != newest["candles"][-1]["close"]


@pytest.mark.django_db
def test_derived_timeframe_and_studies_of_the_real_candles(client, make_symbol):
    symbol = make_symbol("NSE:SBIN-EQ", "NSE")
    candles = nse_minutes(3, seed=32)
    store(symbol, candles, NSE)
    # 30m is not stored (the default plan): aggregated from its base, then HA from its first bucket.
    _, every = get(client, symbol="NSE:SBIN-EQ", tf="30m", limit=1000)
    whole = by_time([h.as_dict() for h in heikin_ashi([Candle.from_dict(r) for r in every["candles"]])])
    _, tail = get(client, symbol="NSE:SBIN-EQ", tf="30m", type="heikin_ashi", limit=5, studies="sma:3")
    assert len(tail["candles"]) == 5
    assert all(row == whole[row["time"]] for row in tail["candles"])
    _, real = get(client, symbol="NSE:SBIN-EQ", tf="30m", limit=5, studies="sma:3")
    assert tail["studies"] == real["studies"]  # studies are of the real candles


@pytest.mark.django_db
@pytest.mark.parametrize("query, message", [
    ("type=renko", "type must be one of candles, heikin_ashi"),
    ("type=heikin_ashi&type=candles", "type given more than once"),
])
def test_a_bad_type_is_refused_by_name(client, demo, query, message):
    response = client.get(f"/api/candles?symbol=DEMO:ALPHA&{query}")
    assert response.status_code == 400
    assert response.json() == {"error": message}


@pytest.mark.django_db
def test_the_type_parameter_is_documented(client):
    doc = client.get("/api/openapi.json").json()
    params = {p["name"]: p for p in doc["paths"]["/api/candles"]["get"]["parameters"]}
    assert params["type"]["schema"]["enum"] == ["candles", "heikin_ashi"]
    assert "first stored bar" in params["type"]["description"]
    # Only the JSON operation takes it: the exports stream the real candles.
    csv = {p["name"] for p in doc["paths"]["/api/candles.csv"]["get"]["parameters"]}
    assert "type" not in csv
