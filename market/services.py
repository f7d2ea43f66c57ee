"""Writes (HackSoft style: keyword-only functions named ``<entity>_<action>``)."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any, Callable, Iterable, Mapping

from django.contrib.auth import get_user_model
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from market import selectors
from market.conf import alerts_conf, market
from market.core.partitions import (DAY, Partition, closed, compact_sql, create_sql, drop_sql, expired, finalize_sql,
                                    needed)
from market.core.pulse import StressEvent
from market.core.simulator import SimSymbol
from market.core.types import Candle as CandleValue
from market.core.types import CandleUpdate, WriterFenced
from market.core.alerts import DRAWING, AlertError, Event, next_attempt, parse_condition
from market.core.budget import DayExhausted, Limits, day_number, day_start, window_wait
from market.core.drawings import MAX_PER_SYMBOL, DrawingError, line_error, parse_kind, parse_points, parse_style
from market.core.layouts import MAX_PER_USER as MAX_LAYOUTS
from market.core.layouts import LayoutError, parse_name, parse_spec
from market.models import (
    Alert, AlertEvent, Candle, Drawing, FeedState, Layout, Marker, NotifyChannel, NotifyDelivery, PulseEvent, RestBudget,
    Symbol, SymbolCheckpoint, SymbolClaim, WriterCheckpoint,
)

logger = logging.getLogger(__name__)

UPSERT_BATCH = 2000
SYMBOL_BATCH = 1000
_CANDLE_COLUMNS = "symbol_id, timeframe, time, open, high, low, close, volume, ticks"
_CANDLE_UPDATE = (
    "ON CONFLICT (symbol_id, timeframe, time) DO UPDATE SET "
    "open = excluded.open, high = excluded.high, low = excluded.low, "
    "close = excluded.close, volume = excluded.volume, ticks = excluded.ticks"
)
_UPSERT_SQL = (
    f"INSERT INTO {Candle._meta.db_table} ({_CANDLE_COLUMNS}) "
    f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) {_CANDLE_UPDATE}"
)
#: PostgreSQL: candles are COPYed (binary, so floats arrive bit for bit) into this session's
#: temporary table, then moved with one ``INSERT … SELECT … ON CONFLICT``. ``IF NOT EXISTS``
#: on every write: a table made in a transaction that rolled back is gone, and a pooler may
#: hand out another session; ``ON COMMIT DELETE ROWS`` so nothing outlives its transaction.
_STAGE = "market_candle_stage"
_STAGE_SQL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (symbol_id bigint NOT NULL, "
    "timeframe varchar(4) NOT NULL, time bigint NOT NULL, open double precision NOT NULL, "
    "high double precision NOT NULL, low double precision NOT NULL, close double precision NOT NULL, "
    "volume double precision NOT NULL, ticks integer NOT NULL) ON COMMIT DELETE ROWS"
)
_STAGE_TYPES = ["int8", "varchar", "int8", "float8", "float8", "float8", "float8", "float8", "int4"]
_COPY_SQL = f"COPY {_STAGE} ({_CANDLE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
#: The staged rows are consumed by the move (DELETE … RETURNING), so a second write in the
#: same transaction (an import's batches) starts from an empty table.
#: A row stored with the very same values is left alone (a replay of the same file, a
#: restart's rewrite): no new row version, no WAL.
_MOVE_SQL = (
    f"WITH staged AS (DELETE FROM {_STAGE} RETURNING {_CANDLE_COLUMNS}) "
    f"INSERT INTO {Candle._meta.db_table} AS c ({_CANDLE_COLUMNS}) "
    f"SELECT {_CANDLE_COLUMNS} FROM staged ORDER BY symbol_id, timeframe, time {_CANDLE_UPDATE} "
    "WHERE (c.open, c.high, c.low, c.close, c.volume, c.ticks) IS DISTINCT FROM "
    "(excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.ticks)"
)
#: PostgreSQL writes of at least this many rows go by COPY, the rest by the pipelined
#: ``executemany`` that SQLite uses. COPY was faster from 10 rows on (10: 10 vs 21 ms,
#: 1,000: 60 vs 560 ms, commit included, loaded machine), so every write; tests raise it
#: to compare the two paths.
COPY_MIN_ROWS = 1


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
    candle_partition_ensure(pairs=[(r[1], r[2]) for r in rows])  # PostgreSQL: a set lookup once known
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql" and len(rows) >= COPY_MIN_ROWS:
                _candle_copy(cursor, rows)
            else:
                for i in range(0, len(rows), UPSERT_BATCH):
                    cursor.executemany(_UPSERT_SQL, rows[i : i + UPSERT_BATCH])
    except DatabaseError as exc:
        if "no partition of relation" in str(exc):  # dropped under us: look again on the retry
            candle_partition_forget()
        raise


def _candle_copy(cursor: Any, rows: list[tuple]) -> None:
    """COPY ``rows`` into the session's staging table, then one upsert from it, in the
    caller's transaction (psycopg 3's ``Cursor.copy``, through Django's cursor wrapper)."""
    if any(type(r[0]) is not int or type(r[2]) is not int or type(r[8]) is not int for r in rows):
        rows = [(_whole(r[0]), r[1], _whole(r[2]), *r[3:8], _whole(r[8])) for r in rows]
    with transaction.atomic(savepoint=False):  # ON COMMIT DELETE ROWS: never in autocommit
        cursor.execute(_STAGE_SQL)
        with connection.wrap_database_errors, cursor.copy(_COPY_SQL) as copy:
            copy.set_types(_STAGE_TYPES)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
        cursor.execute(_MOVE_SQL)


