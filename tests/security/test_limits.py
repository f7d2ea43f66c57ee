"""Each limit at the edges (README "Limits"): WebSocket message rate, frame size and
subscriptions per socket (market.web.consumers), and HTTP requests a minute per user or
address on the history API (market.web.ratelimit).

The arithmetic is unit-tested in tests/core/test_limits.py; these pin the wiring: the
error frames and their codes, the 4429 close, other clients unaffected, 429 with
Retry-After, what a request is counted against, and the settings being honoured.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
import pytest

from tests import wsclient
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections

from market import services
from market.web import ratelimit as ratelimit_middleware
from market.live.broadcast import candles_publish
from market.conf import market
from market.core.types import Candle, CandleUpdate

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
TIMEOUT = 5
TICKER = "DEMO:ALPHA"
T0 = 1_731_999_960


def limits(settings, **overrides: Any) -> None:
    settings.MARKET = {**settings.MARKET, **overrides}
    market.cache_clear()


# -- WebSocket ---------------------------------------------------------------------------------
@pytest.fixture
async def _close_db_connections():
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


@pytest.fixture
def alpha(make_symbol, _close_db_connections):
    symbol = make_symbol(TICKER, exchange="DEMO")
    c = Candle(time=T0, open=1, high=2, low=0.5, close=1.5, volume=10, ticks=1)
    services.candle_upsert_many(updates=[CandleUpdate(TICKER, "1m", c, True)], symbol_ids={TICKER: symbol.id})
    return symbol


def ws() -> AbstractAsyncContextManager[WebsocketCommunicator]:
    return wsclient.ws(timeout=TIMEOUT)


async def replies(comm: WebsocketCommunicator, types: set[str] = frozenset({"pong", "error", "snapshot"})):
    """The next frame of one of ``types`` (status and sync frames are skipped)."""
    while True:
        out = await comm.receive_output(timeout=TIMEOUT)
        if out["type"] == "websocket.close":
            return out
        msg = orjson.loads(out["text"])
        if msg["type"] in types:
            return msg


async def subscribe(comm: WebsocketCommunicator, tf: str = "1m") -> dict:
    await comm.send_json_to({"type": "subscribe", "symbol": TICKER, "tf": tf})
    reply = await replies(comm)
    assert reply["type"] == "snapshot", reply
    return reply


async def publish_candle(close: float) -> None:
    c = Candle(time=T0 + 60, open=1, high=9, low=0.5, close=close, volume=20, ticks=2)
    await candles_publish(get_channel_layer(), [CandleUpdate(TICKER, "1m", c, False)])


async def next_candle(comm: WebsocketCommunicator) -> dict:
    return await replies(comm, {"candle"})


pytestmark = pytest.mark.django_db(transaction=True)


async def test_flooding_client_is_told_then_closed_4429_and_other_clients_keep_their_candles(alpha, settings):
    # A slow refill (one token in 1000 s): the verdicts do not depend on how fast this runs.
    limits(settings, WS_MESSAGES_PER_SECOND=0.001, WS_MESSAGE_BURST=3, WS_STRIKES_TO_CLOSE=3,
           WS_STRIKE_WINDOW=3600)
    async with ws() as calm, ws() as flood:
        await subscribe(calm)
        for _ in range(8):
            await flood.send_json_to({"type": "ping"})
        got = [await replies(flood) for _ in range(6)]
        assert got[:3] == [{"type": "pong"}] * 3
        assert [g.get("code") for g in got[3:5]] == ["rate_limited", "rate_limited"]
        assert all(g["type"] == "error" and "at most 0.001 a second" in g["message"] for g in got[3:5])
        assert got[5]["code"] == "rate_limited" and "closing" in got[5]["message"]
        closed = await flood.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4429}
        # What was still in flight got nothing more.
        assert await flood.receive_nothing(timeout=0.2)
        # The well-behaved client is unaffected.
        await publish_candle(close=7.0)
        assert (await next_candle(calm))["candle"]["close"] == 7.0
        await calm.send_json_to({"type": "ping"})
        assert await replies(calm) == {"type": "pong"}


async def test_messages_within_the_burst_are_all_served(alpha, settings):
    limits(settings, WS_MESSAGES_PER_SECOND=0.001, WS_MESSAGE_BURST=5, WS_STRIKES_TO_CLOSE=1)
    async with ws() as comm:
        for _ in range(5):
            await comm.send_json_to({"type": "ping"})
        assert [await replies(comm) for _ in range(5)] == [{"type": "pong"}] * 5


async def test_frame_over_the_byte_limit_is_refused_with_its_code_and_counts_as_a_strike(alpha, settings):
    limits(settings, WS_MAX_FRAME_BYTES=200, WS_STRIKES_TO_CLOSE=2, WS_STRIKE_WINDOW=3600)
    async with ws() as comm:
        await comm.send_to(text_data='{"type":"ping","pad":"%s"}' % ("x" * 300))
        reply = await replies(comm)
        assert reply == {"type": "error", "message": "message larger than 200 bytes", "code": "frame_too_large"}
        await comm.send_json_to({"type": "ping"})  # not a strike
        assert await replies(comm) == {"type": "pong"}
        await comm.send_to(bytes_data=b"\x00" * 201)  # binary frames count too
        reply = await replies(comm)
        assert reply["code"] == "frame_too_large" and "closing" in reply["message"]
        assert await comm.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4429}


async def test_frame_size_counts_utf8_bytes_not_characters(alpha, settings):
    limits(settings, WS_MAX_FRAME_BYTES=4096)
    # 2,100 characters, 4,200+ bytes: once let through because len() counts characters.
    payload = '{"type":"ping","pad":"%s"}' % ("\u00e9" * 2100)
    assert len(payload) < 4096 < len(payload.encode())
    async with ws() as comm:
        await comm.send_to(text_data=payload)
        assert (await replies(comm))["code"] == "frame_too_large"
        small = '{"type":"ping","pad":"%s"}' % ("\u00e9" * 1000)
        await comm.send_to(text_data=small)
        assert await replies(comm) == {"type": "pong"}


async def test_subscriptions_per_socket_is_a_setting(alpha, settings):
    limits(settings, WS_MAX_SUBSCRIPTIONS=2)
    async with ws() as comm:
        await subscribe(comm, "1m")
        await subscribe(comm, "2m")
        await comm.send_json_to({"type": "subscribe", "symbol": TICKER, "tf": "5m"})
        reply = await replies(comm)
        assert reply["type"] == "error" and reply["code"] == "too_many_subscriptions"
        assert "at most 2 subscriptions" in reply["message"]
        await subscribe(comm, "1m")  # one already held is not a third
        # and the two held still stream
        await publish_candle(close=3.0)
        assert (await next_candle(comm))["candle"]["close"] == 3.0


async def test_default_limits_are_documented_values(db):
    conf = market()
    assert (conf.ws_messages_per_second, conf.ws_message_burst) == (20, 60)
    assert (conf.ws_max_frame_bytes, conf.ws_max_subscriptions) == (4096, 50)
    assert (conf.ws_strikes_to_close, conf.ws_strike_window) == (10, 10)
    assert conf.http_rate_per_minute == 120
    # A page re-subscribes its watchlist after a reconnect: the burst must let it.
    assert conf.ws_message_burst > conf.ws_max_subscriptions


# -- HTTP ----------------------------------------------------------------------------------------
class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock(1_800_000_000.0)  # a minute boundary
    monkeypatch.setattr(ratelimit_middleware, "clock", c)
    return c


def http_limits(settings, per_minute: int = 3, **extra: Any) -> None:
    limits(settings, HTTP_RATE_PER_MINUTE=per_minute, **extra)


@pytest.mark.django_db
def test_http_over_the_limit_gets_429_json_with_retry_after(client, settings, clock):
    http_limits(settings)
    statuses = [client.get("/api/symbols", {"q": "a"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = client.get("/api/symbols", {"q": "a"})
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    body = refused.json()
    assert body["code"] == "rate_limited" and "3 a minute" in body["error"]
    retry = int(refused["Retry-After"])
    assert retry >= 1
    # Refused requests do not count: once Retry-After has passed, it is served.
    clock.now += retry - 1
    assert client.get("/api/symbols", {"q": "a"}).status_code == 429
    clock.now += 1
    assert client.get("/api/symbols", {"q": "a"}).status_code == 200


@pytest.mark.django_db
def test_http_candles_and_symbols_share_one_budget(client, settings, clock):
    http_limits(settings)
    assert client.get("/api/candles").status_code == 400  # a bad request still counts
    assert client.get("/api/symbols").status_code == 200
    assert client.get("/api/candles", {"symbol": "NSE:NOPE-EQ"}).status_code == 404
    assert client.get("/api/symbols").status_code == 429
    assert client.get("/api/candles").status_code == 429


@pytest.mark.django_db
def test_http_other_paths_are_not_limited(client, settings, clock):
    http_limits(settings, per_minute=1)
    client.get("/api/symbols")
    assert client.get("/api/symbols").status_code == 429
    assert all(client.get("/healthz").status_code == 200 for _ in range(3))


@pytest.mark.django_db
def test_http_zero_turns_the_limit_off(client, settings, clock):
    http_limits(settings, per_minute=0)
    assert {client.get("/api/symbols").status_code for _ in range(20)} == {200}


@pytest.mark.django_db
def test_http_anonymous_clients_are_counted_per_address(client, settings, clock):
    http_limits(settings, per_minute=1)
    assert client.get("/api/symbols", REMOTE_ADDR="198.51.100.1").status_code == 200
    assert client.get("/api/symbols", REMOTE_ADDR="198.51.100.1").status_code == 429
    assert client.get("/api/symbols", REMOTE_ADDR="198.51.100.2").status_code == 200


@pytest.mark.django_db
def test_http_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(client, settings, clock):
    http_limits(settings, per_minute=1)
    assert client.get("/api/symbols", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code == 200
    # A client cannot buy a fresh budget by making up a header.
    assert client.get("/api/symbols", HTTP_X_FORWARDED_FOR="203.0.113.2").status_code == 429


@pytest.mark.django_db
def test_http_behind_a_trusted_proxy_the_forwarded_client_is_counted(client, settings, clock):
    http_limits(settings, per_minute=1, TRUSTED_PROXIES=["127.0.0.1"])
    # nginx's $proxy_add_x_forwarded_for: whatever the client sent, then its real address.
    assert client.get("/api/symbols", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.1").status_code == 200
    assert client.get("/api/symbols", HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.1").status_code == 429
    assert client.get("/api/symbols", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.2").status_code == 200


@pytest.mark.django_db
def test_http_signed_in_users_are_counted_per_user_not_per_address(client, settings, clock, django_user_model):
    http_limits(settings, per_minute=1)
    alice = django_user_model.objects.create_user("alice", password="pw-alice-123")
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123")
    client.force_login(alice)
    assert client.get("/api/symbols").status_code == 200
    assert client.get("/api/symbols", REMOTE_ADDR="198.51.100.9").status_code == 429  # same user, new address
    client.force_login(bob)
    assert client.get("/api/symbols").status_code == 200  # same address, other user
    client.logout()
    assert client.get("/api/symbols").status_code == 200  # anonymous from 127.0.0.1: its own budget


@pytest.mark.django_db
def test_http_token_callers_are_counted_per_user_from_any_address(client, settings, clock, django_user_model):
    from market import tokens

    http_limits(settings, per_minute=1)
    carol = django_user_model.objects.create_user("carol", password="pw-carol-123")
    _, secret = tokens.api_token_create(user=carol, name="notebook")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/symbols", REMOTE_ADDR="198.51.100.20", **auth).status_code == 200
    assert client.get("/api/symbols", REMOTE_ADDR="198.51.100.21", **auth).status_code == 429
    # A made-up token buys no budget of its own: it is counted by address, then refused.
    bad = {"HTTP_AUTHORIZATION": "Bearer tc_not-a-real-token"}
    assert client.get("/api/symbols", REMOTE_ADDR="198.51.100.22", **bad).status_code == 401
    assert client.get("/api/symbols", REMOTE_ADDR="198.51.100.22", **bad).status_code == 429


@pytest.mark.django_db
def test_http_cache_failure_lets_requests_through_and_logs(client, settings, clock, caplog):
    http_limits(settings, per_minute=1, HTTP_RATE_CACHE="no-such-cache")
    with caplog.at_level(logging.WARNING, logger="market.web.ratelimit"):
        assert [client.get("/api/symbols").status_code for _ in range(3)] == [200, 200, 200]
    assert "rate limit cache 'no-such-cache' failed" in caplog.text


def test_http_counts_are_shared_through_redis_between_processes(redis_url, settings, clock):
    """With REDIS_URL the counts live in Redis: what another web process counted (here, a
    separate Redis client writing the same counter) refuses this one's requests."""
    import redis
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache
    from django.http import HttpResponse
    from django.test import RequestFactory

    prefix = "tc-test-limits"
    conf = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": prefix}
    settings.CACHES = {**settings.CACHES, "ratelimit": conf}
    http_limits(settings, per_minute=3)
    assert isinstance(caches["ratelimit"], RedisCache)
    middleware = ratelimit_middleware.RateLimitMiddleware(lambda request: HttpResponse("ok"))
    request = RequestFactory().get("/api/symbols", REMOTE_ADDR="192.0.2.77")
    other = redis.Redis.from_url(redis_url)
    try:
        assert middleware(request).status_code == 200
        keys = [k for k in other.scan_iter(f"{prefix}:*192.0.2.77*")]
        assert len(keys) == 1 and int(other.get(keys[0])) == 1
        other.set(keys[0], 3, keepttl=True)  # the other processes used the rest of the budget
        assert middleware(request).status_code == 429
    finally:
        for key in other.scan_iter(f"{prefix}:*"):
            other.delete(key)
        other.close()
        caches["ratelimit"].close()
