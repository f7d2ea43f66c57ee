"""Reads (HackSoft style). Candles come back as plain dicts, ascending by time."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, Sum

from market.conf import market
from market.core.derive import aggregate
from market.core.timeframes import BASE, Timeframe
from market.core.types import Candle as CandleValue
from market.models import Candle, FeedState, Symbol

_COLUMNS = ("time", "open", "high", "low", "close", "volume", "ticks")


def symbol_get(*, ticker: str) -> Symbol | None:
    return Symbol.objects.filter(ticker=ticker).first()


def symbol_list(*, active: bool | None = True, source: str | None = None) -> list[Symbol]:
    qs = Symbol.objects.all()
    if active is not None:
        qs = qs.filter(active=active)
    if source is not None:
        qs = qs.filter(source=source)
    return list(qs.order_by("ticker"))


def symbol_search(*, query: str, limit: int = 20) -> list[dict[str, Any]]:
    """Active symbols first; a ticker that starts with the query before one that contains it."""
    query = query.strip()
    qs = Symbol.objects.all()
    if query:
        qs = qs.filter(Q(ticker__icontains=query) | Q(name__icontains=query))
    rows = list(qs.values("ticker", "name", "exchange", "kind", "active")[: limit * 5])
    q = query.upper()

    def rank(row: dict[str, Any]) -> tuple[int, int, str]:
        ticker = row["ticker"].upper()
        bare = ticker.partition(":")[2] or ticker
        starts = 0 if bare.startswith(q) or ticker.startswith(q) else 1
        return (0 if row["active"] else 1, starts, ticker)

    return sorted(rows, key=rank)[:limit]


def _rows(symbol: Symbol, tf: Timeframe, *, start: int | None, end: int | None,
          limit: int | None, newest: bool) -> list[CandleValue]:
    qs = Candle.objects.filter(symbol=symbol, timeframe=tf.code)
    if start is not None:
        qs = qs.filter(time__gte=start)
    if end is not None:
        qs = qs.filter(time__lte=end)
    qs = qs.order_by("-time" if newest else "time").values_list(*_COLUMNS)
    if limit is not None:
        qs = qs[:limit]
    rows = [CandleValue(*row) for row in qs]
    if newest:
        rows.reverse()
    return rows


def _ratio(base: Timeframe, tf: Timeframe) -> int:
    """Most base candles one ``tf`` candle can hold."""
    return max(1, (86400 if tf.is_daily else tf.seconds) // base.seconds)


def candle_list(
    *, symbol: Symbol, tf: Timeframe, start: int | None = None, end: int | None = None,
    limit: int | None = None,
) -> list[CandleValue]:
    """Candles of ``symbol`` at any timeframe, ascending.

    With ``start``: the first ``limit`` candles from it; otherwise the newest ``limit`` at
    or before ``end``. Timeframes that are not stored are aggregated from their base.
    """
    conf = market()
    limit = conf.history_limit if limit is None else limit
    base = conf.plan.base_for(tf)
    if base == tf:
        return _rows(symbol, tf, start=start, end=end, limit=limit, newest=start is None)
    session = conf.sessions.for_exchange(symbol.exchange)
    ratio = _ratio(base, tf)
    if start is not None:
        # Buckets are anchored, so start at the bucket holding ``start``.
        first = session.day_of(start)
        aligned = first.bucket_start(tf, start) if first.contains(start) else start
        parts = _rows(symbol, base, start=aligned, end=end, limit=(limit + 1) * ratio, newest=False)
        out = list(aggregate(parts, tf, session))
        if len(parts) == (limit + 1) * ratio and out:
            out.pop()  # the last bucket may be cut by the row limit
        return out[:limit]
    fetch = (limit + 1) * ratio
    parts = _rows(symbol, base, start=None, end=end, limit=fetch, newest=True)
    out = list(aggregate(parts, tf, session))
    if len(parts) == fetch and out:
        out.pop(0)  # the oldest bucket may be cut by the row limit
    return out[-limit:]


def candle_latest_stored(*, symbol: Symbol) -> dict[Timeframe, CandleValue]:
    """The newest stored candle of each stored timeframe (for resuming the engine)."""
    out: dict[Timeframe, CandleValue] = {}
    for tf in market().plan.stored:
        rows = _rows(symbol, tf, start=None, end=None, limit=1, newest=True)
        if rows:
            out[tf] = rows[0]
    return out


def candle_day_volume(*, symbol: Symbol, label: int) -> float | None:
    """Volume already stored for the trading day labelled ``label`` (contract g baseline)."""
    session = market().sessions.for_exchange(symbol.exchange)
    day = session.day_for_label(label)
    totals = Candle.objects.filter(
        symbol=symbol, timeframe=BASE.code, time__gte=day.open, time__lt=day.close
    ).aggregate(volume=Sum("volume"), n=Count("id"))
    return float(totals["volume"] or 0.0) if totals["n"] else None


def candle_as_dict(c: CandleValue) -> dict[str, Any]:
    return {"time": c.time, "open": c.open, "high": c.high, "low": c.low,
            "close": c.close, "volume": c.volume, "ticks": c.ticks}


def feed_state_list() -> list[dict[str, Any]]:
    return list(FeedState.objects.values("source", "state", "detail", "heartbeat"))
