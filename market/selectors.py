"""Reads (HackSoft style). Candles come back as plain dicts, ascending by time."""

from __future__ import annotations

import heapq
import re
from typing import TYPE_CHECKING, Any, Iterable, Iterator, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, F, Q, Sum

from market.conf import market
from market.core.calendar import Calendar
from market.core.calendar import Override as CalendarOverrideValue
from market.core.derive import aggregate
from market.core.heikin_ashi import fold as heikin_ashi_fold
from market.core.heikin_ashi import heikin_ashi_page
from market.core.partitions import Partition, parse_bound
from market.core.sessions import Session
from market.core.timeframes import ALL, BASE, Timeframe
from market.core.types import Candle as CandleValue
from market.models import (
    Alert, AlertEvent, CalendarOverride, Candle, Drawing, FeedState, Layout, Marker, NotifyChannel, NotifyDelivery,
    PulseEvent, RestBudget, Symbol, SymbolCheckpoint, SymbolClaim, WriterCheckpoint,
)

if TYPE_CHECKING:
    from market.core.studies import Study

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


def symbol_list_by_tickers(*, tickers: Iterable[str]) -> list[Symbol]:
    """The known symbols among ``tickers`` (unknown ones are simply absent)."""
    return list(Symbol.objects.filter(ticker__in=list(tickers)))


def symbol_count(*, active: bool = True, source: str) -> int:
    return Symbol.objects.filter(active=active, source=source).count()


def symbol_search(*, query: str, limit: int = 20) -> list[dict[str, Any]]:
    """Ranked autocomplete over the symbol table: the database narrows, Python scores.

    Tiers, best first: the bare ticker (``SBIN`` of ``NSE:SBIN-EQ``) equals the query;
    starts with it; the full ticker starts with it; a word of the name starts with it;
    the ticker or the name contains it; the query is the initials of the name's words
    (``sbi`` for State Bank of India); the query is a subsequence of the bare ticker
    (``rlnc``); the bare ticker's start is one or two edits away (``relainc``, a
    transposition). Inside a tier active symbols come first, then shorter tickers.
    Candidates come from ``LIKE`` filters in the database: substrings, plus
    for queries of three or more characters the symbols whose bare ticker or name starts
    with the query's first letter. An empty query lists active symbols.
    """
    raw = " ".join(query.split())
    if not raw:
        rows = Symbol.objects.filter(active=True).order_by("ticker")
        return list(rows.values("ticker", "name", "exchange", "kind", "active")[:limit])
    q = raw.upper()
    compact = q.replace(" ", "")
    cond = Q(ticker__icontains=raw) | Q(name__icontains=raw)
    if len(compact) >= 3:
        first = compact[0]
        cond |= Q(ticker__icontains=":" + first) | Q(ticker__istartswith=first) | Q(name__istartswith=first)
    fields = ("ticker", "name", "exchange", "kind", "active")
    rows = list(Symbol.objects.filter(cond).values_list(*fields)[:5000])
    max_edits = 0 if len(compact) < 4 else (1 if len(compact) < 7 else 2)
    scored = []
    for row in rows:
        tier = _search_tier(q, compact, row[0].upper(), (row[1] or "").upper(), max_edits)
        if tier is not None:
            scored.append((tier, not row[4], len(row[0]), row[0], row))
    best = heapq.nsmallest(limit, scored)
    return [dict(zip(fields, item[4], strict=True)) for item in best]


_WORD_SPLIT = re.compile(r"[^A-Z0-9&]+")


def _bare(ticker: str) -> str:
    """``NSE:SBIN-EQ`` -> ``SBIN``."""
    bare = ticker.partition(":")[2] or ticker
    for suffix in ("-EQ", "-INDEX", "-BE", "-FUT", "-CE", "-PE"):
        if bare.endswith(suffix):
            return bare[: -len(suffix)]
    return bare


