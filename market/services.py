"""Writes (HackSoft style: keyword-only functions named ``<entity>_<action>``)."""

from __future__ import annotations

from typing import Iterable, Mapping

from django.db import connection, transaction

from market.core.simulator import SimSymbol
from market.core.types import CandleUpdate
from market.models import Candle, FeedState, Symbol

UPSERT_BATCH = 2000
_UPSERT_SQL = (
    f"INSERT INTO {Candle._meta.db_table} "
    "(symbol_id, timeframe, time, open, high, low, close, volume, ticks) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (symbol_id, timeframe, time) DO UPDATE SET "
    "open = excluded.open, high = excluded.high, low = excluded.low, "
    "close = excluded.close, volume = excluded.volume, ticks = excluded.ticks"
)


def symbol_register(
    *, ticker: str, exchange: str, kind: str = Symbol.Kind.EQUITY, name: str = "",
    source: str = "replay", tick_size: float | None = None,
) -> tuple[Symbol, bool]:
    """Create the symbol if it is new; an existing symbol is returned unchanged.

    Returns ``(symbol, created)``.
    """
    defaults = {"exchange": exchange, "kind": kind, "name": name or ticker, "source": source}
    if tick_size is not None:
        defaults["tick_size"] = tick_size
    return Symbol.objects.get_or_create(ticker=ticker, defaults=defaults)


def symbol_ensure_demo(*, symbols: Iterable[SimSymbol]) -> list[Symbol]:
    """The simulated feed's instruments, on the round-the-clock DEMO exchange."""
    return [
        symbol_register(
            ticker=s.ticker, exchange="DEMO", name=s.name, source="simulated", tick_size=s.tick_size,
            kind=Symbol.Kind.INDEX if s.ticker.endswith("INDEX") else Symbol.Kind.EQUITY,
        )[0]
        for s in symbols
    ]


def candle_upsert_many(*, updates: Iterable[CandleUpdate], symbol_ids: Mapping[str, int]) -> int:
    """Idempotent batched upsert; the last update of a (symbol, timeframe, time) wins.

    One ``INSERT … ON CONFLICT DO UPDATE`` executed for many rows in a transaction:
    SQLite and PostgreSQL both take the statement, and it skips building model
    instances, which is most of the cost of ``bulk_create(update_conflicts=True)``.
    """
    latest: dict[tuple[int, str, int], tuple] = {}
    for u in updates:
        c = u.candle
        sid = symbol_ids[u.symbol]
        latest[(sid, u.timeframe, c.time)] = (
            sid, u.timeframe, c.time, c.open, c.high, c.low, c.close, c.volume, c.ticks,
        )
    if not latest:
        return 0
    rows = list(latest.values())
    with transaction.atomic(), connection.cursor() as cursor:
        for i in range(0, len(rows), UPSERT_BATCH):
            cursor.executemany(_UPSERT_SQL, rows[i : i + UPSERT_BATCH])
    return len(rows)


def feed_state_save(*, source: str, state: str, detail: str, heartbeat: float) -> None:
    FeedState.objects.update_or_create(
        source=source, defaults={"state": state, "detail": detail[:200], "heartbeat": heartbeat}
    )
