"""The writer's price-alert hot path (``AlertBook``) against a brute-force evaluation.

Random walks on a 0.05 price grid with levels on the same grid (so ticks land exactly on
levels), every operator, ``once`` and ``once_per_bar``, expiries, and ``above`` alerts
(evaluated on every tick) on some symbols: the book, with its level index and quiet bands,
must fire exactly the events a plain loop over every tick and every alert fires.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from market.core.engine import CandleEngine
from market.core.sessions import DEFAULT_SESSIONS, SessionBook
from market.core.timeframes import DEFAULT_STORED, Timeframe
from market.core.types import Tick
from market.feed.alerting import AlertBook

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
OPEN = int(dt.datetime(2026, 11, 20, 9, 15, tzinfo=IST).timestamp())
OPS = ("crosses_above", "crosses_below", "crosses")


def crossed(op: str, prev: float, price: float, level: float) -> bool:
    up, down = prev < level <= price, prev > level >= price
    return {"crosses_above": up, "crosses_below": down, "crosses": up or down,
            "above": price > level, "below": price < level}[op]


def brute_force(rows: list[dict], ticks: list[Tick]) -> list[str]:
    """Each alert on its own: the first tick after creation arms it; once_per_bar fires at
    most once per 1m bar; once fires once; nothing at or after its expiry."""
    fired = []
    for row in rows:
        prev, bars, done = None, set(), False
        for tick in ticks:
            if tick.symbol != row["symbol"] or done:
                continue
            if row["expires"] is not None and tick.time >= row["expires"]:
                break
            bar = OPEN + (tick.time - OPEN) // 60 * 60
            armed, prev = prev, tick.price
            if armed is None and row["op"] in OPS:
                continue
            if crossed(row["op"], armed if armed is not None else tick.price, tick.price, row["right"]) \
                    and bar not in bars:
                fired.append(f"{row['id']}@{tick.time}")
                bars.add(bar)
                done = row["trigger"] == "once"
    return sorted(fired)


@pytest.mark.parametrize("seed", range(6))
def test_the_book_fires_what_a_plain_loop_over_every_alert_fires(seed):
    rng = random.Random(seed)
    symbols = [f"NSE:T{i}-EQ" for i in range(5)]
    rows, pk = [], 0
    for k, symbol in enumerate(symbols):
        for _ in range(rng.randrange(3, 12)):
            pk += 1
            op = rng.choice(OPS + (("above",) if k == 4 else ()))  # T4 also has per-tick alerts
            rows.append({"id": pk, "symbol": symbol, "tf": "1m", "left": "price", "op": op,
                         "right": round(100 + rng.randrange(-20, 21) * 0.05, 2),
                         "trigger": rng.choice(("once", "once_per_bar")), "bars": 1,
                         "expires": OPEN + rng.randrange(200, 2000) if rng.random() < 0.3 else None,
                         "message": "", "state": {}})
    prices = {s: 100.0 for s in symbols}
    ticks = []
    for i in range(6000):
        s = rng.choice(symbols)
        prices[s] = round(prices[s] + rng.choice((-0.05, 0.0, 0.05, 0.1, -0.1)), 2)
        ticks.append(Tick(s, OPEN + i // 3, prices[s], float(1000 + i)))

    stored = [Timeframe.parse(c) for c in DEFAULT_STORED]
    engine = CandleEngine(stored, SessionBook.from_config(DEFAULT_SESSIONS))
    for s in symbols:
        engine.register(s, "NSE")
    book = AlertBook(session_of=engine.session_of, stored={tf.code for tf in stored})
    book.load(rows)
    got = []
    for n, tick in enumerate(ticks):
        book(tick)
        if n % 500 == 499:  # as each store does: the pending events go, the states are synced
            got += [e.id for e, _ in book.pending]
            book.pending.clear()
            book.sync_states()
    got += [e.id for e, _ in book.pending]
    want = brute_force(rows, ticks)
    assert len(want) > 20  # the walk does cross the levels, on them too
    assert sorted(got) == want


def test_a_checkpoint_writes_only_the_states_that_changed_and_carries_a_failed_one():
    stored = [Timeframe.parse(c) for c in DEFAULT_STORED]
    engine = CandleEngine(stored, SessionBook.from_config(DEFAULT_SESSIONS))
    for s in ("NSE:A-EQ", "NSE:B-EQ"):
        engine.register(s, "NSE")
    book = AlertBook(session_of=engine.session_of, stored={tf.code for tf in stored})
    rows = [{"id": pk, "symbol": symbol, "tf": "1m", "left": "price", "op": "crosses", "right": 101.0,
             "trigger": "once_per_bar", "bars": 1, "expires": None, "message": "", "state": {}}
            for pk, symbol in ((1, "NSE:A-EQ"), (2, "NSE:A-EQ"), (3, "NSE:B-EQ"))]
    book.load(rows)

    def checkpoint():
        return book.checkpoint([], book.snapshot_ticks())

    assert checkpoint()["states"] == {}  # as loaded: nothing to write
    book(Tick("NSE:A-EQ", OPEN, 100.0, 1.0))  # arms A's two
    cp = checkpoint()
    assert set(cp["states"]) == {1, 2}
    book.stored(cp, len(cp["events"]))
    assert checkpoint()["states"] == {}
    book(Tick("NSE:B-EQ", OPEN + 1, 100.0, 1.0))
    assert set(checkpoint()["states"]) == {3}
    assert set(checkpoint()["states"]) == {3}  # that store failed (stored() never came): again
    book(Tick("NSE:A-EQ", OPEN + 2, 102.0, 2.0))  # crosses 101: fires both of A's
    cp = checkpoint()
    assert set(cp["states"]) == {1, 2, 3} and len(cp["events"]) == 2