def _whole(value: Any) -> int:
    """An integer column's value for binary COPY (which takes only ints): 1.7e9 as a float
    or a numpy integer is fine, as the SQL upsert took it; 1.5 is refused, not rounded."""
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"candle time, ticks and symbol id are whole numbers, not {value!r}")
        return int(value)
    return int(value)  # numpy and other integer types; TypeError for anything else


def candle_upsert_many(*, updates: Iterable[CandleUpdate], symbol_ids: Mapping[str, int]) -> int:
    """Idempotent batched upsert; the last update of a (symbol, timeframe, time) wins.

    SQLite (and small writes on PostgreSQL): one ``INSERT … ON CONFLICT DO UPDATE``
    executed for many rows in a transaction, which skips building model instances (most
    of the cost of ``bulk_create(update_conflicts=True)``). PostgreSQL from
    ``COPY_MIN_ROWS`` rows: binary COPY into a temporary table and one
    ``INSERT … SELECT … ON CONFLICT`` from it (``_candle_copy``).
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


def _writer_fence(writer: str, epoch: int) -> None:
    """Raise ``WriterFenced`` unless ``epoch`` is still ``writer``'s; the epoch row stays
    locked for the caller's transaction, so a takeover waits for a write in flight."""
    current = (WriterCheckpoint.objects.select_for_update().filter(name=writer)
               .values_list("epoch", flat=True).first())
    if current != epoch:
        raise WriterFenced(f"writer {writer!r} is now epoch {current}, not {epoch}: another runfeed took over")


def candle_store_checkpointed(
    *, updates: Iterable[CandleUpdate], symbol_ids: Mapping[str, int], writer: str, epoch: int,
    states: Mapping[str, dict], position: Any, alerts: Mapping[str, Any] | None = None,
) -> int:
    """Candles, the engine states they came from and the input position, in one transaction.

    Raises ``WriterFenced`` (and writes nothing) when ``epoch`` is no longer the writer's:
    another runfeed took the lock, e.g. while PostgreSQL restarted under this one. The
    epoch row is locked for the transaction, so a takeover waits for a write in flight.
    """
    rows = _candle_rows(updates, symbol_ids)
    with transaction.atomic():
        _writer_fence(writer, epoch)
        if rows:
            _candle_write(rows)
        if states:
            SymbolCheckpoint.objects.bulk_create(
                [SymbolCheckpoint(symbol_id=symbol_ids[ticker], state=state) for ticker, state in states.items()],
                update_conflicts=True, unique_fields=["symbol"], update_fields=["state"],
            )
        WriterCheckpoint.objects.filter(name=writer).update(position=position, updated=time.time())
        if alerts is not None:  # events and evaluator states belong to the same checkpoint
            alert_checkpoint(**alerts)
    return len(rows)


