"""SDK thread → asyncio hand-off: bounded, never blocks the producer, overflow counted;
and the message types the SDK emits, through the same parser the replay feed uses."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from market.vendors.fyers import messages as fyers_messages
from market.core.types import Reject, Tick
from market.vendors.fyers.socket import MSG, Event, Handoff


async def test_messages_from_another_thread_arrive_in_order_in_batches():
    handoff = Handoff(asyncio.get_running_loop(), maxsize=10_000)

    def produce():
        for i in range(5000):
            handoff.put(Event(MSG, 1, i))

    thread = threading.Thread(target=produce)
    thread.start()
    got: list[int] = []
    while len(got) < 5000:
        got += [e.payload for e in await handoff.get(timeout=2)]
    thread.join()
    assert got == list(range(5000)) and handoff.dropped == 0


async def test_a_burst_beyond_the_bound_drops_the_oldest_counts_it_and_never_blocks():
    handoff = Handoff(asyncio.get_running_loop(), maxsize=100)
    started = time.perf_counter()
    thread = threading.Thread(target=lambda: [handoff.put(Event(MSG, 1, i)) for i in range(100_000)])
    thread.start()
    thread.join(5)
    took = time.perf_counter() - started
    assert not thread.is_alive() and took < 2.0  # the loop never ran meanwhile: the producer did not wait
    assert len(handoff) == 100 and handoff.dropped == 99_900 and handoff.high_water == 100
    batch = await handoff.get(timeout=1)
    assert [e.payload for e in batch] == list(range(99_900, 100_000))  # the newest state survives
    assert await handoff.get(timeout=0.05) == []


async def test_only_one_wake_up_is_pending_at_a_time():
    loop = asyncio.get_running_loop()
    calls = 0
    original = loop.call_soon_threadsafe

    def counting(cb, *args):
        nonlocal calls
        calls += 1
        return original(cb, *args)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    try:
        handoff = Handoff(loop, maxsize=1000)
        for i in range(500):
            handoff.put(Event(MSG, 1, i))
        assert calls == 1  # the loop's own queue does not grow with the burst
        await handoff.get(timeout=1)
        handoff.put(Event(MSG, 1, 0))
        assert calls == 2
    finally:
        del loop.call_soon_threadsafe


def test_bad_bound_refused():
    with pytest.raises(ValueError):
        Handoff(asyncio.new_event_loop(), maxsize=0)


# What fyers-apiv3 3.2.0 hands to on_message / on_error (shapes from its source).
SDK_MESSAGES = [
    ({"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"}, None),
    ({"type": "ful", "code": 200, "message": "Full Mode On", "s": "ok"}, None),
    ({"type": "sub", "code": 200, "message": "Subscribed", "s": "ok"}, None),
    ({"type": "unsub", "code": 200, "message": "Unsubscribed", "s": "ok"}, None),
    ({"type": "cp", "code": 200, "message": "Channel Paused", "s": "ok"}, None),
    ({"type": "dp", "bid_price1": 812.4, "ask_price1": 812.5, "bid_size1": 10, "symbol": "NSE:SBIN-EQ"}, None),
    ({"ltp": 812.5, "symbol": "NSE:SBIN-EQ", "type": "sf"}, Reject.NO_TIME),  # lite mode: no time, no volume
    ({"ltp": 24350.1, "prev_close_price": 24300.0, "exch_feed_time": 1795435977, "high_price": 24400.0,
      "low_price": 24200.0, "open_price": 24310.0, "type": "if", "symbol": "NSE:NIFTY50-INDEX",
      "ch": 50.1, "chp": 0.21}, Tick("NSE:NIFTY50-INDEX", 1795435977, 24350.1)),
    ({"ltp": 812.5, "vol_traded_today": 10423911, "last_traded_time": 1795435976, "exch_feed_time": 1795435977,
      "type": "sf", "symbol": "NSE:SBIN-EQ"}, Tick("NSE:SBIN-EQ", 1795435977, 812.5, 10423911, 1795435976)),
    ({"type": "error", "code": -300, "message": "Please provide valid token", "s": "error"}, None),
    ({"type": "msg", "code": 51001, "message": "Symbol limit exceeded", "s": "error"}, Reject.MALFORMED),
]


@pytest.mark.parametrize("message,expected", SDK_MESSAGES)
def test_every_sdk_message_type_through_the_shared_parser(message, expected):
    assert fyers_messages.parse(message) == expected