def _search_tier(q: str, compact: str, ticker: str, name: str, max_edits: int) -> int | None:
    bare = _bare(ticker)
    if bare == compact or ticker == q:
        return 0
    if bare.startswith(compact):
        return 1
    if ticker.startswith(q):
        return 2
    words = [w for w in _WORD_SPLIT.split(name) if w]
    if name.startswith(q) or any(w.startswith(q) for w in words):
        return 3
    if compact in ticker:
        return 4
    if q in name:
        return 5
    if len(compact) >= 2 and len(words) >= len(compact) and "".join(w[0] for w in words).startswith(compact):
        return 6
    if len(compact) >= 3 and bare[:1] == compact[:1] and _is_subsequence(compact, bare):
        return 7
    if max_edits and abs(len(bare) - len(compact)) <= len(bare):
        head = bare[: len(compact)]
        if _edits_within(compact, head, max_edits) or _edits_within(compact, bare, max_edits):
            return 8
    return None


def _is_subsequence(needle: str, hay: str) -> bool:
    it = iter(hay)
    return all(ch in it for ch in needle)


def _edits_within(a: str, b: str, k: int) -> bool:
    """Optimal-string-alignment distance of ``a`` and ``b`` is at most ``k`` (banded)."""
    if abs(len(a) - len(b)) > k:
        return False
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        lo = max(1, i - k)
        hi = min(len(b), i + k)
        for j in range(1, len(b) + 1):
            if j < lo or j > hi:
                cur[j] = k + 1
                continue
            cost = 0 if a[i - 1] == b[j - 1] else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
        if min(cur) > k:
            return False
        prev2, prev = prev, cur
    return prev[len(b)] <= k


def _rows(symbol: Symbol, tf: Timeframe, *, start: int | None, end: int | None,
          limit: int | None, newest: bool) -> list[CandleValue]:
    """Raw SQL over the (symbol, timeframe, time) unique index: no model instances,
    which is most of the cost of a history read (MEASURED.md: 14 ms vs 75 ms for 5,000)."""
    sql = [f"SELECT time, open, high, low, close, volume, ticks FROM {Candle._meta.db_table} "
           "WHERE symbol_id = %s AND timeframe = %s"]
    params: list[Any] = [symbol.pk, tf.code]
    if start is not None:
        sql.append("AND time >= %s")
        params.append(start)
    if end is not None:
        sql.append("AND time <= %s")
        params.append(end)
    sql.append("ORDER BY time DESC" if newest else "ORDER BY time")
    if limit is not None:
        sql.append("LIMIT %s")
        params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(" ".join(sql), params)
        rows = [CandleValue(*row) for row in cursor.fetchall()]
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
    session = session_for(symbol.exchange)
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


def candle_list_before(
    *, symbol: Symbol, tf: Timeframe, before: int, count: int | None = None, since: int | None = None,
) -> list[CandleValue]:
    """The candles of ``symbol`` at ``tf`` before time ``before``, ascending: the study
    warm-up in front of a page. At least the newest ``count`` of them, and all from
    ``since`` on; with neither (``count`` None and ``since`` None), all of them back to the
    first stored one. Derived timeframes are aggregated, and their buckets are whole
    because ``before`` is a bucket start."""
    if before <= 0:
        return []
    end = before - 1
    if count is None and since is None:
        return candle_list(symbol=symbol, tf=tf, start=0, end=end, limit=_UNLIMITED)
    tail = candle_list(symbol=symbol, tf=tf, end=end, limit=count) if count else []
    if since is not None and (not tail or tail[0].time > since):
        return candle_list(symbol=symbol, tf=tf, start=since, end=end, limit=_UNLIMITED)
    return tail


_UNLIMITED = 2**40


def candle_studies(
    *, symbol: Symbol, tf: Timeframe, candles: list[CandleValue], studies: list[Study],
) -> dict[str, list[dict[str, Any]]]:
    """``studies`` of ``symbol`` for the page ``candles`` (ascending, as ``candle_list``
    returns them), one row per candle: each computed with the warm-up its definition needs
    (``market.core.studies``), so it equals the whole stored series' batch values."""
    # numpy and TA-Lib load here, not with the module: runfeed and the writers never need them.
    from market.core.studies import compute as study_compute
    from market.core.studies import session_start
    from market.core.studies import warmup as studies_warmup

    if not studies or not candles:
        return {study.key: [] for study in studies}
    session = session_for(symbol.exchange)
    first = candles[0].time
    since = session_start(first, tf, session) if any(s.session for s in studies) else None
    count = studies_warmup(studies)
    if count is None:
        since = None
    warm = candle_list_before(symbol=symbol, tf=tf, before=first, count=count, since=since)
    return study_compute(studies, [*warm, *candles], tf=tf, session=session, skip=len(warm),
                         no_volume=symbol.kind == Symbol.Kind.INDEX)


