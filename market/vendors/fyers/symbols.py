"""Symbol master records into ``Symbol`` rows (the write side of ``import_symbols``)."""

from __future__ import annotations

from typing import Iterable

from market import services
from market.vendors.fyers.symbol_master import SymbolRecord


def symbol_import(*, records: Iterable[SymbolRecord], source: str = "fyers") -> tuple[int, int]:
    """Upsert by ticker; returns ``(created, updated)``. New symbols start inactive (a
    master file has thousands; activate what you want streamed), existing ones keep
    their ``active`` flag."""
    values = {r.ticker: {"name": r.name, "exchange": r.exchange, "kind": r.kind, "tick_size": r.tick_size,
                         "lot_size": r.lot_size, "isin": r.isin, "fytoken": r.fytoken,
                         "trading_session": r.trading_session, "source": source}
              for r in records}
    return services.symbol_upsert_many(values=values)