def symbol_checkpoint_clear(*, symbol: Symbol) -> None:
    """Forget the engine state of ``symbol`` (its candles were rewritten from elsewhere)."""
    SymbolCheckpoint.objects.filter(symbol=symbol).delete()


def feed_state_save(*, source: str, state: str, detail: str, heartbeat: float,
                    writer: str | None = None, epoch: int | None = None) -> None:
    """The feed's state for the badge. With ``writer``/``epoch`` it is fenced as candles are
    (``WriterFenced`` when another runfeed took over), so a writer that lost its lock never
    overwrites the new one's state."""
    with transaction.atomic():
        if writer is not None and epoch is not None:
            _writer_fence(writer, epoch)
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


def alert_create(
    *, user: Any, symbol: str, tf: str, left: Any, op: str, right: Any, trigger: str = "once",
    bars: int = 1, expires: float | None = None, message: str = "", webhook: str = "",
) -> Alert:
    """Validate (``AlertError`` names the bad field) and store an active alert."""
    condition = parse_condition(alert="new", symbol=symbol, tf=tf, left=left, op=op, right=right,
                                trigger=trigger, bars=bars, expires=expires)
    if condition.right.drawing is not None:
        _alert_line_check(user, condition.symbol, condition.right.drawing)
    return Alert.objects.create(
        user=user, symbol=condition.symbol, tf=condition.tf.code, left=condition.left.key, op=op,
        right=condition.right.key, trigger=trigger, bars=bars, expires=condition.expires,
        message=message[:200], webhook=webhook, secret=secrets.token_hex(32),
    )


def _alert_line_check(user: Any, symbol: str, pk: int) -> None:
    """A ``drawing:<id>`` right side must be a line drawing of the same user and symbol."""
    drawing = selectors.drawing_by_id(pk=pk)
    if drawing is None:
        raise AlertError(f"right: no drawing {pk}")
    if drawing.user_id != user.pk:
        raise AlertError(f"right: drawing {pk} is not one of yours")
    if drawing.symbol != symbol:
        raise AlertError(f"right: drawing {pk} is on {drawing.symbol}, not {symbol}")
    refused = line_error(drawing.kind, drawing.points)
    if refused:
        raise AlertError(f"right: drawing {pk}: {refused}")


def alert_disable(*, pks: Iterable[int], reason: str) -> list[Alert]:
    """Stop alerts that cannot be evaluated any more (their drawing went), saying why;
    returns them as they are now. A done alert stays done."""
    with transaction.atomic():
        qs = Alert.objects.filter(pk__in=list(pks)).exclude(status=Alert.Status.DONE)
        qs.update(status=Alert.Status.DISABLED, reason=reason[:200])
        return list(Alert.objects.filter(pk__in=list(pks), status=Alert.Status.DISABLED))


def alert_pause(*, alert: Alert) -> Alert:
    if alert.status == Alert.Status.ACTIVE:
        alert.status = Alert.Status.PAUSED
        alert.save(update_fields=["status"])
    return alert


def alert_resume(*, alert: Alert) -> Alert:
    """Back to active; the evaluator re-arms (its first tick after resuming only arms it)."""
    if alert.status == Alert.Status.PAUSED:
        alert.status = Alert.Status.ACTIVE
        alert.state = {}
        alert.save(update_fields=["status", "state"])
    return alert


def alert_delete(*, alert: Alert) -> None:
    alert.delete()


def alert_state_save(*, states: Mapping[int, dict], done: Iterable[int] = ()) -> None:
    """Checkpoint evaluator states; ``done`` alerts (trigger ``once`` fired) stop."""
    done = set(done)
    with transaction.atomic():
        pks = set(states) | done
        if not pks:
            return
        paused = set(Alert.objects.filter(pk__in=pks, status=Alert.Status.PAUSED).values_list("pk", flat=True))
        Alert.objects.bulk_update([Alert(pk=pk, state=state) for pk, state in states.items() if pk not in paused],
                                  ["state"], batch_size=500)  # one statement per 500, not one per alert
        if done - paused:
            Alert.objects.filter(pk__in=done - paused).exclude(status=Alert.Status.PAUSED).update(
                status=Alert.Status.DONE)


