"""Synthetic Fyers data-socket sessions: decoded messages shaped exactly like fyers-apiv3's.

Used to make replay files for tests, benchmarks and demos without a broker. Messages
follow the SDK's behaviour: an auth message first, full-mode snapshots whose
``vol_traded_today`` is cumulative, and re-sent cached state (repeats) when only a
bid changes.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, Iterator
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")


def session_open(date: dt.date) -> int:
    """09:15 IST of ``date`` in epoch seconds."""
    return int(dt.datetime.combine(date, dt.time(9, 15), tzinfo=IST).timestamp())


def fyers_session(
    *,
    symbols: int = 10,
    messages: int = 10_000,
    date: dt.date = dt.date(2026, 11, 20),
    seed: int = 1,
    repeat_every: int = 10,
    indices: int = 1,
    rate: float = 2.0,
) -> Iterator[dict[str, Any]]:
    """``messages`` market messages for ``symbols`` NSE equities and ``indices`` indices.

    ``rate`` is messages per second per instrument (exchange time), capped so the
    session fits between 09:15 and 15:30.
    """
    rng = random.Random(seed)
    start = session_open(date)
    tickers = [f"NSE:SYM{i:04d}-EQ" for i in range(symbols)]
    index_tickers = [f"NSE:IDX{i}-INDEX" for i in range(indices)]
    price = {t: 100.0 + 10 * i for i, t in enumerate(tickers + index_tickers)}
    volume = {t: 0 for t in tickers}
    yield {"type": "cn", "code": 200, "message": "Authentication done", "s": "ok"}
    yield {"type": "ful", "code": 200, "message": "Full Mode On", "s": "ok"}
    every = tickers + index_tickers
    last: dict[str, dict[str, Any]] = {}
    span = min(6 * 3600, int(messages / (len(tickers + index_tickers) * rate)) + 1)
    for n in range(messages):
        t = start + (n * span) // max(messages, 1)
        ticker = every[rng.randrange(len(every))]
        if repeat_every and n % repeat_every == repeat_every - 1 and ticker in last:
            again = dict(last[ticker])
            if again["type"] == "sf":
                again["bid_price"] = round(again["bid_price"] - 0.05, 2)
            yield again
            continue
        price[ticker] = max(1.0, round(price[ticker] * (1 + rng.gauss(0, 0.001)), 2))
        p = price[ticker]
        if ticker in volume:
            volume[ticker] += rng.randint(1, 500)
            msg: dict[str, Any] = {
                "ltp": p, "vol_traded_today": volume[ticker], "last_traded_time": t,
                "exch_feed_time": t, "bid_size": 100, "ask_size": 120,
                "bid_price": round(p - 0.05, 2), "ask_price": round(p + 0.05, 2),
                "last_traded_qty": 10, "tot_buy_qty": 1000, "tot_sell_qty": 900,
                "avg_trade_price": p, "low_price": p, "high_price": p,
                "lower_ckt": 0, "upper_ckt": 0, "open_price": p, "prev_close_price": p,
                "type": "sf", "symbol": ticker, "ch": 0.0, "chp": 0.0,
            }
        else:
            msg = {
                "ltp": p, "prev_close_price": p, "exch_feed_time": t, "high_price": p,
                "low_price": p, "open_price": p, "type": "if", "symbol": ticker, "ch": 0.0, "chp": 0.0,
            }
        last[ticker] = msg
        yield msg
