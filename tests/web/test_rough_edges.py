"""Rough edges a new user hit (issue 12): WebSocket error codes, the 404 page, a bad ``tf``."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from market.web.protocol import ERROR_CODES, SCHEMA_PATH
from tests import wsclient

TICKER = "DEMO:ALPHA"

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = json.loads(SCHEMA_PATH.read_text())


@pytest.fixture
def alpha(make_symbol):
    return make_symbol(TICKER, exchange="DEMO", name="Alpha Industries", tick_size=0.05)


async def error_for(message: dict | str) -> dict:
    """The error frame the consumer answers ``message`` with (status frames skipped)."""
    async with wsclient.ws() as comm:
        await comm.send_to(text_data=message if isinstance(message, str) else json.dumps(message))
        while True:
            frame = await comm.receive_json_from(timeout=wsclient.TIMEOUT)
            if frame["type"] != "status":
                assert frame["type"] == "error", frame
                return frame


# -- item 5: every WebSocket error names its cause ----------------------------------------------
@pytest.mark.parametrize(("message", "code", "text"), [
    ({"type": "subscribe", "symbol": "DEMO:BOGUS", "tf": "1m"}, "unknown_symbol", "unknown symbol DEMO:BOGUS"),
    ({"type": "subscribe", "symbol": TICKER}, "bad_request", "tf is required"),
    ({"type": "subscribe", "tf": "1m"}, "bad_request", "symbol is required"),
    ({"type": "subscribe", "symbol": TICKER, "tf": "7m"}, "bad_timeframe", "unknown timeframe '7m'"),
    ({"type": "subscribe", "symbol": TICKER, "tf": ["1m"]}, "bad_timeframe", "unknown timeframe"),
    ({"type": "subscribe", "symbol": "not a ticker", "tf": "1m"}, "bad_request", "symbol must be a ticker"),
    ({"type": "subscribe", "symbol": TICKER, "tf": "1m", "since": "x"}, "bad_request", "since"),
    ({"type": "unsubscribe", "symbol": TICKER, "tf": "1m"}, "not_subscribed", "not subscribed"),
    ({"type": "dance"}, "bad_request", "type must be"),
    ("{not json", "bad_request", "invalid JSON"),
    ("[1]", "bad_request", "JSON object"),
], ids=["unknown symbol", "tf missing", "symbol missing", "bad tf", "tf a list", "bad ticker",
        "bad since", "not subscribed", "bad type", "not json", "not an object"])
async def test_every_error_frame_has_a_code(alpha, message, code, text):
    error = await error_for(message)
    assert error["code"] == code, error
    assert text in error["message"], error
    assert "None" not in error["message"]


async def test_a_server_fault_is_an_error_with_code_server_error(alpha, monkeypatch):
    from market.web import consumers

    def broken(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(consumers, "_load_snapshot", broken)
    error = await error_for({"type": "subscribe", "symbol": TICKER, "tf": "1m"})
    assert error["code"] == "server_error"


def test_the_schema_lists_exactly_the_error_codes_the_protocol_uses():
    enum = SCHEMA["$defs"]["server.error"]["properties"]["code"]["enum"]
    assert sorted(enum) == sorted(ERROR_CODES)
    validator = Draft202012Validator(SCHEMA["$defs"]["server.error"])
    assert validator.is_valid({"type": "error", "message": "m", "code": "unknown_symbol"})
    assert not validator.is_valid({"type": "error", "message": "m", "code": "no_such_code"})


def test_the_consumer_docstring_lists_every_error_code():
    from market.web import consumers

    doc = " ".join(consumers.__doc__.split())
    for code in ERROR_CODES:
        assert code in doc, code


# -- item 4: a real 404 page, and a bad tf is said out loud ------------------------------------
@pytest.fixture
def demo(make_symbol):
    for ticker, name in (("DEMO:ALPHA", "Alpha Industries"), ("DEMO:BETA", "Beta Pharma"),
                         ("DEMO:GAMMA", "Gamma Bank")):
        make_symbol(ticker, exchange="DEMO", name=name)


@pytest.mark.parametrize("path", ["/chart/NOPE/", "/chart/DEMO:ALPA/", "/chart/%3Cscript%3E/"])
def test_an_unknown_chart_is_the_sites_404_page_even_with_debug_on(client, demo, settings, path):
    settings.DEBUG = True
    response = client.get(path)
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found at" not in html and "technical_404" not in html  # Django's debug page
    assert "market/not_found.js" in html and 'id="symbol-search"' in html
    assert "chart.css" in html  # the site's look
    assert "<script>" not in html.split("search-config")[0]  # nothing the path says runs


def test_the_404_page_suggests_close_matches(client, demo):
    html = client.get("/chart/DEMO:ALPA/").content.decode()
    assert "Did you mean" in html
    assert html.index('href="/chart/DEMO:ALPHA/"') < html.index("</main>")
    html = client.get("/chart/BETTA/").content.decode()
    assert 'href="/chart/DEMO:BETA/"' in html


def test_the_404_page_lists_symbols_when_nothing_is_close(client, demo):
    html = client.get("/chart/NOPE/").content.decode()
    assert "Symbols you can chart" in html
    for ticker in ("DEMO:ALPHA", "DEMO:BETA", "DEMO:GAMMA"):
        assert f'href="/chart/{ticker}/"' in html


def chart_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="chart-config" type="application/json">') + len(
        '<script id="chart-config" type="application/json">')
    return json.loads(html[start:html.index("</script>", start)])


def test_a_bad_tf_is_noted_on_the_page_and_the_shown_one_named(client, demo):
    response = client.get("/chart/DEMO:ALPHA/?tf=7m")
    assert response.status_code == 200
    config = chart_config(response)
    assert config["tf"] == "1m"
    assert config["tf_note"] == "7m is not a timeframe; showing 1m"
    assert 'id="tf-note"' in response.content.decode()
    assert "7m is not a timeframe; showing 1m" in response.content.decode()


def test_a_good_tf_has_no_note(client, demo):
    response = client.get("/chart/DEMO:ALPHA/?tf=5m")
    assert chart_config(response)["tf_note"] is None
    assert 'id="tf-note"' not in response.content.decode()


def test_the_page_says_where_each_timeframes_history_starts(client, make_symbol):
    from market import services
    from market.core.types import Candle, CandleUpdate

    symbol = make_symbol("DEMO:ALPHA", exchange="DEMO")
    t0 = 1_731_999_960
    services.candle_upsert_many(updates=[
        CandleUpdate("DEMO:ALPHA", "1m", Candle(t0 + 60 * i, 1, 2, 0.5, 1.5, 10, 1), True) for i in range(3)
    ] + [CandleUpdate("DEMO:ALPHA", "1h", Candle(t0 - 3600 * 5, 1, 2, 0.5, 1.5, 10, 1), True)],
        symbol_ids={"DEMO:ALPHA": symbol.pk})
    starts = chart_config(client.get("/chart/DEMO:ALPHA/"))["history_start"]
    assert starts["1m"] == t0 and starts["2m"] == t0  # 2m is derived from 1m
    assert starts["1h"] == t0 - 3600 * 5 and starts["4h"] == t0 - 3600 * 5
    assert starts["5s"] is None


# -- item 3: /pulse/ shows prices to each symbol's tick size -------------------------------------
def test_the_pulse_page_gives_each_symbols_price_decimals_from_its_tick_size(client, make_symbol):
    make_symbol("DEMO:ALPHA", exchange="DEMO", tick_size="0.05")
    make_symbol("DEMO:BETA", exchange="DEMO", tick_size="0.1")
    make_symbol("FX:EURUSD", exchange="FX", tick_size="0.00001")
    make_symbol("IDX:BIG", exchange="IDX", tick_size="1")
    html = client.get("/pulse/").content.decode()
    start = html.index('<script id="pulse-config" type="application/json">') + len(
        '<script id="pulse-config" type="application/json">')
    config = json.loads(html[start:html.index("</script>", start)])
    assert config["price_decimals"] == {"DEMO:ALPHA": 2, "DEMO:BETA": 2, "FX:EURUSD": 5, "IDX:BIG": 2}