def candle_heikin_ashi(*, symbol: Symbol, tf: Timeframe, candles: list[CandleValue]) -> list[CandleValue]:
    """The Heikin-Ashi candles of the page ``candles`` (ascending, as ``candle_list`` returns
    them): every stored bar before the page is read as the warm-up, so a bar's value is the
    same whatever page it is on (anchored on the first stored bar; market.core.heikin_ashi)."""
    if not candles:
        return []
    before = candles[0].time
    if market().plan.base_for(tf) != tf:  # derived: the warm-up is aggregated
        warm = heikin_ashi_fold((c.open, c.high, c.low, c.close)
                                for c in candle_list_before(symbol=symbol, tf=tf, before=before))
    else:  # stored: plain rows, no candle objects (100,000 of them are most of the cost)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT open, high, low, close FROM {Candle._meta.db_table} "
                           "WHERE symbol_id = %s AND timeframe = %s AND time < %s ORDER BY time",
                           [symbol.pk, tf.code, before])
            warm = heikin_ashi_fold(cursor.fetchall())
    return heikin_ashi_page(warm, candles)


def candle_newest(*, symbol: Symbol, tf: Timeframe) -> CandleValue | None:
    """The newest stored ``tf`` candle of ``symbol`` (``tf`` is a stored timeframe)."""
    rows = _rows(symbol, tf, start=None, end=None, limit=1, newest=True)
    return rows[0] if rows else None


def candle_latest_stored(*, symbol: Symbol) -> dict[Timeframe, CandleValue]:
    """The newest stored candle of each stored timeframe (for resuming the engine)."""
    out: dict[Timeframe, CandleValue] = {}
    for tf in market().plan.stored:
        newest = candle_newest(symbol=symbol, tf=tf)
        if newest is not None:
            out[tf] = newest
    return out


def candle_stored_range(*, symbol: Symbol, tf: Timeframe, start: int, end: int) -> dict[int, CandleValue]:
    """The stored ``tf`` candles of ``symbol`` in ``[start, end)``, by time (``tf`` stored)."""
    rows = Candle.objects.filter(symbol=symbol, timeframe=tf.code, time__gte=start, time__lt=end).order_by("time")
    return {r.time: CandleValue(r.time, r.open, r.high, r.low, r.close, r.volume, r.ticks) for r in rows}


def candle_day_volume(*, symbol: Symbol, label: int) -> float | None:
    """Volume already stored for the trading day labelled ``label`` (contract g baseline)."""
    session = session_for(symbol.exchange)
    day = session.day_for_label(label)
    totals = Candle.objects.filter(
        symbol=symbol, timeframe=BASE.code, time__gte=day.open, time__lt=day.close
    ).aggregate(volume=Sum("volume"), n=Count("id"))
    return float(totals["volume"] or 0.0) if totals["n"] else None


def symbol_checkpoint_get(*, symbol: Symbol) -> dict[str, Any] | None:
    """The engine state stored with ``symbol``'s candles, if any (``CandleEngine.restore``)."""
    return SymbolCheckpoint.objects.filter(symbol=symbol).values_list("state", flat=True).first()


def writer_position(*, name: str) -> Any:
    """Where the writer ``name``'s input resumes (None: from its start)."""
    return WriterCheckpoint.objects.filter(name=name).values_list("position", flat=True).first()


def feed_state_list() -> list[dict[str, Any]]:
    return list(FeedState.objects.values("source", "state", "detail", "heartbeat"))


def symbol_list_recorded(*, source: str) -> list[Symbol]:
    """Symbols ``source`` records continuously, in priority order for a capped connection:
    ``always_record`` first, then the other ``active`` ones, each by ticker."""
    qs = Symbol.objects.filter(source=source).filter(Q(active=True) | Q(always_record=True))
    return list(qs.order_by("-always_record", "ticker"))