def alert_event_record(*, event: Event, message: str = "", fired_at: float | None = None,
                       webhook: bool = False, caught_up: bool = False) -> bool:
    """Store one event; idempotent on its id (True when it is new). ``webhook``: to deliver;
    ``caught_up``: a restart's catch-up fired it from stored candles."""
    _, created = AlertEvent.objects.get_or_create(
        id=event.id,
        defaults=dict(alert_id=int(event.alert), symbol=event.symbol, tf=event.tf, time=float(event.time),
                      value=event.value, other=event.other, message=message[:200],
                      fired_at=time.time() if fired_at is None else fired_at,
                      delivery="pending" if webhook else "none", caught_up=caught_up),
    )
    if created:  # and to the alert's notification channels, in the same transaction
        notify_delivery_create_for(event_id=event.id, alert_id=int(event.alert))
    return created


def alert_checkpoint(*, events: Iterable[tuple[Event, str]], states: Mapping[int, dict],
                     done: Iterable[int] = (), caught_up: bool = False) -> int:
    """Record events (idempotent on their ids) and checkpoint the evaluators; new events count."""
    with transaction.atomic():
        alive = dict(Alert.objects.filter(pk__in=[int(e.alert) for e, _ in events]).values_list("pk", "webhook"))
        new = sum(alert_event_record(event=e, message=m, webhook=bool(alive[int(e.alert)]), caught_up=caught_up)
                  for e, m in events if int(e.alert) in alive)
        alert_state_save(states=states, done=done)
    return new


def _attempt_record(queue: Any, pk: Any, status_field: str, *, ok: bool, error: str, now: float | None) -> None:
    """One delivery attempt's outcome on a row of ``queue`` (webhook events, channel
    deliveries): delivered (one UPDATE: it is recorded after every send), or retried with
    backoff (``core.alerts.next_attempt``) until failed."""
    if ok:
        queue.objects.filter(pk=pk).update(**{status_field: "delivered"}, attempts=F("attempts") + 1, last_error="")
        return
    now = time.time() if now is None else now
    with transaction.atomic():
        row = queue.objects.select_for_update().get(pk=pk)
        row.attempts += 1
        retry = next_attempt(row.attempts, now, alerts_conf().backoff)
        row.last_error = error[:200]
        status = "failed" if retry is None else "pending"
        row.next_attempt = retry or 0
        setattr(row, status_field, status)
        row.save(update_fields=["attempts", status_field, "last_error", "next_attempt"])


def alert_event_attempted(*, event_id: str, ok: bool, error: str = "", now: float | None = None) -> None:
    """One webhook attempt's outcome."""
    _attempt_record(AlertEvent, event_id, "delivery", ok=ok, error=error, now=now)


MARKERS_PER_SYMBOL = 5_000  # per user: a runaway strategy cannot fill the table


class MarkerQuotaError(ValueError):
    pass


def marker_create(*, user: Any, symbol: Symbol, spec: Any) -> Marker:
    """Store a marker (``market.core.markers.MarkerSpec``), within the user's quota."""
    with transaction.atomic():
        if Marker.objects.filter(user=user, symbol=symbol).count() >= MARKERS_PER_SYMBOL:
            raise MarkerQuotaError(f"at most {MARKERS_PER_SYMBOL} markers per symbol; delete some first")
        return Marker.objects.create(user=user, symbol=symbol, time=spec.time, price=spec.price, shape=spec.shape,
                                     position=spec.position, color=spec.color, text=spec.text)


def marker_delete(*, marker: Marker) -> None:
    marker.delete()


# ------------------------------------------------------------------ drawings (issue 12)

def drawing_create(*, user: Any, symbol: str, kind: str, points: Any, style: Any = None) -> Drawing:
    """Validate (``DrawingError`` names the field), store, and tell the user's other pages.
    At most ``MAX_PER_SYMBOL`` per user and symbol; the user's row is locked while counting,
    so two tabs at the cap cannot both add one."""
    kind = parse_kind(kind)
    points = parse_points(kind, points)
    style = parse_style(kind, style)
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if Drawing.objects.filter(user=user, symbol=symbol).count() >= MAX_PER_SYMBOL:
            raise DrawingError(f"symbol: at most {MAX_PER_SYMBOL} drawings per symbol; delete some first")
        return Drawing.objects.create(user=user, symbol=symbol, kind=kind, points=points, style=style)


