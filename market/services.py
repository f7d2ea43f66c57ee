"""Writes (HackSoft style: keyword-only functions named ``<entity>_<action>``)."""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping

from django.db import connection, transaction

from market.core.pulse import StressEvent
from market.core.simulator import SimSymbol
from market.core.types import Candle as CandleValue
from market.core.types import CandleUpdate, WriterFenced
from market.models import Candle, FeedState, PulseEvent, Symbol, SymbolCheckpoint, WriterCheckpoint

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


def _candle_rows(updates: Iterable[CandleUpdate], symbol_ids: Mapping[str, int]) -> list[tuple]:
    """One row per (symbol, timeframe, time); the last update of each wins."""
    latest: dict[tuple[int, str, int], tuple] = {}
    for u in updates:
        c = u.candle
        sid = symbol_ids[u.symbol]
        latest[(sid, u.timeframe, c.time)] = (
            sid, u.timeframe, c.time, c.open, c.high, c.low, c.close, c.volume, c.ticks,
        )
    return list(latest.values())


def _candle_write(rows: list[tuple]) -> None:
    with connection.cursor() as cursor:
        for i in range(0, len(rows), UPSERT_BATCH):
            cursor.executemany(_UPSERT_SQL, rows[i : i + UPSERT_BATCH])


def candle_upsert_many(*, updates: Iterable[CandleUpdate], symbol_ids: Mapping[str, int]) -> int:
    """Idempotent batched upsert; the last update of a (symbol, timeframe, time) wins.

    One ``INSERT … ON CONFLICT DO UPDATE`` executed for many rows in a transaction:
    SQLite and PostgreSQL both take the statement, and it skips building model
    instances, which is most of the cost of ``bulk_create(update_conflicts=True)``.
    """
    rows = _candle_rows(updates, symbol_ids)
    if not rows:
        return 0
    with transaction.atomic():
        _candle_write(rows)
    return len(rows)


def writer_claim(*, name: str) -> int:
    """A new fencing epoch for the writer ``name``, whose lock was just taken: a writer
    still holding an older epoch can no longer store (``candle_store_checkpointed``)."""
    with transaction.atomic():
        checkpoint, _ = WriterCheckpoint.objects.select_for_update().get_or_create(name=name)
        checkpoint.epoch += 1
        checkpoint.save(update_fields=["epoch"])
        return checkpoint.epoch


def candle_store_checkpointed(
    *, updates: Iterable[CandleUpdate], symbol_ids: Mapping[str, int], writer: str, epoch: int,
    states: Mapping[str, dict], position: Any,
) -> int:
    """Candles, the engine states they came from and the input position, in one transaction.

    Raises ``WriterFenced`` (and writes nothing) when ``epoch`` is no longer the writer's:
    another runfeed took the lock, e.g. while PostgreSQL restarted under this one. The
    epoch row is locked for the transaction, so a takeover waits for a write in flight.
    """
    rows = _candle_rows(updates, symbol_ids)
    with transaction.atomic():
        current = (WriterCheckpoint.objects.select_for_update().filter(name=writer)
                   .values_list("epoch", flat=True).first())
        if current != epoch:
            raise WriterFenced(f"writer {writer!r} is now epoch {current}, not {epoch}: another runfeed took over")
        if rows:
            _candle_write(rows)
        if states:
            SymbolCheckpoint.objects.bulk_create(
                [SymbolCheckpoint(symbol_id=symbol_ids[ticker], state=state) for ticker, state in states.items()],
                update_conflicts=True, unique_fields=["symbol"], update_fields=["state"],
            )
        WriterCheckpoint.objects.filter(name=writer).update(position=position, updated=time.time())
    return len(rows)


def symbol_checkpoint_clear(*, symbol: Symbol) -> None:
    """Forget the engine state of ``symbol`` (its candles were rewritten from elsewhere)."""
    SymbolCheckpoint.objects.filter(symbol=symbol).delete()


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


def candle_import_batch(
    *, rows: Iterable[tuple], create_symbols: bool = False, source: str = "import",
) -> tuple[int, list[str]]:
    """Upsert ``(ticker, timeframe, time, open, high, low, close, volume, ticks)`` rows in one
    transaction, through the same ``INSERT … ON CONFLICT`` as the feed (idempotent: the last
    row of a (symbol, timeframe, time) wins). Returns ``(rows written, symbols created)``.

    Unknown tickers are created inactive (exchange: the ticker's prefix before ``:``, else
    ``IMPORT``) when ``create_symbols``; otherwise ``LookupError`` names them and nothing of
    this batch is written.
    """
    rows = list(rows)
    tickers = {r[0] for r in rows}
    ids = dict(Symbol.objects.filter(ticker__in=list(tickers)).values_list("ticker", "id"))
    unknown = sorted(tickers - set(ids))
    created: list[str] = []
    with transaction.atomic():
        if unknown:
            if not create_symbols:
                raise LookupError(f"unknown symbol(s): {', '.join(unknown[:20])}"
                                  + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""))
            for ticker in unknown:
                exchange = ticker.split(":", 1)[0][:16] if ":" in ticker else "IMPORT"
                symbol, _ = Symbol.objects.get_or_create(
                    ticker=ticker, defaults={"exchange": exchange, "name": ticker, "source": source, "active": False})
                ids[ticker] = symbol.id
                created.append(ticker)
        updates = [CandleUpdate(r[0], r[1], CandleValue(*r[2:]), True) for r in rows]
        written = candle_upsert_many(updates=updates, symbol_ids=ids)
    return written, created


def candle_prune(*, timeframe: str, before: int, batch: int = 10_000) -> int:
    """Delete the ``timeframe`` candles whose bucket starts before ``before``, ``batch`` rows
    per transaction (short locks, bounded WAL/journal growth); returns how many."""
    total = 0
    while True:
        with transaction.atomic():
            ids = list(Candle.objects.filter(timeframe=timeframe, time__lt=before)
                       .values_list("id", flat=True)[:batch])
            if not ids:
                return total
            Candle.objects.filter(id__in=ids).delete()
        total += len(ids)
