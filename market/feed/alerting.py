"""Alerts evaluated in the writer, on exactly what it accepts and stores (issue 13).

``AlertBook`` holds one ``core.alerts.Evaluator`` per active alert:

- ``tick``: every tick the engine accepted (``Pipeline.on_tick``), in the order the engine
  took them, for ``price`` alerts; numeric crossing alerts are indexed by level, so a
  tick evaluates only those whose level it crossed;
- ``candles``: the candles of each store (stored timeframes only), for bar alerts; a
  closed bar is evaluated once (a retried store hands the same candles again);
- ``catch_up``: at start, what was stored while no writer evaluated it.

Events and the evaluators' states are stored by the ``store`` wrapper in the same
transaction as the candles and the feed's position (``services.alert_checkpoint``): the
price alerts' part is taken in the event loop together with the engine's checkpoint
(``snapshot_ticks``), the bar alerts' part in the store's thread (``checkpoint``). So a
restart resumes the evaluators where the stored input resumes and re-fires, with the same
ids, only what was not stored: recording is idempotent on the event id.

After a store commits, ``announce`` tells each owner's open pages (``alert_event`` for
each stored event, ``alert`` for an alert that became done or expired) over the user
channel (``market.live.broadcast.user_publish``); a layer outage loses only the frames,
never the stored events, and never stops the writer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from bisect import bisect_left, bisect_right
from collections import deque
from typing import Any, Callable

from market.core.alerts import AlertError, Condition, Evaluator, Event, history_needed, parse_condition
from market.core.sessions import Session, TradingDay
from market.core.types import Candle, CandleUpdate, Tick
from market.live.broadcast import user_publish

logger = logging.getLogger("market.feed")

MAX_HISTORY = 2000  # candles kept per (symbol, tf) for bar alerts whose studies need "all"
RELOAD_SECONDS = 5.0
PUBLISH_TIMEOUT = 2.0  # seconds per frame: a stuck layer must not hold the writer up


def event_frame(event: Event, message: str, fired_at: float, caught_up: bool = False) -> dict[str, Any]:
    """The ``alert_event`` payload (the webhook body's fields; ``caught_up`` when a restart's
    catch-up fired it)."""
    frame = {"id": event.id, "alert": int(event.alert), "symbol": event.symbol, "tf": event.tf,
             "time": event.time, "value": event.value, "message": message, "fired_at": fired_at}
    return {"event": frame | {"caught_up": True} if caught_up else frame}


class AlertBook:
    def __init__(self, *, session_of: Callable[[str], Session], stored: set[str],
                 history: Callable[[str, str, int], list[Candle]] | None = None) -> None:
        self._session_of = session_of
        self._stored = stored
        self._history = history
        self.evaluators: dict[int, Evaluator] = {}
        self.messages: dict[int, str] = {}
        self.rows: dict[int, dict[str, Any]] = {}  # the alert as the API shows it, with its owner
        self.expired: set[int] = set()
        # alert -> its state as the database holds it: a checkpoint writes only the states that
        # changed (10,000 alerts were 10,000 UPDATEs in every store)
        self._saved: dict[int, dict[str, Any]] = {}
        self.announcing: list[tuple[int, str, dict[str, Any]]] = []  # (user, kind, payload)
        self._by_symbol: dict[str, list[int]] = {}
        # The price alerts' hot path: per symbol, the numeric-level crossing alerts sorted by
        # level (``_up``: crosses_above/crosses, ``_down``: crosses_below/crosses), so a tick
        # looks only at the alerts whose level lies between the symbol's last price and its
        # own; the rest (above/below, drawn lines) are evaluated on every tick (``_each``).
        self._last: dict[str, tuple[float, float]] = {}  # symbol -> (last price, its time)
        self._up: dict[str, tuple[list[float], list[int]]] = {}
        self._down: dict[str, tuple[list[float], list[int]]] = {}
        self._each: dict[str, list[int]] = {}
        self._arming: dict[str, list[int]] = {}  # new: their first tick only arms them
        self._expiry: dict[str, list[tuple[float, int]]] = {}
        self._indexed: dict[str, list[int]] = {}
        # symbol -> (a, b, until): the last price lies strictly between the nearest levels a
        # below and b above it (no level equals it), the symbol has only indexed alerts and
        # none expires before ``until``: a tick priced inside (a, b) before then can fire
        # nothing, so the hot path only notes its price. Dropped whenever that may change.
        self._band: dict[str, tuple[float, float, float]] = {}
        self._levels: dict[str, list[float]] = {}  # symbol -> every indexed level, sorted
        self._days: dict[str, TradingDay] = {}  # symbol -> the trading day of its last firing
        self._bars: dict[tuple[str, str], deque[Candle]] = {}
        self._last_final: dict[tuple[str, str], int] = {}
        self.pending: list[tuple[Event, str]] = []
        self._unstored_bars: list[tuple[Event, str]] = []  # a failed store's bar events
        self.done: set[int] = set()
        self.missing: dict[int, str] = {}  # alerts whose drawing is gone: why they stop
        self.wake = asyncio.Event()  # set when a store that recorded events has committed
        self.fired = 0
        self.loaded_at = 0.0

    # -- the set of alerts --------------------------------------------------------------
    def load(self, rows: list[dict[str, Any]], lines: dict[int, tuple[str, list]] | None = None) -> None:
        """Active alerts: ``{id, symbol, tf, left, op, right, trigger, bars, expires, message, state}``.
        Evaluators of alerts still active keep their state; new ones start from ``state``.
        ``lines``: the current ``(kind, points)`` of the drawings the alerts name; an alert
        whose drawing is gone is not evaluated and is listed in ``missing`` (to disable)."""
        lines = lines or {}
        self._days = {}  # (the calendar's windows may have changed since)
        keep: dict[int, Evaluator] = {}
        self.missing = {}
        for row in rows:
            pk = int(row["id"])
            if pk in self.done:
                continue
            if pk in self.evaluators:
                keep[pk] = self.evaluators[pk]
            else:
                try:
                    cond = parse_condition(alert=pk, symbol=row["symbol"], tf=row["tf"], left=row["left"],
                                           op=row["op"], right=row["right"], trigger=row["trigger"],
                                           bars=row["bars"], expires=row["expires"])
                except AlertError as exc:
                    logger.warning("alert %s is not evaluated: %s", pk, exc)
                    continue
                if not cond.on_ticks and cond.tf.code not in self._stored:
                    logger.warning("alert %s: bar alerts on derived timeframe %s are not evaluated yet", pk, cond.tf)
                    continue
                keep[pk] = Evaluator(cond, dict(row.get("state") or {}))
                self._saved[pk] = dict(row.get("state") or {})
                self.messages[pk] = row.get("message") or ""
                self.rows[pk] = {k: v for k, v in row.items() if k != "state"}
            drawing = keep[pk].condition.right.drawing
            if drawing is not None:  # the line as it is now: a moved drawing is followed
                keep[pk].line = lines.get(drawing)
                if keep[pk].line is None:
                    self.missing[pk] = f"its drawing {drawing} was deleted"
                    del keep[pk]
        self.sync_states()  # the kept evaluators' states, before the index is rebuilt
        self.evaluators = keep
        self._saved = {pk: st for pk, st in self._saved.items() if pk in keep}
        # rows of alerts no longer active go; a done one's stays until ``stored`` tells its owner
        self.rows = {pk: row for pk, row in self.rows.items() if pk in keep or pk in self.done}
        self._by_symbol = {}
        for pk, ev in keep.items():
            self._by_symbol.setdefault(ev.condition.symbol, []).append(pk)
        self._reindex()
        self.loaded_at = time.monotonic()

    @staticmethod
    def _indexable(ev: Evaluator) -> bool:
        c = ev.condition
        return c.on_ticks and c.right.kind == "number" and c.op in ("crosses_above", "crosses_below", "crosses")

    def _reindex(self, only: str | None = None) -> None:
        """Rebuild the price alerts' index (of one symbol: ``only``) from the evaluators."""
        symbols = [only] if only is not None else list(self._by_symbol)
        if only is None:
            self._up, self._down, self._each, self._arming, self._expiry, self._indexed = {}, {}, {}, {}, {}, {}
            self._band, self._levels = {}, {}
        for symbol in symbols:
            up: list[tuple[float, int]] = []
            down: list[tuple[float, int]] = []
            each, arming, expiry, indexed = [], [], [], []
            for pk in self._by_symbol.get(symbol, ()):
                ev = self.evaluators.get(pk)
                if ev is None or not ev.condition.on_ticks:
                    continue
                c = ev.condition
                if not self._indexable(ev):
                    each.append(pk)
                    continue
                if ev.state.get("prev") is None:
                    arming.append(pk)
                    continue
                seen = self._last.get(symbol)
                if seen is None or ev.state.get("t", -math.inf) > seen[1]:
                    self._last[symbol] = (ev.state["prev"], ev.state.get("t", -math.inf))
                assert c.right.number is not None
                if c.op != "crosses_below":
                    up.append((c.right.number, pk))
                if c.op != "crosses_above":
                    down.append((c.right.number, pk))
                if c.expires is not None:
                    expiry.append((c.expires, pk))
                indexed.append(pk)
            up.sort()
            down.sort()
            expiry.sort(reverse=True)  # the soonest last: popped first
            for table, rows in ((self._up, up), (self._down, down)):
                table[symbol] = ([x for x, _ in rows], [pk for _, pk in rows])
            self._each[symbol], self._arming[symbol] = each, arming
            self._expiry[symbol], self._indexed[symbol] = expiry, indexed
            self._levels[symbol] = sorted({x for x, _ in up} | {x for x, _ in down})
            self._set_band(symbol)

    def _set_band(self, symbol: str) -> None:
        """The symbol's quiet band around its last price (see ``_band``), or none."""
        self._band.pop(symbol, None)
        last = self._last.get(symbol)
        if last is None or self._each.get(symbol) or self._arming.get(symbol):
            return
        levels, price = self._levels[symbol], last[0]
        i, j = bisect_left(levels, price), bisect_right(levels, price)
        if i != j:  # the price sits on a level: the next tick may cross it either way
            return
        expiry = self._expiry[symbol]
        self._band[symbol] = (levels[i - 1] if i else -math.inf, levels[j] if j < len(levels) else math.inf,
                              expiry[-1][0] if expiry else math.inf)

    def sync_states(self) -> None:
        """Write the symbol's last price into the indexed evaluators' states (the hot path
        keeps it once per symbol, not per alert)."""
        for symbol, pks in self._indexed.items():
            last = self._last.get(symbol)
            if last is None:
                continue
            for pk in pks:
                ev = self.evaluators.get(pk)
                if ev is not None and not ev.done:
                    ev.state["prev"], ev.state["t"] = last

    def _emit(self, pk: int, event: Event | None, into: list[tuple[Event, str]]) -> None:
        if event is None:
            return
        into.append((event, self.messages.get(pk, "")))
        self.fired += 1
        if self.evaluators[pk].done:
            self.done.add(pk)

    def _expire(self, pk: int, now: float) -> bool:
        """Whether alert ``pk`` has expired at exchange time ``now`` (it is then done)."""
        expires = self.evaluators[pk].condition.expires
        if expires is None or now < expires:
            return False
        if pk not in self.done:
            self.done.add(pk)
            self.expired.add(pk)
        return True

    # -- input ----------------------------------------------------------------------------
    def tick(self, tick: Tick) -> None:
        symbol = tick.symbol
        band = self._band.get(symbol)
        if band is not None and band[0] < tick.price < band[1] and tick.time < band[2]:
            self._last[symbol] = (tick.price, tick.time)  # nothing can fire: the hot path
            return
        if symbol not in self._up:
            return
        try:
            self._tick(tick)
        except Exception:  # noqa: BLE001 - an alert must never stop the feed
            logger.exception("evaluating alerts on a tick failed")
        self._set_band(symbol)

    __call__ = tick

    def _tick(self, tick: Tick) -> None:
        symbol, t, price = tick.symbol, tick.time, tick.price
        last = self._last.get(symbol)
        self._last[symbol] = (price, t)
        expiry = self._expiry[symbol]
        while expiry and t >= expiry[-1][0]:
            pk = expiry.pop()[1]
            if pk in self.evaluators:
                self._expire(pk, t)
        candidates: list[int] = []
        if last is not None and price != last[0]:
            if price > last[0]:  # the levels in (last, price]
                levels, pks = self._up[symbol]
                candidates = pks[bisect_right(levels, last[0]):bisect_right(levels, price)]
            else:  # the levels in [price, last)
                levels, pks = self._down[symbol]
                candidates = pks[bisect_left(levels, price):bisect_left(levels, last[0])]
        day = None
        for indexed, pks in ((True, candidates), (False, self._each[symbol])):
            for pk in pks:
                ev = self.evaluators.get(pk)
                if ev is None or ev.done or pk in self.done or self._expire(pk, t):
                    continue
                if indexed:  # its previous price is the symbol's
                    ev.state["prev"], ev.state["t"] = last  # type: ignore[misc]
                day = day or self._day_of(symbol, t)
                self._emit(pk, ev.tick(t, price, day.bucket_start(ev.condition.tf, t)), self.pending)
        arming = self._arming[symbol]
        if arming:  # their first tick: only arms them, then they join the index
            for pk in arming:
                ev = self.evaluators.get(pk)
                if ev is not None:
                    ev.state["prev"], ev.state["t"] = price, t
            self._reindex(symbol)

    def _day_of(self, symbol: str, t: float) -> TradingDay:
        """``session.day_of(t)`` for the symbol, kept while ``t`` stays in that day's session
        (the time-zone arithmetic costs more than the rest of a firing)."""
        day = self._days.get(symbol)
        if day is None or not day.open <= t < day.close:
            day = self._days[symbol] = self._session_of(symbol).day_of(t)
        return day

    def candles(self, updates: list[CandleUpdate]) -> list[tuple[Event, str]]:
        """Evaluate the bar alerts on the candles being stored; returns their events."""
        out: list[tuple[Event, str]] = []
        for u in sorted(updates, key=lambda u: (u.symbol, u.timeframe, u.candle.time)):
            # (an alert done since the last reload is still indexed, but has no evaluator)
            pks = [pk for pk in self._by_symbol.get(u.symbol, ())
                   if (ev := self.evaluators.get(pk)) is not None and not ev.condition.on_ticks
                   and ev.condition.tf.code == u.timeframe]
            if not pks:
                continue
            key = (u.symbol, u.timeframe)
            bars = self._bars_of(key, u.candle.time)
            if u.final and u.candle.time <= self._last_final.get(key, -1):
                continue  # already evaluated (a retried store)
            series = list(bars) + [u.candle]
            session = self._session_of(u.symbol)
            for pk in pks:
                ev = self.evaluators[pk]
                if u.final and u.candle.time <= ev.state.get("t", -1):
                    continue  # evaluated already (by a restart's catch-up)
                if not ev.done and pk not in self.done and not self._expire(pk, u.candle.time):
                    self._emit(pk, ev.bar(series, session=session, final=u.final), out)
            if u.final:
                bars.append(u.candle)
                self._last_final[key] = u.candle.time
        return out

    def _bars_of(self, key: tuple[str, str], before: int) -> deque[Candle]:
        bars = self._bars.get(key)
        if bars is None:
            size = MAX_HISTORY
            for pk in self._by_symbol.get(key[0], ()):
                if pk not in self.evaluators:
                    continue
                c = self.evaluators[pk].condition
                if c.tf.code == key[1]:
                    need = history_needed(c)
                    size = max(2, min(MAX_HISTORY, need if need is not None else MAX_HISTORY))
            loaded = self._history(key[0], key[1], before) if self._history is not None else []
            bars = self._bars[key] = deque([x for x in loaded if x.time < before], maxlen=size)
            if bars:
                self._last_final[key] = bars[-1].time
        return bars

    # -- a restart's catch-up ------------------------------------------------------------
    def catch_up(self, *, since: Callable[[str, str, int], list[Candle]], now: float,
                 live: bool) -> tuple[dict[str, Any], int, tuple[int, int] | None]:
        """Evaluate what was stored while no writer evaluated it (a live feed's downtime,
        gap repair, a back-fill): each alert from its last evaluated time (``state["t"]``,
        else its creation) on, in order. Bar alerts: the closed bars of their timeframe
        (a bar is closed when a later one is stored or, for a live feed, its end has passed);
        price alerts: the stored 5 s candles (``Evaluator.catch_up``: a cross is detected when
        the candle's range surely crossed the level; the event's time is the candle's).
        ``since(symbol, tf, start)``: the stored candles from ``start`` on, ascending, with
        ``history`` bars before them for the studies. Returns a checkpoint (``caught_up``),
        how many alerts had something to evaluate and the span of candle times evaluated."""
        self.sync_states()
        events: list[tuple[Event, str]] = []
        alerts, first, last = 0, None, None
        for pk, ev in list(self.evaluators.items()):
            c = ev.condition
            row = self.rows.get(pk, {})
            start = ev.state.get("t", row.get("created"))
            if start is None or ev.done:
                continue
            session = self._session_of(c.symbol)
            if c.on_ticks:
                after = int(start) // 5 * 5  # the 5 s bucket of the last tick evaluated
                todo = [x for x in since(c.symbol, "5s", after + 1) if x.time <= now]
            else:
                after = int(start) if "t" in ev.state else int(start) - c.tf.seconds  # fresh: bars closing after creation
                series = [x for x in since(c.symbol, c.tf.code, after + 1) if x.time <= now]
                closed = [i for i, x in enumerate(series) if x.time > after
                          and (i + 1 < len(series) or (live and x.time + c.tf.seconds <= now))]
                todo = [series[i] for i in closed]
            if not todo:
                continue
            alerts += 1
            first = todo[0].time if first is None else min(first, todo[0].time)
            last = todo[-1].time if last is None else max(last, todo[-1].time)
            if c.on_ticks:
                for x in todo:
                    if self._expire(pk, x.time):
                        break
                    self._emit(pk, ev.catch_up(x, session.day_of(x.time).bucket_start(c.tf, x.time)), events)
                    if ev.done:
                        break
            else:
                warm = self._history(c.symbol, c.tf.code, todo[0].time) if self._history is not None else []
                bars = [x for x in warm if x.time < todo[0].time] + series
                for x in todo:
                    if self._expire(pk, x.time):
                        break
                    upto = [b for b in bars if b.time <= x.time][-MAX_HISTORY:]
                    self._emit(pk, ev.bar(upto, session=session, final=True), events)
                    if ev.done:
                        break
        for pk, ev in self.evaluators.items():  # the symbols' last prices: the newest caught up
            seen = self._last.get(ev.condition.symbol)
            if ev.condition.on_ticks and ev.state.get("prev") is not None and (
                    seen is None or ev.state.get("t", -math.inf) > seen[1]):
                self._last[ev.condition.symbol] = (ev.state["prev"], ev.state.get("t", -math.inf))
        self._reindex()
        self.sync_states()
        states = {pk: dict(ev.state) for pk, ev in self.evaluators.items()}
        checkpoint = {"events": events, "states": states, "done": {pk for pk in self.done if pk in states},
                      "caught_up": True}
        return checkpoint, alerts, None if first is None else (first, last)

    # -- output ----------------------------------------------------------------------------
    def snapshot_ticks(self) -> dict[str, Any]:
        """(In the event loop, at the moment the engine's checkpoint is taken, so both hold
        the same ticks.) The price alerts' events so far and their evaluators' states."""
        self.sync_states()
        ticking = {pk: ev for pk, ev in self.evaluators.items() if ev.condition.on_ticks}
        return {"events": list(self.pending), "states": {pk: dict(ev.state) for pk, ev in ticking.items()},
                "done": {pk for pk in self.done if pk in ticking}}

    def checkpoint(self, updates: list[CandleUpdate], ticks: dict[str, Any]) -> dict[str, Any]:
        """(In the store's thread.) Evaluate the bar alerts on ``updates`` and say what to
        store with them: the events, every evaluator's state and the alerts that are done."""
        # A bar is evaluated once (``candles`` skips it on a retry), so the events of a store
        # that failed are carried into the next one, which stores the same candles (the
        # retry's, or a journal rebuild's): a database outage loses no bar event.
        bar_events = self._unstored_bars = self._unstored_bars + self.candles(updates)
        bars = {pk: ev for pk, ev in self.evaluators.items() if not ev.condition.on_ticks}
        done = ticks["done"] | {pk for pk in self.done if pk in bars}
        states = ticks["states"] | {pk: dict(ev.state) for pk, ev in bars.items()}
        saved = self._saved
        return {"events": list(ticks["events"]) + bar_events,
                "states": {pk: st for pk, st in states.items() if pk in done or saved.get(pk) != st},
                "done": done}

    def stored(self, alerts: dict[str, Any], ticks: int) -> None:
        """``alerts`` (a ``checkpoint``, whose first ``ticks`` events came from ``pending``)
        was stored: queue what ``announce`` tells the owners."""
        now = time.time()
        self._unstored_bars = []
        self._saved.update(alerts["states"])
        for event, message in alerts["events"]:
            owner = self.rows.get(int(event.alert), {}).get("user")
            if owner is not None:
                self.announcing.append((owner, "alert_event", event_frame(event, message, now,
                                                                         alerts.get("caught_up", False))))
        del self.pending[:ticks]
        for pk in alerts["done"]:
            if self.evaluators.pop(pk, None) is None:
                continue
            row = self.rows.pop(pk, None)
            if row is not None and row.get("user") is not None:
                alert = {k: v for k, v in row.items() if k not in ("user", "created")} | {"status": "done"}
                if pk in self.expired:
                    alert["expired"] = True
                self.announcing.append((row["user"], "alert", {"op": "upsert", "alert": alert}))
            self.expired.discard(pk)

    async def announce(self, layer: Any) -> int:
        """(In the event loop, after a store committed.) Send the queued frames; returns how
        many were sent. A failing layer drops them (logged): the events are stored, and a
        page reads them again over HTTP when it reconnects."""
        queued, self.announcing = self.announcing, []
        if layer is None:
            return 0
        sent = 0
        for user, kind, payload in queued:
            try:
                await asyncio.wait_for(user_publish(layer, user, kind, payload), PUBLISH_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - an outage must not stop the writer
                logger.warning("could not tell user %s's pages about %s frames (%d dropped): %s",
                               user, kind, len(queued) - sent, exc)
                return sent
            sent += 1
        return sent