def drawing_update(*, drawing: Drawing, points: Any = None, style: Any = None) -> Drawing:
    """New points (all of them) and/or style keys (merged into the current style)."""
    new_points = drawing.points if points is None else parse_points(drawing.kind, points)
    new_style = parse_style(drawing.kind, style, base=drawing.style)
    with transaction.atomic():
        drawing.points, drawing.style = new_points, new_style
        drawing.save(update_fields=["points", "style", "updated"])
    return drawing


def drawing_delete(*, drawing: Drawing) -> list[Alert]:
    """Delete it; the alerts that followed it are disabled, in the same transaction, and
    returned (their owner's pages are told)."""
    pk = drawing.pk
    with transaction.atomic():
        following = Alert.objects.filter(user_id=drawing.user_id, right=f"{DRAWING}{pk}").values_list("pk", flat=True)
        disabled = alert_disable(pks=list(following), reason=f"its drawing {pk} was deleted")
        drawing.delete()
    drawing.id = pk  # delete() clears it; the frame names what went
    return disabled


# ------------------------------------------------------------------ layouts (issue 12)

class LayoutQuotaError(LayoutError):
    """The user holds ``MAX_LAYOUTS`` layouts already (the API answers 409)."""


class LayoutNameTaken(LayoutError):
    """The user has a layout of that name already (the API answers 409)."""


def _name_free(*, owner: Any, name: str, layout: Layout | None = None) -> None:
    taken = Layout.objects.filter(owner=owner, name=name)
    if layout is not None:
        taken = taken.exclude(pk=layout.pk)
    if taken.exists():
        raise LayoutNameTaken(f"name: you already have a layout named {name!r}")


def layout_create(*, owner: Any, name: Any, spec: Any) -> Layout:
    """Validate (``LayoutError`` names the field) and store. At most ``MAX_LAYOUTS`` per
    user; the user's row is locked while counting, as for drawings."""
    name = parse_name(name)
    spec = parse_spec(spec)
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        if Layout.objects.filter(owner=owner).count() >= MAX_LAYOUTS:
            raise LayoutQuotaError(f"name: at most {MAX_LAYOUTS} layouts per user; delete some first")
        _name_free(owner=owner, name=name)
        return Layout.objects.create(owner=owner, name=name, spec=spec)


def layout_update(*, layout: Layout, name: Any = None, spec: Any = None) -> Layout:
    """A new name and/or a whole new spec."""
    new_name = layout.name if name is None else parse_name(name)
    new_spec = layout.spec if spec is None else parse_spec(spec)
    with transaction.atomic():
        _name_free(owner=layout.owner_id, name=new_name, layout=layout)
        layout.name, layout.spec = new_name, new_spec
        layout.save(update_fields=["name", "spec", "updated"])
    return layout


def layout_opened(*, layout: Layout) -> None:
    """Its page was opened: ``/layout/`` reopens it until another one is."""
    layout.opened = timezone.now()
    Layout.objects.filter(pk=layout.pk).update(opened=layout.opened)


def layout_delete(*, layout: Layout) -> None:
    layout.delete()


# ---- notification channels (issue 13) ----


def notify_channel_create(*, user: Any, name: str, kind: str, target: str) -> NotifyChannel:
    """A notification channel of ``user`` (the edge has checked ``target``: market.feed.notify)."""
    return NotifyChannel.objects.create(user=user, name=name.strip()[:100] or kind, kind=kind, target=target)


def notify_channel_delete(*, channel: NotifyChannel) -> None:
    channel.delete()


def alert_channels_set(*, alert: Alert, channels: Iterable[NotifyChannel]) -> None:
    """The channels ``alert``'s events are also sent to (the owner's own, checked by the caller)."""
    alert.channels.set(list(channels))


def notify_delivery_create_for(*, event_id: str, alert_id: int) -> int:
    """Queue the event for each enabled channel of its alert (idempotent); how many queued."""
    ids = list(NotifyChannel.objects.filter(alerts__id=alert_id, enabled=True).values_list("id", flat=True))
    NotifyDelivery.objects.bulk_create([NotifyDelivery(event_id=event_id, channel_id=c) for c in ids],
                                       ignore_conflicts=True)
    return len(ids)