def pulse_event_list_recent(*, limit: int = 50) -> list[dict[str, Any]]:
    """The newest stored Market Pulse events, newest first, ``asset_class`` as ``class``."""
    rows = PulseEvent.objects.order_by("-time", "-id").values(
        "symbol", "asset_class", "kind", "time", "value", "threshold", "message")[:limit]
    out = []
    for r in rows:
        r["class"] = r.pop("asset_class")
        out.append(r)
    return out


def user_get(*, username: str) -> AbstractBaseUser | None:
    """The user ``username`` names (the user model's natural key), or None."""
    model = get_user_model()
    try:
        return model.objects.get_by_natural_key(username)
    except model.DoesNotExist:
        return None


def candle_export_iter(
    *, tickers: Iterable[str] | None = None, timeframes: Iterable[str] | None = None,
    start: int | None = None, end: int | None = None, chunk: int = 10_000,
) -> Iterable[tuple]:
    """Stored candles as ``(ticker, timeframe, time, open, high, low, close, volume, ticks)``
    rows, in id order, fetched ``chunk`` at a time by keyset (``id > last``) so memory stays
    constant; ``start`` inclusive, ``end`` exclusive (epoch seconds)."""
    where, params = ["c.id > %s"], []
    if tickers:
        tickers = list(tickers)
        where.append(f"s.ticker IN ({', '.join(['%s'] * len(tickers))})")
        params += tickers
    if timeframes:
        timeframes = list(timeframes)
        where.append(f"c.timeframe IN ({', '.join(['%s'] * len(timeframes))})")
        params += timeframes
    if start is not None:
        where.append("c.time >= %s")
        params.append(start)
    if end is not None:
        where.append("c.time < %s")
        params.append(end)
    sql = (f"SELECT c.id, s.ticker, c.timeframe, c.time, c.open, c.high, c.low, c.close, c.volume, c.ticks "
           f"FROM {Candle._meta.db_table} c JOIN {Symbol._meta.db_table} s ON s.id = c.symbol_id "
           f"WHERE {' AND '.join(where)} ORDER BY c.id LIMIT %s")
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [last, *params, chunk])
            rows = cursor.fetchall()
        if not rows:
            return
        for row in rows:
            yield row[1:]
        last = rows[-1][0]
        if len(rows) < chunk:
            return


def candle_export_count(
    *, tickers: Iterable[str] | None = None, timeframes: Iterable[str] | None = None,
    start: int | None = None, end: int | None = None,
) -> int:
    """How many candles ``candle_export_iter`` would yield (for a progress bar)."""
    qs = Candle.objects.all()
    if tickers:
        qs = qs.filter(symbol__ticker__in=list(tickers))
    if timeframes:
        qs = qs.filter(timeframe__in=list(timeframes))
    if start is not None:
        qs = qs.filter(time__gte=start)
    if end is not None:
        qs = qs.filter(time__lt=end)
    return qs.count()


def candle_count_older(*, timeframe: str, before: int) -> int:
    """Stored ``timeframe`` candles whose bucket starts before ``before`` (prune --dry-run)."""
    return Candle.objects.filter(timeframe=timeframe, time__lt=before).count()


def alert_as_dict(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "symbol": alert.symbol, "tf": alert.tf, "left": alert.left, "op": alert.op,
            "right": alert.right, "trigger": alert.trigger, "bars": alert.bars, "expires": alert.expires,
            "message": alert.message, "webhook": alert.webhook, "status": alert.status, "reason": alert.reason}


def alert_list(*, user: Any) -> list[Alert]:
    return list(Alert.objects.filter(user=user))


def alert_get(*, user: Any, pk: int) -> Alert | None:
    return Alert.objects.filter(user=user, pk=pk).first()


def alert_list_active(*, symbols: Iterable[str] | None = None) -> list[Alert]:
    """What the writer evaluates: every active alert (of ``symbols``)."""
    qs = Alert.objects.filter(status=Alert.Status.ACTIVE)
    if symbols is not None:
        qs = qs.filter(symbol__in=list(symbols))
    return list(qs)


