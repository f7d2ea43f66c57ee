"""What the Fyers feed expects from the exchange calendar (``market.core.calendar``).

One ``Hours`` per feed, shared by the session (the stall watchdog, "market closed, opens
..."), the streams (the back-fill window) and the catch-up (reconciliation windows, the
day bar). Each symbol's calendar is its session code's (``Symbol.exchange``: NSE, BSE,
NSE_CD, NSE_COM, MCX) with its hours from the symbol master's session column when it has
one. The calendar is re-read with the symbols (``reload``), so an override entered in the
admin takes effect within ``REFRESH_SECONDS``.

Expectations only: a tick the calendar did not expect is still handed on (and counted and
logged once per exchange and date as an unscheduled session).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, Callable, Iterable, Mapping

from market.conf import market
from market.core.calendar import Calendar, ExchangeCalendar, Interval
from market.core.types import Tick

logger = logging.getLogger("market.feed")


class Hours:
    def __init__(self, symbols: Mapping[str, Any], *, clock: Callable[[], float] = time.time,
                 calendar: Calendar | None = None) -> None:
        self.symbols = symbols              # the feed's streamed symbols, by ticker (shared)
        self.clock = clock
        conf = market()
        self.calendar = calendar or Calendar(conf.sessions, dict(conf.calendars))
        self.unscheduled = 0                # ticks the calendar did not expect
        self._told: set[tuple[str, dt.date]] = set()
        self._window: dict[tuple[str, str], tuple[int, int, bool]] = {}  # (code, column) -> (from, to, open)

    def use(self, calendar: Calendar) -> None:
        """A fresh calendar (overrides re-read); its special sessions widen the session
        book's windows on their dates, so the engine accepts their ticks."""
        self.calendar = calendar
        self._window.clear()
        calendar.sessions.set_windows(calendar.special_windows())

    def of(self, symbol: Any) -> ExchangeCalendar:
        return self.calendar.for_exchange(symbol.exchange, getattr(symbol, "trading_session", "") or "")

    def _calendars(self, tickers: Iterable[str] | None = None) -> list[ExchangeCalendar]:
        symbols = [self.symbols[t] for t in (tickers if tickers is not None else self.symbols) if t in self.symbols]
        found = {id(c): c for c in (self.of(s) for s in symbols)}
        return list(found.values())

    # -- the watchdog and the badge ---------------------------------------------------------
    def open_now(self, tickers: Iterable[str] | None = None) -> bool:
        """Is a session of any of these symbols (default: all streamed) open now? With no
        symbols, NSE's calendar answers."""
        now = self.clock()
        calendars = self._calendars(tickers) or [self.calendar.for_exchange("NSE")]
        return any(self._is_open(c, now) for c in calendars)

    def _is_open(self, cal: ExchangeCalendar, t: float) -> bool:
        key = (cal.code, repr(cal.hours))
        cached = self._window.get(key)
        if cached is not None and cached[0] <= t < cached[1]:
            return cached[2]
        session = cal.session_at(t)
        if session is not None:
            self._window[key] = (session.open, session.close, True)
            return True
        upto = cal.next_open(t)
        self._window[key] = (int(t), int(upto if upto is not None else t + 3600), False)
        return False

    def closed_detail(self, tickers: Iterable[str] | None = None) -> str:
        """``connected; market closed (weekend); opens 2026-11-09 09:15 IST`` for the badge."""
        now = self.clock()
        calendars = self._calendars(tickers) or [self.calendar.for_exchange("NSE")]
        best: tuple[int, ExchangeCalendar] | None = None
        for cal in calendars:
            upto = cal.next_open(now)
            if upto is not None and (best is None or upto < best[0]):
                best = (upto, cal)
        if best is None:
            return "connected; market closed"
        status = best[1].status(now)
        why = status.holiday or status.reason
        local = dt.datetime.fromtimestamp(best[0], dt.timezone.utc).astimezone(best[1].zone)
        return f"connected; market closed ({why}); {best[1].code} opens {local:%Y-%m-%d %H:%M %Z}"

    def next_open(self, tickers: Iterable[str] | None = None) -> int | None:
        now = self.clock()
        opens = [o for o in (c.next_open(now) for c in self._calendars(tickers)) if o is not None]
        return min(opens) if opens else None

    # -- ticks ---------------------------------------------------------------------------------
    def check(self, tick: Tick) -> None:
        """Count (and log once per exchange and date) a tick outside every expected session."""
        symbol = self.symbols.get(tick.symbol)
        if symbol is None:
            return
        cal = self.of(symbol)
        if cal.round_the_clock or self._is_open(cal, tick.time):
            return
        self.unscheduled += 1
        date = cal.local_date(tick.time)
        if (cal.code, date) not in self._told:
            self._told.add((cal.code, date))
            status = cal.status(tick.time)
            logger.warning("fyers: unscheduled session: %s ticks on %s at %s although the calendar says %s%s; "
                           "kept (ticks are the truth; add a special session in the admin if it was planned)",
                           cal.code, tick.symbol, date.isoformat(), status.reason,
                           f" ({status.holiday})" if status.holiday else "")

    # -- catch-up windows --------------------------------------------------------------------
    def trading_recently(self, symbol: Any, now: float, lookback: float) -> bool:
        """In a session, or one closed less than ``lookback`` ago (its last bars to check)."""
        cal = self.of(symbol)
        if cal.session_at(now) is not None:
            return True
        closed = cal.last_close(now)
        return closed is not None and now - closed < lookback

    def day_closed(self, symbol: Any, now: float) -> int | None:
        """The 1d label of the symbol's trading day once its last session closed (None while it
        trades, or when today was no trading day)."""
        cal = self.of(symbol)
        day = cal.day(cal.local_date(now))
        if not day.trading or now < day.sessions[-1].close:
            return None
        return market().sessions.for_exchange(symbol.exchange).day_of(day.sessions[0].open).label

    def backfill_start(self, symbol: Any, now: float, days: float) -> int:
        """Where a symbol with nothing stored starts its back-fill: ``days`` trading days back
        (a weekend or holiday in between costs no history requests for empty days)."""
        cal = self.of(symbol)
        if cal.round_the_clock:
            return int(now - days * 86400)
        return cal.trading_days_back(now, max(1, round(days)))

    def session_of(self, symbol: Any, t: float) -> Interval | None:
        return self.of(symbol).session_at(t)
