"""Unsubscribing near the 5,000-symbol cap, with the real fyers-apiv3 SDK against the
loopback socket server (what the server is sent is what counts).

The SDK (3.2.0) only unsubscribes symbols of its last ``subscribe`` call and drops the
others by removing them from the list it iterates, so every other one slips through; the
old work-around (subscribe them again first) is refused at the cap because the SDK counts
the already subscribed symbols again. ``FyersSocket.unsubscribe`` avoids both."""

from __future__ import annotations

import asyncio
import time

import pytest

from market.vendors.fyers.ratelimit import RateLimiter
from market.vendors.fyers.socket import ERROR, MSG, FyersSocket, Handoff
from tests.vendors.fyers.conftest import CLIENT_ID
from tests.vendors.fyers.loopback import topic_for

TICKERS = [f"NSE:S{i:04d}-EQ" for i in range(5000)]
FYTOKENS = {t: f"1010000000{10000 + i}" for i, t in enumerate(TICKERS)}


def topics(tickers: list[str]) -> set[str]:
    return {topic_for(FYTOKENS[t]) for t in tickers}


def sent(requests: list[list[str]]) -> list[str]:
    return [t for request in requests for t in request]


async def connected(tmp_path, http, ws, token) -> tuple[FyersSocket, Handoff, RateLimiter]:
    http.tokens.update(FYTOKENS)
    handoff = Handoff(asyncio.get_running_loop())
    limiter = RateLimiter(1000, 100_000)
    sock = FyersSocket(client_id=CLIENT_ID, access_token=token, handoff=handoff, log_dir=tmp_path / "log",
                       ws_url=ws.url, api_base=http.base, public_base=http.base, limiter=limiter)
    await asyncio.to_thread(sock.open)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = await handoff.get(0.2)
        if any(e.kind == MSG and isinstance(e.payload, dict) and e.payload.get("type") == "cn" for e in events):
            return sock, handoff, limiter
    raise AssertionError("no authentication answer")


async def errors(handoff: Handoff) -> list[dict]:
    await asyncio.sleep(0.3)
    return [e.payload for e in handoff.drain() if e.kind == ERROR]


@pytest.fixture
async def at_the_cap(tmp_path, http, ws, token):
    """4,990 symbols subscribed in two calls (4,980, then 10): the 20 to remove come from
    the first call, as symbols subscribed earlier than the last change always do."""
    sock, handoff, limiter = await connected(tmp_path, http, ws, token)
    await asyncio.to_thread(sock.subscribe, TICKERS[:4980])
    await asyncio.to_thread(sock.subscribe, TICKERS[4980:4990])
    assert ws.wait(lambda: len(sent(ws.subscribed)) == 4990, 20)
    handoff.drain()
    yield sock, handoff, limiter
    await asyncio.to_thread(sock.close)


async def test_the_sdk_alone_unsubscribes_only_half_at_the_cap(at_the_cap, ws):
    """The reproduction: the old work-around (subscribe again, then unsubscribe) as the SDK
    does it; the server is sent 10 of the 20."""
    sock, handoff, _ = at_the_cap
    sdk = sock._sdk
    removed = TICKERS[:20]
    await asyncio.to_thread(sdk.subscribe, symbols=removed, data_type="SymbolUpdate")
    refused = await errors(handoff)
    assert any(e.get("code") == -99 for e in refused)  # 4,990 + 20 "> 5,000": already subscribed, counted again
    await asyncio.to_thread(sdk.unsubscribe, symbols=removed, data_type="SymbolUpdate")
    assert ws.wait(lambda: len(ws.unsubscribed) == 1, 5)
    assert len(ws.unsubscribed[0]) == 10 and set(ws.unsubscribed[0]) < topics(removed)  # 10 keep streaming


async def test_fyers_socket_unsubscribes_all_of_them_at_the_cap(at_the_cap, ws, http):
    sock, handoff, limiter = at_the_cap
    looked_up = len([p for p in http.paths("POST") if p == "/data/symbol-token"])
    assert limiter.calls == looked_up == 10 + 1  # every SDK look-up took the budget (500 a call)
    removed = TICKERS[:20]
    await asyncio.to_thread(sock.unsubscribe, removed)
    assert ws.wait(lambda: len(sent(ws.unsubscribed)) == 20, 5)
    assert set(sent(ws.unsubscribed)) == topics(removed)
    assert await errors(handoff) == []
    assert limiter.calls == looked_up + 1  # one look-up, no extra subscribe
    # the SDK's bookkeeping agrees: 4,970 left, so the freed slots can be used again
    assert ws.wait(lambda: len(sock._sdk.symbol_token) == 4970, 5)
    await asyncio.to_thread(sock.subscribe, TICKERS[4990:5000] + TICKERS[:20])
    assert await errors(handoff) == []
    assert ws.wait(lambda: len(sent(ws.subscribed)) == 5020, 5)
    # and removing symbols of the last call and of older ones together works as well
    mixed = TICKERS[4990:4995] + TICKERS[100:105]
    await asyncio.to_thread(sock.unsubscribe, mixed)
    assert ws.wait(lambda: len(sent(ws.unsubscribed)) == 30, 5)
    assert set(sent(ws.unsubscribed)[20:]) == topics(mixed)