def alert_event_list(*, alert: Alert, limit: int = 500) -> list[dict[str, Any]]:
    return [
        {"id": e.id, "alert": alert.id, "symbol": e.symbol, "tf": e.tf, "time": e.time, "value": e.value,
         "other": e.other, "message": e.message, "fired_at": e.fired_at, "delivery": e.delivery,
         "attempts": e.attempts, "last_error": e.last_error, "caught_up": e.caught_up}
        for e in AlertEvent.objects.filter(alert=alert).order_by("time")[:limit]
    ]


def alert_event_due(*, now: float, limit: int = 100) -> list[dict[str, Any]]:
    """Webhook deliveries due now, oldest first, with what signing them needs."""
    rows = (AlertEvent.objects.filter(delivery="pending", next_attempt__lte=now).exclude(alert__webhook="")
            .select_related("alert").order_by("fired_at")[:limit])
    return [{"id": e.id, "alert": e.alert_id, "symbol": e.symbol, "tf": e.tf, "time": e.time, "value": e.value,
             "message": e.message, "fired_at": e.fired_at, "webhook": e.alert.webhook, "secret": e.alert.secret}
            for e in rows]


def candle_first_times(*, symbol: Symbol) -> dict[str, int | None]:
    """The time of the oldest stored candle of ``symbol`` for every timeframe (None: none):
    one indexed read per stored timeframe; a derived one starts where its stored base does."""
    plan = market().plan
    stored: dict[str, int | None] = {}
    for tf in ALL:
        base = plan.base_for(tf)
        if base.code not in stored:
            first = candle_list(symbol=symbol, tf=base, start=0, limit=1)
            stored[base.code] = first[0].time if first else None
    return {tf.code: stored[plan.base_for(tf).code] for tf in ALL}


def candle_pages(
    *, symbol: Symbol, tf: Timeframe, start: int | None = None, end: int | None = None, page: int = 10_000,
) -> Iterator[list[CandleValue]]:
    """Every candle of ``symbol`` at ``tf`` from ``start`` to ``end`` (inclusive), ascending,
    ``page`` at a time (an export of any length in constant memory). A derived timeframe's
    page starts at the bucket holding its cursor, so a bucket already given is skipped."""
    cursor, newest = start or 0, -1
    while True:
        candles = candle_list(symbol=symbol, tf=tf, start=cursor, end=end, limit=page)
        fresh = [c for c in candles if c.time > newest]
        if fresh:
            yield fresh
            newest = fresh[-1].time
        if len(candles) < page or not fresh:
            return
        cursor = newest + 1


MARKER_PAGE = 5_000


def marker_as_dict(marker: Marker) -> dict[str, Any]:
    return {"id": marker.id, "symbol": marker.symbol.ticker, "time": marker.time, "price": marker.price,
            "shape": marker.shape, "position": marker.position, "color": marker.color, "text": marker.text,
            "author": marker.user.get_username()}


def marker_list(*, symbol: Symbol, start: int | None = None, end: int | None = None) -> list[dict[str, Any]]:
    """A symbol's markers from ``start`` to ``end`` (inclusive), ascending: the newest
    ``MARKER_PAGE`` of them."""
    qs = Marker.objects.filter(symbol=symbol).select_related("symbol", "user")
    if start is not None:
        qs = qs.filter(time__gte=start)
    if end is not None:
        qs = qs.filter(time__lte=end)
    newest = list(qs.order_by("-time", "-id")[:MARKER_PAGE])
    return [marker_as_dict(m) for m in reversed(newest)]


def marker_get(*, pk: int) -> Marker | None:
    return Marker.objects.select_related("symbol", "user").filter(pk=pk).first()


# ---- exchange calendars (issue 15) ----------------------------------------------------


def calendar_override_list() -> list[CalendarOverrideValue]:
    """Every admin-entered closure and special session, as the calendar's values."""
    return [CalendarOverrideValue(exchange=o.exchange.upper(), date=o.date, kind=o.kind, open=o.open,
                                  close=o.close, note=o.note)
            for o in CalendarOverride.objects.all() if o.kind == "closed" or (o.open and o.close
                                                                               and o.close > o.open)]


def calendar_get() -> Calendar:
    """The exchange calendars with today's overrides (one query)."""
    conf = market()
    return Calendar(conf.sessions, dict(conf.calendars), calendar_override_list())


