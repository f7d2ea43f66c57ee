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
