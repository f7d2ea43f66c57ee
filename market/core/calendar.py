"""Exchange calendars: which days trade, their sessions, the next open and why not.

The holidays come from the ``holidays`` library's financial calendars (XNSE for NSE and
its currency and commodity segments and MCX, XBOM for BSE, XNYS for US stocks), the
hours from the segment's regular session (``market.core.sessions``), and the exchange's
own announcements (an extra closure, Muhurat trading on Diwali evening, a budget-day
Saturday session) arrive as ``Override`` data, edited in the admin.

A calendar sets *expectations* (the stall watchdog, "market closed, opens ...", the
back-fill and reconciliation windows); it never decides whether a tick is accepted:
that stays with the session hours of the segment, so a tick on a day the calendar thought
closed is kept (and logged by the feed as an unscheduled session).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Literal, Mapping
from zoneinfo import ZoneInfo

import holidays

from market.core.sessions import Session, SessionBook, parse_clock

Reason = Literal["open", "weekend", "holiday", "closed", "special_session"]
UTC = dt.timezone.utc
SEARCH_DAYS = 400            # how far next_open looks (a year of holidays and then some)
US_EASTERN = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True)
class Override:
    """An exchange announcement: ``closed`` all day, or a ``special`` session
    ``open``–``close`` (exchange-local). ``exchange`` is a session code (``NSE``) or a
    holiday market (``XNSE``: every segment that follows it)."""

    exchange: str
    date: dt.date
    kind: Literal["closed", "special"]
    open: dt.time | None = None
    close: dt.time | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("closed", "special"):
            raise ValueError(f"override kind must be closed or special, not {self.kind!r}")
        if self.kind == "special" and (self.open is None or self.close is None or self.close <= self.open):
            raise ValueError("a special session needs an open before its close")


@dataclass(frozen=True, slots=True)
class Interval:
    open: int
    close: int
    special: bool = False

    def contains(self, t: float) -> bool:
        return self.open <= t < self.close


@dataclass(frozen=True, slots=True)
class Day:
    """One exchange-local date: its sessions (none on a weekend, holiday or closure)."""

    date: dt.date
    sessions: tuple[Interval, ...]
    reason: Reason               # "open" (regular day), "special_session", "weekend", "holiday"
    holiday: str | None = None   # the holiday's or closure's name

    @property
    def trading(self) -> bool:
        return bool(self.sessions)


@dataclass(frozen=True, slots=True)
class Status:
    """What ``GET /api/market/status`` answers (epoch seconds UTC)."""

    exchange: str
    open: bool
    session: Interval | None
    next_open: int | None
    reason: Reason
    holiday: str | None

    def as_dict(self) -> dict:
        return {"exchange": self.exchange, "open": self.open,
                "session": None if self.session is None else {"open": self.session.open,
                                                              "close": self.session.close},
                "next_open": self.next_open, "reason": self.reason, "holiday": self.holiday}


@dataclass(frozen=True, slots=True)
class Spec:
    """How one session code keeps its calendar: the holiday market and, for segments that
    follow US daylight saving (MCX and NSE commodities), the close while it is summer in
    New York (the session's own close being the winter one)."""

    holidays: str | None = None          # a ``holidays`` financial market code; None: no holidays
    weekend: tuple[int, ...] = (5, 6)    # Saturday, Sunday
    summer_close: dt.time | None = None


#: Session code -> calendar. Codes not listed and without a regular session trade round the clock.
DEFAULT_CALENDARS: dict[str, dict[str, str]] = {
    "NSE": {"holidays": "XNSE"},
    "BSE": {"holidays": "XBOM"},
    "NSE_CD": {"holidays": "XNSE"},
    "NSE_COM": {"holidays": "XNSE", "summer_close": "23:30"},
    "MCX": {"holidays": "XNSE", "summer_close": "23:30"},
    "US": {"holidays": "XNYS"},
}


def specs_from_config(config: Mapping[str, Mapping[str, str]]) -> dict[str, Spec]:
    out = {}
    for code, spec in config.items():
        try:
            summer = spec.get("summer_close")
            out[code.upper()] = Spec(holidays=spec.get("holidays") or None,
                                     summer_close=parse_clock(summer) if summer else None)
        except ValueError as exc:
            raise ValueError(f"bad calendar for exchange {code!r}: {exc}") from exc
    for spec in out.values():
        if spec.holidays:
            _holidays(spec.holidays, 2026)  # an unknown market fails at start, not at the first weekend
    return out


@lru_cache(maxsize=64)
def _holidays(market: str, year: int) -> dict[dt.date, str]:
    try:
        found = holidays.financial_holidays(market, years=year)
    except NotImplementedError as exc:
        raise ValueError(f"the holidays library has no financial calendar {market!r}") from exc
    return {d: name for d, name in found.items()}


def us_summer(date: dt.date) -> bool:
    """New York observes daylight saving time at noon of ``date``."""
    noon = dt.datetime(date.year, date.month, date.day, 12, tzinfo=US_EASTERN)
    return bool(noon.dst())


class ExchangeCalendar:
    """The calendar of one session code: regular hours (``session``, or ``hours`` from a
    symbol master's session column), holidays, weekend and overrides."""

    def __init__(self, code: str, session: Session, spec: Spec, overrides: Iterable[Override] = (),
                 *, hours: tuple[dt.time, dt.time] | None = None) -> None:
        self.code = code
        self.session = session
        self.spec = spec
        self.hours = hours
        self._zone = ZoneInfo(session.tz) if session.tz else UTC
        self._overrides: dict[dt.date, list[Override]] = {}
        for o in overrides:
            self._overrides.setdefault(o.date, []).append(o)

    @property
    def round_the_clock(self) -> bool:
        return self.session.round_the_clock

    @property
    def zone(self) -> dt.tzinfo:
        return self._zone

    def local_date(self, t: float) -> dt.date:
        return dt.datetime.fromtimestamp(t, self._zone).date()

    def _epoch(self, date: dt.date, clock: dt.time) -> int:
        return int(dt.datetime.combine(date, clock, tzinfo=self._zone).timestamp())

    def regular_hours(self, date: dt.date) -> tuple[dt.time, dt.time]:
        if self.hours is not None:
            return self.hours
        assert self.session.close is not None
        close = self.session.close
        if self.spec.summer_close is not None and us_summer(date):
            close = self.spec.summer_close
        return self.session.open, close

    def holiday(self, date: dt.date) -> str | None:
        if not self.spec.holidays:
            return None
        return _holidays(self.spec.holidays, date.year).get(date)

    def day(self, date: dt.date) -> Day:
        if self.round_the_clock:
            start = int(dt.datetime(date.year, date.month, date.day, tzinfo=UTC).timestamp())
            return Day(date, (Interval(start, start + 86400),), "open")
        overrides = self._overrides.get(date, [])
        closure = next((o for o in overrides if o.kind == "closed"), None)
        holiday = (closure.note or "closed") if closure is not None else self.holiday(date)
        weekend = date.weekday() in self.spec.weekend
        sessions: list[Interval] = []
        if closure is None and holiday is None and not weekend:
            open_, close = self.regular_hours(date)
            sessions.append(Interval(self._epoch(date, open_), self._epoch(date, close)))
        regular = bool(sessions)
        for o in overrides:
            if o.kind == "special" and closure is None:
                assert o.open is not None and o.close is not None
                sessions.append(Interval(self._epoch(date, o.open), self._epoch(date, o.close), special=True))
        sessions.sort(key=lambda s: s.open)
        if regular:
            reason: Reason = "open"
        elif sessions:
            reason = "special_session"
        else:
            reason = "holiday" if holiday is not None else "weekend"
        return Day(date, tuple(sessions), reason, holiday if not regular else None)

    def session_at(self, t: float) -> Interval | None:
        """The session holding instant ``t``, if any."""
        return next((s for s in self.day(self.local_date(t)).sessions if s.contains(t)), None)

    def next_open(self, t: float) -> int | None:
        """The first session open at or after ``t`` (None: none within ``SEARCH_DAYS``)."""
        date = self.local_date(t)
        for _ in range(SEARCH_DAYS):
            for s in self.day(date).sessions:
                if s.open >= t:
                    return s.open
            date += dt.timedelta(days=1)
        return None

    def last_close(self, t: float) -> int | None:
        """The close of the latest session that closed by ``t``."""
        date = self.local_date(t)
        for _ in range(SEARCH_DAYS):
            for s in reversed(self.day(date).sessions):
                if s.close <= t:
                    return s.close
            date -= dt.timedelta(days=1)
        return None

    def status(self, t: float) -> Status:
        day = self.day(self.local_date(t))
        current = next((s for s in day.sessions if s.contains(t)), None)
        if current is not None:
            return Status(self.code, True, current, self.next_open(current.close),
                          "special_session" if current.special else "open", None)
        if day.reason != "open":  # no regular session today (a special one may come or have been)
            reason: Reason = "holiday" if day.holiday is not None else "weekend"
        else:
            reason = "closed"
        return Status(self.code, False, None, self.next_open(t), reason, day.holiday)

    def trading_days_back(self, t: float, n: int) -> int:
        """The open of the ``n``-th trading day before the one holding ``t`` (a back-fill
        that spans ``n`` trading days, not ``n`` calendar days with weekends in them)."""
        date = self.local_date(t)
        found = 0
        for _ in range(SEARCH_DAYS):
            date -= dt.timedelta(days=1)
            day = self.day(date)
            if day.trading:
                found += 1
                if found >= n:
                    return day.sessions[0].open
        return int(t - n * 86400)


class Calendar:
    """Calendars by session code, built from the session book, the calendar specs and the
    overrides; ``for_exchange`` of a code without a regular session trades round the clock."""

    def __init__(self, sessions: SessionBook, specs: Mapping[str, Spec] | None = None,
                 overrides: Iterable[Override] = ()) -> None:
        self.sessions = sessions
        self.specs = dict(specs if specs is not None else specs_from_config(DEFAULT_CALENDARS))
        self.overrides = list(overrides)
        self._cache: dict[tuple[str, tuple[dt.time, dt.time] | None], ExchangeCalendar] = {}

    def knows(self, code: str) -> bool:
        code = code.upper()
        return code in self.specs or not self.sessions.for_exchange(code).round_the_clock

    def for_exchange(self, code: str, trading_session: str = "") -> ExchangeCalendar:
        """``trading_session``: a symbol master's session column (``0900-2355|1815-1915:``);
        its first window, when it parses, is the symbol's regular hours."""
        code = code.upper()
        session = self.sessions.for_exchange(code)
        hours = parse_trading_session(trading_session) if not session.round_the_clock else None
        key = (code, hours)
        found = self._cache.get(key)
        if found is None:
            spec = self.specs.get(code, Spec())
            mine = [o for o in self.overrides if o.exchange.upper() in (code, (spec.holidays or "").upper())]
            found = self._cache[key] = ExchangeCalendar(code, session, spec, mine, hours=hours)
        return found

    def status(self, code: str, t: float) -> Status:
        return self.for_exchange(code).status(t)

    def special_windows(self) -> dict[str, dict[dt.date, tuple[dt.time, dt.time]]]:
        """For ``SessionBook.set_windows``: each special-session date's accepting window per
        session code (from its first open to its last close, exchange-local), so the engine
        takes that session's ticks and anchors its bars on its open."""
        out: dict[str, dict[dt.date, tuple[dt.time, dt.time]]] = {}
        dates = {o.date for o in self.overrides if o.kind == "special"}
        codes = {*self.specs, *(o.exchange.upper() for o in self.overrides)}
        for code in codes:
            cal = self.for_exchange(code)
            if cal.round_the_clock:
                continue
            for date in dates:
                sessions = [s for s in cal.day(date).sessions]
                if any(s.special for s in sessions):
                    start = dt.datetime.fromtimestamp(sessions[0].open, cal.zone).time()
                    end = dt.datetime.fromtimestamp(sessions[-1].close, cal.zone).time()
                    out.setdefault(code, {})[date] = (start, end)
        return out

    def is_trading_day(self, code: str, date: dt.date) -> bool:
        return self.for_exchange(code).day(date).trading

    def sessions_on(self, code: str, date: dt.date) -> tuple[Interval, ...]:
        return self.for_exchange(code).day(date).sessions

    def next_open(self, code: str, t: float) -> int | None:
        return self.for_exchange(code).next_open(t)


def parse_trading_session(column: str) -> tuple[dt.time, dt.time] | None:
    """The regular window of a Fyers symbol master's session column: ``"0900-2355|1815-1915:"``
    gives 09:00–23:55 (the part after ``|`` is the after-market order window). None when
    empty or not of that shape."""
    first = (column or "").split("|", 1)[0].strip().rstrip(":")
    try:
        start, end = first.split("-")
        if len(start) != 4 or len(end) != 4:
            return None
        open_ = dt.time(int(start[:2]), int(start[2:]))
        close = dt.time(int(end[:2]), int(end[2:]))
    except ValueError:
        return None
    return (open_, close) if close > open_ else None
