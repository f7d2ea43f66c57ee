"""Writes (HackSoft style: keyword-only functions named ``<entity>_<action>``)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from django.db import connection, transaction

from market.core.pulse import StressEvent
from market.core.simulator import SimSymbol
from market.core.types import CandleUpdate
from market.models import Candle, FeedState, PulseEvent, Symbol

UPSERT_BATCH = 2000
SYMBOL_BATCH = 1000
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


def symbol_upsert_many(*, values: Mapping[str, Mapping[str, Any]]) -> tuple[int, int]:
    """Upsert symbols by ticker (``values``: ticker -> field values, the same fields for
    each); returns ``(created, updated)``. New symbols start inactive, existing ones keep
    their ``active`` flag and are written only where a field differs."""
    created = updated = 0
    tickers = list(values)
    fields = list(next(iter(values.values()), {}))
    with transaction.atomic():
        for i in range(0, len(tickers), SYMBOL_BATCH):
            chunk = tickers[i:i + SYMBOL_BATCH]
            existing = {s.ticker: s for s in Symbol.objects.filter(ticker__in=chunk)}
            new, changed = [], []
            for ticker in chunk:
                row = values[ticker]
                symbol = existing.get(ticker)
                if symbol is None:
                    new.append(Symbol(ticker=ticker, active=False, **row))
                    continue
                if any(_differs(getattr(symbol, k), v) for k, v in row.items()):
                    for k, v in row.items():
                        setattr(symbol, k, v)
                    changed.append(symbol)
            Symbol.objects.bulk_create(new, batch_size=SYMBOL_BATCH)
            if changed:
                Symbol.objects.bulk_update(changed, fields, batch_size=SYMBOL_BATCH)
            created += len(new)
            updated += len(changed)
    return created, updated


def _differs(a: object, b: object) -> bool:
    try:
        return float(a) != float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return a != b


def symbol_set_active(*, symbol: Symbol, active: bool) -> None:
    """Stream ``symbol`` or stop (the row only; ``symbol`` itself is left as it was)."""
    Symbol.objects.filter(pk=symbol.pk).update(active=active)


def symbol_activate_many(*, tickers: Iterable[str], source: str) -> int:
    """Activate the known ``tickers`` for ``source``; returns how many there were."""
    return Symbol.objects.filter(ticker__in=list(tickers)).update(active=True, source=source)


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


def pulse_event_create_many(*, events: Iterable[StressEvent]) -> int:
    """Store Market Pulse stress events (texts cut to their columns); returns how many."""
    rows = [PulseEvent(symbol=e.symbol[:64], asset_class=e.asset_class[:16], kind=e.kind, time=e.time,
                       value=e.value, threshold=e.threshold, message=e.message[:200]) for e in events]
    PulseEvent.objects.bulk_create(rows)
    return len(rows)