def notify_delivery_attempted(*, delivery_id: int, ok: bool, error: str = "", now: float | None = None) -> None:
    """One channel delivery attempt's outcome, with the webhooks' backoff."""
    _attempt_record(NotifyDelivery, delivery_id, "status", ok=ok, error=error, now=now)


def delivery_attempts_record(attempts: list[tuple[str, Any, bool, str]], *, now: float | None = None) -> None:
    """Outcomes known together (market.feed.webhooks' rounds), in one commit: ``(kind, id,
    ok, error)`` with kind ``hook`` (an alert event's webhook) or ``channel`` (a delivery)."""
    with transaction.atomic():
        for kind, ident, ok, error in attempts:
            if kind == "hook":
                alert_event_attempted(event_id=ident, ok=ok, error=error, now=now)
            else:
                notify_delivery_attempted(delivery_id=ident, ok=ok, error=error, now=now)


# --- Candle partitions (PostgreSQL; docs/durability.md "Partitions") -----------------------

#: One advisory lock serialises partition DDL of every process: two writers that need the
#: same new day both succeed (the second finds it made), and a single lock cannot deadlock.
_PARTITION_LOCK = 0x5443_5054  # 'TCPT'


class _PartitionState:
    """What this process knows exists (committed) in one database: partition names, and
    which timeframes are split by time. The writer's hot path is a set lookup against it."""

    def __init__(self, rows: list) -> None:
        self.known: set[str] = {r.partition.name for r in rows if not r.pending}
        self.ranged: dict[str, bool] = {r.partition.timeframe: r.ranged for r in rows if r.partition.start is None}
        self.memo: dict[tuple[str, int], frozenset[Partition]] = {}

    def learn(self, names: set[str], ranged: Mapping[str, bool]) -> None:
        self.known |= names
        self.ranged.update(ranged)
        self.memo.clear()  # worked out before a timeframe's layout was known for sure


_partition_states: dict[str, _PartitionState | None] = {}


def _partition_state() -> _PartitionState | None:
    if connection.vendor != "postgresql":
        return None
    key = str(connection.settings_dict.get("NAME"))
    if key not in _partition_states:
        rows = selectors.candle_partition_list()
        _partition_states[key] = None if rows is None else _PartitionState(rows)
    return _partition_states[key]


def candle_partition_forget() -> None:
    """Forget what this process knew about partitions (after a migration or a failed write)."""
    _partition_states.clear()


def _retained() -> set[str]:
    return {code for code, _ in market().retention_days}


def _partitions_missing(state: _PartitionState, pairs: Iterable[tuple[str, int]]) -> set[Partition]:
    table = Candle._meta.db_table
    retained: set[str] | None = None
    missing: set[Partition] = set()
    for code, day in {(code, t // DAY) for code, t in pairs}:
        parts = state.memo.get((code, day))
        if parts is None:
            ranged = state.ranged.get(code)
            if ranged is None:  # no partition for this timeframe yet: made as the settings say
                retained = _retained() if retained is None else retained
                ranged = code in retained
            parts = frozenset(needed(table, [(code, day * DAY)], {code} if ranged else set())
                              | {Partition(table, code)})
            state.memo[(code, day)] = parts
        if not state.known.issuperset(p.name for p in parts):
            missing |= {p for p in parts if p.name not in state.known}
    return missing


def candle_partition_ensure(*, pairs: Iterable[tuple[str, int]]) -> list[str]:
    """Make sure the partitions that ``(timeframe, time)`` candles go to exist, with
    ``AHEAD`` more days (months) after the newest: the writer calls it for every batch
    (a set lookup once known), runfeed and prune_candles for now. Returns the names made.

    Runs in the caller's transaction: a partition made for a write that rolls back is
    rolled back with it, and the process only learns of partitions once committed. A no-op
    where candles are not partitioned (SQLite)."""
    state = _partition_state()
    if state is None:
        return []
    missing = _partitions_missing(state, pairs)
    if not missing:
        return []
    made: list[str] = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PARTITION_LOCK])
        now_known = _PartitionState(selectors.candle_partition_list() or [])  # under the lock, read again
        exists, ranged = now_known.known, now_known.ranged
        retained = _retained()
        for p in sorted(missing, key=lambda p: (p.timeframe, p.start is not None, p.start or 0)):
            if p.name in exists:
                continue
            if p.start is None:
                ranged[p.timeframe] = p.timeframe in retained
                statements = create_sql(p, ranged=ranged[p.timeframe])
            elif ranged.get(p.timeframe):
                statements = create_sql(p)
            else:  # the timeframe is one plain partition (kept forever when it was made)
                continue
            for sql in statements:
                cursor.execute(sql)
            exists.add(p.name)
            made.append(p.name)
        known = set(exists)
        transaction.on_commit(lambda: state.learn(known, ranged))
    if made:
        logger.info("made candle partitions %s", ", ".join(made))
    return made