def session_for(exchange: str) -> Session:
    """``exchange``'s session with the calendar's special sessions applied (one query), as
    runfeed applies them: a Muhurat session's bars anchored on its own open, so timeframes
    derived on read in a web process cut the same buckets the feed stored."""
    calendar = calendar_get()
    calendar.sessions.set_windows(calendar.special_windows())
    return calendar.sessions.for_exchange(exchange)


def exchange_known(*, code: str) -> bool:
    """A session code some calendar, session or stored symbol names."""
    return calendar_get().knows(code) or Symbol.objects.filter(exchange=code).exists()


# ------------------------------------------------------------------ drawings (issue 12)


def drawing_as_dict(drawing: Drawing) -> dict[str, Any]:
    """What the API returns and the ``drawing`` socket frame carries; times are epoch seconds."""
    return {"id": drawing.id, "symbol": drawing.symbol, "kind": drawing.kind, "points": drawing.points,
            "style": drawing.style, "created": drawing.created.timestamp(),
            "updated": drawing.updated.timestamp()}


def drawing_list(*, user: Any, symbol: str) -> list[Drawing]:
    return list(Drawing.objects.filter(user=user, symbol=symbol))


def drawing_by_id(*, pk: int) -> Drawing | None:
    """Drawing ``pk`` whoever's it is (an alert's line is checked against its owner)."""
    return Drawing.objects.filter(pk=pk).first()


def drawing_lines(*, pks: Iterable[int]) -> dict[int, tuple[str, list[dict[str, float]]]]:
    """``{id: (kind, points)}`` of the drawings that still exist (the writer's alert lines)."""
    return {pk: (kind, points) for pk, kind, points in
            Drawing.objects.filter(pk__in=list(pks)).values_list("pk", "kind", "points")}


def drawing_get(*, user: Any, pk: int) -> Drawing | None:
    """The user's drawing ``pk``, or None (also when it is someone else's)."""
    return Drawing.objects.filter(user=user, pk=pk).first()


def alert_count(*, user: Any) -> int:
    """How many alerts ``user`` holds (the quota counts every status)."""
    return Alert.objects.filter(user=user).count()


# ------------------------------------------------------------------ layouts (issue 12)

def layout_as_dict(layout: Layout) -> dict[str, Any]:
    """What the API returns; times are epoch seconds (``opened`` null: never opened)."""
    return {"id": layout.id, "name": layout.name, "spec": layout.spec, "created": layout.created.timestamp(),
            "updated": layout.updated.timestamp(),
            "opened": layout.opened.timestamp() if layout.opened else None}


def layout_list(*, owner: Any) -> list[Layout]:
    return list(Layout.objects.filter(owner=owner))


def layout_get(*, owner: Any, pk: int) -> Layout | None:
    """The user's layout ``pk``, or None (also when it is someone else's)."""
    return Layout.objects.filter(owner=owner, pk=pk).first()


def layout_last(*, owner: Any) -> Layout | None:
    """The one ``/layout/`` reopens: the last opened, else the last saved."""
    return Layout.objects.filter(owner=owner).order_by(F("opened").desc(nulls_last=True), "-updated").first()


def symbols_known(*, tickers: Iterable[str]) -> set[str]:
    """Which of ``tickers`` the database knows."""
    return set(Symbol.objects.filter(ticker__in=list(tickers)).values_list("ticker", flat=True))


# ---- notification channels (issue 13) ----


def notify_channel_as_dict(channel: NotifyChannel) -> dict[str, Any]:
    """A channel as the API shows it: an apprise URL is a secret, so only its scheme shows."""
    target = channel.target
    if channel.kind == NotifyChannel.Kind.APPRISE:
        target = target.split("://", 1)[0] + "://…" if "://" in target else "…"
    return {"id": channel.id, "name": channel.name, "kind": channel.kind, "target": target,
            "enabled": channel.enabled}


def notify_channel_list(*, user: Any) -> list[NotifyChannel]:
    return list(NotifyChannel.objects.filter(user=user))


def notify_channel_get(*, user: Any, pk: int) -> NotifyChannel | None:
    return NotifyChannel.objects.filter(user=user, pk=pk).first()


