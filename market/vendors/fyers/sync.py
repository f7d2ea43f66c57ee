"""History into the database: back-fill, gap repair and reconciliation (the Django edge).

Every write is an idempotent upsert through ``services.candle_upsert_many`` and returns
the ``CandleUpdate``s (``final=True``) so callers publish them to browsers.
The decisions (what is closed, what differs) live in ``market.vendors.fyers.reconcile``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Container, Iterable, Mapping

from market import selectors, services
from market.conf import market
from market.core.sessions import Session
from market.core.timeframes import BASE, Timeframe
from market.core.types import Candle, CandleUpdate
from market.vendors.fyers.history import (
    DAY, SECONDS_HISTORY_DAYS, BudgetExhausted, Converted, HistoryClient, HistoryError, TokenRejected,
)
from market.vendors.fyers.reconcile import bucket_of, corrections, rederive

if TYPE_CHECKING:
    from market.models import Symbol

logger = logging.getLogger("market.fyers")

MINUTE = Timeframe.parse("1m")  # the fallback when 5S history is refused or empty


@dataclass
class SyncResult:
    requests: int = 0
    updates: list[CandleUpdate] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    resolution: str | None = None   # which history filled the intraday gap: "5s", "1m" or None

    def add(self, other: "SyncResult") -> None:
        self.requests += other.requests
        self.updates += other.updates
        for k, n in other.skipped.items():
            self.skipped[k] = self.skipped.get(k, 0) + n


def write(symbol: Symbol, tf: Timeframe, candles: Iterable[Candle]) -> list[CandleUpdate]:
    updates = [CandleUpdate(symbol.ticker, tf.code, c, True) for c in candles]
    if updates:
        services.candle_upsert_many(updates=updates, symbol_ids={symbol.ticker: symbol.pk})
    return updates


def _session(symbol: Symbol) -> Session:
    return market().sessions.for_exchange(symbol.exchange)


def apply(
    symbol: Symbol, tf: Timeframe, fetched: Converted, *, start: int, end: int, closed_before: float,
    skip: Container[int] = (),
) -> list[CandleUpdate]:
    """Write the fetched bars that differ from ours (database only; no HTTP)."""
    session = _session(symbol)
    lo = min((c.time for c in fetched.candles), default=start)
    ours = selectors.candle_stored_range(symbol=symbol, tf=tf, start=min(lo, start), end=end)
    return write(symbol, tf, corrections(ours, fetched.candles, tf=tf, session=session,
                                         closed_before=closed_before, skip=skip))


def sync_timeframe(
    client: HistoryClient, symbol: Symbol, tf: Timeframe, start: int, end: int, *, closed_before: float,
    skip: Container[int] = (),
) -> SyncResult:
    """Fetch ``[start, end)`` of ``tf`` and write what differs, for buckets closed by ``closed_before``."""
    before = client.requests
    fetched = client.fetch(symbol.ticker, tf, start, end, _session(symbol))
    updates = apply(symbol, tf, fetched, start=start, end=end, closed_before=closed_before, skip=skip)
    return SyncResult(client.requests - before, updates, dict(fetched.skipped))


def rederive_larger(
    symbol: Symbol, base_times: Iterable[int], *, closed_before: float, engine_open: Mapping[str, int | None],
    source: Timeframe = BASE,
) -> list[CandleUpdate]:
    """Re-aggregate, from the stored ``source`` candles (5 s, or 1 m when that is what
    history gave), the intraday buckets of larger stored timeframes that contain corrected
    ``source`` candles and end by ``closed_before``. Daily candles come from the broker's
    own 1D bars instead (a day's 5 s bars may be incomplete in the database)."""
    session = _session(symbol)
    out: list[CandleUpdate] = []
    times = sorted(set(base_times))
    if not times:
        return out
    for tf in market().plan.stored:
        if tf.seconds <= source.seconds or tf.is_daily or tf.seconds % source.seconds:
            continue
        skip = engine_open.get(tf.code)
        buckets: dict[int, int] = {}
        for t in times:
            start, end = bucket_of(t, tf, session)
            if end <= closed_before and start != skip:
                buckets[start] = end
        if not buckets:
            continue
        lo, hi = min(buckets), max(buckets.values())
        base = selectors.candle_stored_range(symbol=symbol, tf=source, start=lo, end=hi)
        fresh = rederive(base.values(), tf, session, set(buckets))
        ours = selectors.candle_stored_range(symbol=symbol, tf=tf, start=lo, end=hi)
        out += write(symbol, tf, [c for c in fresh if ours.get(c.time) != c])
    return out


@dataclass
class Fetched:
    """What ``catch_up_fetch`` got from the broker (HTTP done, nothing written yet)."""

    start: int
    end: int
    base: Converted | None = None
    minute: Converted | None = None   # 1m history, when 5S was refused or empty
    daily: Converted | None = None
    daily_start: int = 0
    requests: int = 0
    resolution: str | None = None     # "5s" or "1m": which filled the intraday range
    refused: str = ""                 # why 5S history was refused (Fyers' message)


def daily_timeframe() -> Timeframe | None:
    return next((tf for tf in market().plan.stored if tf.is_daily), None)


def catch_up_fetch(
    client: HistoryClient, ticker: str, exchange: str, start: int, end: int, *, now: float,
    daily: bool = True, seconds: bool = True,
) -> Fetched:
    """The HTTP half of ``catch_up`` (run it in a worker thread; it waits on the rate limiter).

    Intraday bars come from 5S history, which Fyers does not document: when it is refused
    (``seconds`` False: refused before for this symbol) or empty, from 1m history instead,
    if 1m is stored; ``resolution`` says which filled the range."""
    session = market().sessions.for_exchange(exchange)
    out = Fetched(start, end)
    before = client.requests
    recent = start > now - SECONDS_HISTORY_DAYS * DAY  # seconds bars reach back ~30 trading days
    if start < end and recent and seconds:
        try:
            out.base = client.fetch(ticker, BASE, start, end, session)
        except (TokenRejected, BudgetExhausted):
            raise
        except HistoryError as exc:
            out.refused = str(exc)[:200]
        if out.base is not None and out.base.candles:
            out.resolution = BASE.code
    if start < end and out.resolution is None and MINUTE in market().plan.stored:
        out.minute = client.fetch(ticker, MINUTE, start - start % MINUTE.seconds, end, session)
        if out.minute.candles:
            out.resolution = MINUTE.code
    elif out.refused:
        raise HistoryError(out.refused)  # nothing to fall back on
    day_tf = daily_timeframe()
    if daily and day_tf is not None:
        out.daily_start = session.day_of(start).label
        out.daily = client.fetch(ticker, day_tf, out.daily_start, int(max(end, out.daily_start + 1)), session)
    out.requests = client.requests - before
    return out


def catch_up_apply(
    symbol: Symbol, fetched: Fetched, *, now: float, engine_open: Mapping[str, int | None] | None = None,
    reopen: bool = False,
) -> SyncResult:
    """The database half of ``catch_up``."""
    engine_open = engine_open or {}
    closed = min(now, fetched.end)
    result = SyncResult(requests=fetched.requests)
    if fetched.base is not None:
        skip5 = engine_open.get(BASE.code)
        result.updates += apply(symbol, BASE, fetched.base, start=fetched.start, end=fetched.end,
                                closed_before=closed, skip=() if skip5 is None else (skip5,))
        result.updates += rederive_larger(symbol, [u.candle.time for u in result.updates],
                                          closed_before=math.inf if reopen else closed,
                                          engine_open=engine_open)
        result.skipped.update(fetched.base.skipped)
    if fetched.minute is not None:
        skip1 = engine_open.get(MINUTE.code)
        minute = apply(symbol, MINUTE, fetched.minute, start=fetched.start - fetched.start % MINUTE.seconds,
                       end=fetched.end, closed_before=closed, skip=() if skip1 is None else (skip1,))
        result.updates += minute
        result.updates += rederive_larger(symbol, [u.candle.time for u in minute],
                                          closed_before=math.inf if reopen else closed,
                                          engine_open=engine_open, source=MINUTE)
        for k, n in fetched.minute.skipped.items():
            result.skipped[k] = result.skipped.get(k, 0) + n
    result.resolution = fetched.resolution
    day_tf = daily_timeframe()
    if fetched.daily is not None and day_tf is not None:
        skip_d = engine_open.get(day_tf.code)
        result.updates += apply(symbol, day_tf, fetched.daily, start=fetched.daily_start,
                                end=int(max(fetched.end, fetched.daily_start + 1)),
                                closed_before=math.inf if reopen else closed,
                                skip=() if skip_d is None else (skip_d,))
    return result


def catch_up(
    client: HistoryClient, symbol: Symbol, start: int, end: int, *, now: float,
    engine_open: Mapping[str, int | None] | None = None, reopen: bool = False, daily: bool = True,
) -> SyncResult:
    """Make ``[start, end)`` match the broker: back-fill at runfeed start, gap repair after a
    reconnect, and reconciliation all use this.

    The broker's 5 s bars are fetched and written where ours differ or are missing; the
    larger intraday buckets that contain them are re-aggregated from the stored 5 s
    candles; daily bars come from the broker's 1D history. ``engine_open`` maps a
    timeframe code to the candle the live engine holds open: that one is skipped (the
    engine would overwrite it). ``reopen`` (the symbol has no live state yet: runfeed
    start) also writes still-open larger buckets so the engine resumes from them.
    Costs one request per 5 days of range, plus one for daily bars.
    """
    fetched = catch_up_fetch(client, symbol.ticker, symbol.exchange, start, end, now=now, daily=daily)
    return catch_up_apply(symbol, fetched, now=now, engine_open=engine_open, reopen=reopen)


def backfill(
    client: HistoryClient, symbol: Symbol, tfs: Iterable[Timeframe], start: int | None, end: int, *,
    now: float, default_days: float, include_open: bool = False,
) -> SyncResult:
    """Each timeframe from ``start`` (default: its newest stored candle, else ``default_days``
    back) to ``end``. ``include_open`` also writes still-open larger buckets, so the live
    engine resumes from them at runfeed start."""
    result = SyncResult()
    seconds_floor = int(now - SECONDS_HISTORY_DAYS * DAY)  # seconds bars reach back ~30 trading days
    for tf in tfs:
        a = start
        if a is None:
            newest = selectors.candle_newest(symbol=symbol, tf=tf)
            a = newest.time if newest is not None else int(now - default_days * 86400)
        if tf.seconds < 60:
            a = max(a, seconds_floor)
        if a >= end:
            continue
        closed = math.inf if include_open and tf != BASE else now
        result.add(sync_timeframe(client, symbol, tf, int(a), int(end), closed_before=closed))
    return result