def candle_partition_ensure_ahead(*, now: float) -> list[str]:
    """The partitions of every stored timeframe for ``now`` and the ``AHEAD`` spans after it."""
    with transaction.atomic():
        return candle_partition_ensure(pairs=[(tf.code, int(now)) for tf in market().plan.stored])


def candle_partition_drop(*, timeframe: str, before: int, dry_run: bool = False) -> list[tuple[str, int]] | None:
    """Drop the ``timeframe`` range partitions wholly older than ``before`` (``DETACH …
    CONCURRENTLY`` outside a transaction, so readers and writers go on; then ``DROP``);
    returns ``(name, candles)`` for each (``dry_run``: what would go). None where this
    timeframe is not split by time (SQLite, a timeframe kept forever when its partition was
    made): ``candle_prune`` deletes rows instead. Rows in the partition that holds the
    cutoff stay until it expires wholly."""
    rows = selectors.candle_partition_list()
    if rows is None:
        return None
    mine = [r for r in rows if r.partition.timeframe == timeframe]
    whole = [r for r in mine if r.partition.start is None]
    if not whole:
        return []
    if not whole[0].ranged:
        return None
    ranges = [r for r in mine if r.partition.start is not None]
    pending = {r.partition for r in ranges if r.pending}
    # a pending detach first: PostgreSQL refuses any other detach on the parent until it is finished
    doomed = sorted(pending) + [p for p in expired([r.partition for r in ranges], before) if p not in pending]
    out: list[tuple[str, int]] = []
    concurrently = not connection.in_atomic_block
    if doomed and not dry_run and not concurrently:  # rows written earlier in this transaction: check their deferred
        connection.check_constraints()  # foreign keys now, or PostgreSQL refuses to drop their table
    for p in doomed:
        n = selectors.candle_partition_count(partition=p)
        if not dry_run:
            statements = finalize_sql(p) if p in pending else drop_sql(p, concurrently=concurrently)
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
            for state in _partition_states.values():
                if state is not None:
                    state.known.discard(p.name)
        out.append((p.name, n))
    return out


def candle_partition_compact(*, timeframe: str, now: int, dry_run: bool = False,
                             done: Callable[[str, int, float], None] | None = None) -> list[tuple[str, int]] | None:
    """Rewrite in key order (``core.partitions.compact_sql``) each ``timeframe`` range
    partition that ended by ``now`` and was not rewritten yet, so a symbol's history is read
    from a few pages instead of one page per candle; returns ``(name, candles)`` for each
    (``dry_run``: what would be). ``done(name, candles, seconds)`` after each. None where
    the timeframe is not split by time (SQLite, or kept whole)."""
    rows = selectors.candle_partition_list()
    if rows is None:
        return None
    mine = [r for r in rows if r.partition.timeframe == timeframe]
    if not any(r.partition.start is None and r.ranged for r in mine):
        return None
    ready = closed([r.partition for r in mine if r.partition.start is not None and not r.pending], now)
    todo = selectors.candle_partition_unclustered(partitions=ready)
    out: list[tuple[str, int]] = []
    for p in ready:
        if p not in todo:
            continue
        n = selectors.candle_partition_count(partition=p)
        if not dry_run:
            started = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor:
                for sql in compact_sql(p, todo[p]):
                    cursor.execute(sql)
            if done is not None:
                done(p.name, n, time.perf_counter() - started)
        out.append((p.name, n))
    return out


# ---- Shared vendor budgets (market.budget's database store) ---------------------------------


def connection_close_idle() -> None:
    """Close this thread's connection unless a transaction is open: worker threads (history
    requests, the SDK's symbol look-ups) take the budget too and must not leave idle
    connections behind (PostgreSQL counts them; a test database cannot be dropped)."""
    if not connection.in_atomic_block:
        connection.close()


