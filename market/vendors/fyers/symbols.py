"""Symbol master records into ``Symbol`` rows (the write side of ``import_symbols``)."""

from __future__ import annotations

from typing import Iterable

from django.db import transaction

from market.vendors.fyers.symbol_master import SymbolRecord
from market.models import Symbol

FIELDS = ("name", "exchange", "kind", "tick_size", "lot_size", "isin", "fytoken", "trading_session", "source")
BATCH = 1000


def symbol_import(*, records: Iterable[SymbolRecord], source: str = "fyers") -> tuple[int, int]:
    """Upsert by ticker; returns ``(created, updated)``. New symbols start inactive (a
    master file has thousands; activate what you want streamed), existing ones keep
    their ``active`` flag."""
    by_ticker = {r.ticker: r for r in records}
    created = updated = 0
    tickers = list(by_ticker)
    with transaction.atomic():
        for i in range(0, len(tickers), BATCH):
            chunk = tickers[i:i + BATCH]
            existing = {s.ticker: s for s in Symbol.objects.filter(ticker__in=chunk)}
            new, changed = [], []
            for ticker in chunk:
                r = by_ticker[ticker]
                values = {"name": r.name, "exchange": r.exchange, "kind": r.kind, "tick_size": r.tick_size,
                          "lot_size": r.lot_size, "isin": r.isin, "fytoken": r.fytoken,
                          "trading_session": r.trading_session, "source": source}
                symbol = existing.get(ticker)
                if symbol is None:
                    new.append(Symbol(ticker=ticker, active=False, **values))
                    continue
                if any(_differs(getattr(symbol, k), v) for k, v in values.items()):
                    for k, v in values.items():
                        setattr(symbol, k, v)
                    changed.append(symbol)
            Symbol.objects.bulk_create(new, batch_size=BATCH)
            if changed:
                Symbol.objects.bulk_update(changed, FIELDS, batch_size=BATCH)
            created += len(new)
            updated += len(changed)
    return created, updated


def _differs(a: object, b: object) -> bool:
    try:
        return float(a) != float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return a != b
