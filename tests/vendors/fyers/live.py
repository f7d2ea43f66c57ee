"""Helpers for tests that run the real feed + SDK against the loopback servers."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from channels.db import database_sync_to_async

from market.models import Candle, Symbol
from tests.vendors.fyers.loopback import FyersWS, equity_frame, topic_for

TOKENS = {"NSE:SBIN-EQ": "10100000003045", "NSE:TCS-EQ": "10100000011536", "NSE:INFY-EQ": "10100000001594"}


def make_symbols(*tickers: str, active: bool = True) -> list[Symbol]:
    return [Symbol.objects.create(ticker=t, exchange="NSE", name=t, source="fyers", active=active) for t in tickers]


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> float:
    """Seconds until ``predicate()`` held; fails the test after ``timeout``."""
    started = time.monotonic()
    check = database_sync_to_async(predicate)  # predicates may read the database
    while time.monotonic() - started < timeout:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


class Market:
    """A tiny broker: per symbol a price and a cumulative day volume (reset at 00:00 UTC, the
    trading day of the round-the-clock sessions these tests use), sent as SDK binary frames."""

    def __init__(self, ws: FyersWS) -> None:
        self.ws = ws
        self.topic_ids: dict[str, int] = {}
        self.volume: dict[str, int] = {}
        self.number = 0
        ws.on_subscribe = self.on_subscribe
        self.snapshot_price: dict[str, float] = {}
        self.snapshot_time: dict[str, int] = {}
        self.day: dict[str, int] = {}

    def day_volume(self, ticker: str, t: int, qty: int = 0) -> int:
        """Like vol_traded_today: a new day starts from zero (a test run just after midnight
        UTC sees yesterday's snapshot, then today's trades)."""
        day = t // 86400
        if self.day.setdefault(ticker, day) < day:
            self.volume[ticker] = 0
            self.day[ticker] = day
        self.volume[ticker] = self.volume.get(ticker, 1000) + qty
        return self.volume[ticker]

    def on_subscribe(self, topics: list[str]) -> list[bytes]:
        """Like Fyers: a snapshot of each newly subscribed topic (its last state)."""
        out = []
        for topic in topics:
            self.topic_ids.setdefault(topic, len(self.topic_ids) + 1)
            ticker = next(t for t, tok in TOKENS.items() if topic_for(tok) == topic)
            price = self.snapshot_price.get(ticker, 100.0)
            self.number += 1
            t = self.snapshot_time.get(ticker, int(time.time()) - 600)
            out.append(equity_frame(self.topic_ids[topic], topic, ltp=price, volume=self.day_volume(ticker, t),
                                    t=t, snapshot=True, message_number=self.number))
        return out

    def trade(self, ticker: str, price: float, qty: int, t: int) -> None:
        topic = topic_for(TOKENS[ticker])
        volume = self.day_volume(ticker, t, qty)
        self.number += 1
        self.ws.send(equity_frame(self.topic_ids[topic], topic, ltp=price, volume=volume, t=t,
                                  snapshot=False, message_number=self.number))


def candles(ticker: str, tf: str) -> list[tuple]:
    return list(Candle.objects.filter(symbol__ticker=ticker, timeframe=tf).order_by("time")
                .values_list("time", "open", "high", "low", "close", "volume"))


async def db(fn, *args, **kwargs):
    return await database_sync_to_async(fn)(*args, **kwargs)