def _retry_locked(fn):
    """Retry a budget write that found the database locked for a moment: SQLite answers a
    shared-cache (in-memory) database's concurrent writer with "table is locked" at once,
    without the busy timeout a file database waits. Short waits, a second at most."""
    import functools

    @functools.wraps(fn)
    def run(**kwargs):
        started = time.monotonic()
        for attempt in range(40):
            late = time.monotonic() - started  # a retried call happens later: its times move with it
            try:
                return fn(**{k: v + late if k in ("now", "until") else v for k, v in kwargs.items()})
            except OperationalError as exc:
                if "locked" not in str(exc) or connection.in_atomic_block or attempt == 39:
                    raise
                time.sleep(0.025)

    return run


def _budget_lock(app: str) -> None:
    """Inside a transaction: write the app's row first, so the read-modify-write that follows
    is serialised (SQLite's write lock is taken by the first write, PostgreSQL locks the row).
    Reading first would let two SQLite writers both read and one fail to upgrade."""
    RestBudget.objects.filter(app=app).update(seq=F("seq") + 1)


@_retry_locked
def rest_budget_take(*, app: str, now: float, limits: Limits, ticket: str) -> float:
    """One REST call of ``app`` (``ticket``) if it fits every window: records it and returns
    0; else the seconds to wait (nothing recorded). Raises ``DayExhausted`` when today's
    count is used up."""
    RestBudget.objects.get_or_create(app=app)
    with transaction.atomic():
        _budget_lock(app)
        row = RestBudget.objects.get(app=app)
        day = day_number(now)
        if row.day != day:
            row.day, row.day_count = day, 0
        if row.blocked_until > now:
            return row.blocked_until - now
        calls = {k: t for k, t in (row.calls or {}).items() if t > now - limits.minute}
        wait = window_wait(sorted(calls.values()), now, limits)
        if wait > 0:
            return wait
        if row.day_count >= limits.per_day:
            raise DayExhausted(row.day_count, limits.per_day, day_start(day + 1))
        calls[ticket] = now
        row.calls, row.day_count = calls, row.day_count + 1
        row.save(update_fields=["calls", "day", "day_count", "updated"])
        return 0.0


@_retry_locked
def rest_budget_finish(*, app: str, ticket: str, now: float) -> None:
    """The call ``ticket`` got its answer: it counts in the windows from ``now``."""
    with transaction.atomic():
        _budget_lock(app)
        row = RestBudget.objects.filter(app=app).first()
        if row is not None and ticket in (row.calls or {}):
            row.calls[ticket] = max(row.calls[ticket], now)
            row.save(update_fields=["calls", "updated"])


@_retry_locked
def rest_budget_block(*, app: str, until: float) -> None:
    """A 429: every process of ``app`` waits until ``until`` (epoch seconds)."""
    RestBudget.objects.get_or_create(app=app)
    with transaction.atomic():
        _budget_lock(app)
        RestBudget.objects.filter(app=app, blocked_until__lt=until).update(blocked_until=until)


@_retry_locked
def symbol_claim_set(*, app: str, owner: str, wanted: int, cap: int, now: float, ttl: float) -> int:
    """``owner`` holds ``min(wanted, room)`` of ``app``'s ``cap`` symbol slots until
    ``now + ttl``; returns ``room``, the slots the others' live claims leave it."""
    RestBudget.objects.get_or_create(app=app)
    with transaction.atomic():
        _budget_lock(app)
        SymbolClaim.objects.filter(app=app, expires__lte=now).delete()
        others = sum(SymbolClaim.objects.filter(app=app).exclude(owner=owner).values_list("count", flat=True))
        room = max(0, cap - others)
        granted = min(wanted, room)
        if granted > 0:
            SymbolClaim.objects.update_or_create(app=app, owner=owner,
                                                 defaults={"count": granted, "expires": now + ttl})
        else:
            SymbolClaim.objects.filter(app=app, owner=owner).delete()
        return room


@_retry_locked
def symbol_claim_release(*, app: str, owner: str) -> None:
    SymbolClaim.objects.filter(app=app, owner=owner).delete()