def alert_channel_ids(*, alerts: Iterable[Alert]) -> dict[int, list[int]]:
    """``{alert id: [channel ids]}`` in one query."""
    out: dict[int, list[int]] = {a.id: [] for a in alerts}
    rows = NotifyChannel.alerts.through.objects.filter(alert_id__in=list(out)).order_by("notifychannel_id")
    for alert_id, channel_id in rows.values_list("alert_id", "notifychannel_id"):
        out[alert_id].append(channel_id)
    return out


def notify_delivery_due(*, now: float, limit: int = 100) -> list[dict[str, Any]]:
    """Channel deliveries due now, oldest first, with the event and where it goes."""
    rows = (NotifyDelivery.objects.filter(status="pending", next_attempt__lte=now, channel__enabled=True)
            .select_related("event", "channel").order_by("event__fired_at", "id")[:limit])
    return [{"delivery": d.id, "channel": d.channel_id, "kind": d.channel.kind, "target": d.channel.target,
             "id": d.event.id, "alert": d.event.alert_id, "symbol": d.event.symbol, "tf": d.event.tf,
             "time": d.event.time, "value": d.event.value, "other": d.event.other, "message": d.event.message,
             "fired_at": d.event.fired_at} for d in rows]


def notify_delivery_list(*, event_id: str) -> list[dict[str, Any]]:
    return [{"channel": d.channel_id, "status": d.status, "attempts": d.attempts, "last_error": d.last_error}
            for d in NotifyDelivery.objects.filter(event_id=event_id)]


class CandlePartitionRow(NamedTuple):
    """One partition of the candle table: ``ranged``, a timeframe's partition that is itself
    split by time; ``pending``, a ``DETACH … CONCURRENTLY`` that did not finish."""

    partition: Partition
    ranged: bool
    pending: bool


def candle_partition_list() -> list[CandlePartitionRow] | None:
    """The candle table's partitions, timeframes first, then by time; None where the table
    is not partitioned (SQLite, or PostgreSQL before migration 0012)."""
    table = Candle._meta.db_table
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        kind = cursor.fetchone()
        if not kind or kind[0] != "p":
            return None
        cursor.execute(
            "SELECT c.relname, c.relkind, pg_get_expr(c.relpartbound, c.oid), p.relname, i.inhdetachpending "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE i.inhparent = to_regclass(%s) "
            "OR i.inhparent IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%s))",
            [table, table])
        found = cursor.fetchall()
    out: list[CandlePartitionRow] = []
    by_name: dict[str, str] = {}
    for name, relkind, bound, parent, pending in found:
        if parent == table:
            p = parse_bound(table, None, bound)
            by_name[name] = p.timeframe
            out.append(CandlePartitionRow(p, relkind == "p", bool(pending)))
    for name, relkind, bound, parent, pending in found:
        if parent != table:
            out.append(CandlePartitionRow(parse_bound(table, by_name[parent], bound), False, bool(pending)))
    out.sort(key=lambda r: (r.partition.timeframe, r.partition.start is not None, r.partition.start or 0))
    return out


def candle_partition_unclustered(*, partitions: list[Partition]) -> dict[Partition, str]:
    """Of ``partitions``, those not rewritten in key order yet: each with its unique key's
    index (the one ``CLUSTER`` orders by)."""
    by_name = {p.name: p for p in partitions}
    if not by_name:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, ic.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_class ic ON ic.oid = i.indexrelid WHERE c.relname = ANY(%s) AND i.indisunique "
            "AND NOT i.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_index j WHERE j.indrelid = i.indrelid "
            "AND j.indisclustered)", [list(by_name)])
        return {by_name[table]: index for table, index in cursor.fetchall()}


def candle_partition_count(*, partition: Partition) -> int:
    """Candles stored in one partition (what dropping it removes)."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{partition.name}"')
        return int(cursor.fetchone()[0])


def rest_budget_used(*, app: str, day: int) -> int:
    """Requests ``app`` made on budget day ``day`` (the database store of market.budget)."""
    row = RestBudget.objects.filter(app=app).values_list("day", "day_count").first()
    return row[1] if row and row[0] == day else 0


def symbol_claims_held(*, app: str, now: float) -> int:
    """Symbol slots of ``app`` held by live claims (every process together)."""
    return sum(SymbolClaim.objects.filter(app=app, expires__gt=now).values_list("count", flat=True))
