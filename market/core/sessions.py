"""Exchange trading sessions and the bucket arithmetic anchored on them.

An exchange either has a regular session (a time zone and local open/close times) or
trades round the clock, in which case its trading day is the UTC calendar day. Which
exchange has which session is configuration (``MARKET["SESSIONS"]``), not code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Mapping
from zoneinfo import ZoneInfo

from market.core.timeframes import Timeframe

DAY = 86400
UTC = dt.timezone.utc


@dataclass(frozen=True, slots=True)
class TradingDay:
    """One trading day of one exchange, in epoch seconds UTC.

    ``label`` is 00:00 UTC of the exchange-local trading date: the ``time`` of the 1d
    candle (contract c). Ticks in ``[open, close)`` belong to this day's session.
    """

    label: int
    open: int
    close: int

    def contains(self, t: float) -> bool:
        return self.open <= t < self.close

    def bucket(self, tf: Timeframe, t: float) -> tuple[int, int]:
        """``(start, end)`` of the ``tf`` bucket holding ``t``; ``t`` must be in session."""
        if tf.is_daily:
            return self.label, self.close
        start = self.open + int((t - self.open) // tf.seconds) * tf.seconds
        return start, min(start + tf.seconds, self.close)

    def bucket_start(self, tf: Timeframe, t: float) -> int:
        return self.bucket(tf, t)[0]


@dataclass(frozen=True, slots=True)
class Session:
    """A regular session: local ``open``–``close`` in ``tz``; ``None`` tz means round the clock UTC."""

    tz: str | None = None
    open: dt.time = dt.time(0, 0)
    close: dt.time | None = None
    _zone: dt.tzinfo = field(init=False, repr=False, compare=False)
    # Dates whose window is not the regular one: a special session (Muhurat trading 18:00-19:00
    # on a Sunday), or a regular day stretched by an evening one. Set by the calendar's
    # overrides (SessionBook.set_windows), so such a session's ticks are accepted and its bars
    # anchored on its own open.
    _windows: dict[dt.date, tuple[dt.time, dt.time]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.tz) if self.tz else UTC)
        object.__setattr__(self, "_windows", {})
        if self.tz and (self.close is None or self.close <= self.open):
            raise ValueError(f"session close must be after open ({self.open}–{self.close})")

    @property
    def round_the_clock(self) -> bool:
        return self.tz is None

    def day_of(self, t: float) -> TradingDay:
        """The trading day whose calendar date (exchange-local) contains instant ``t``."""
        if self.tz is None:
            label = int(t // DAY) * DAY
            return TradingDay(label=label, open=label, close=label + DAY)
        local_date = dt.datetime.fromtimestamp(t, self._zone).date()
        return self._day_for_date(local_date)

    def _day_for_date(self, date: dt.date) -> TradingDay:
        label = int(dt.datetime(date.year, date.month, date.day, tzinfo=UTC).timestamp())
        assert self.close is not None
        start, end = self._windows.get(date, (self.open, self.close))
        open_ = int(dt.datetime.combine(date, start, tzinfo=self._zone).timestamp())
        close = int(dt.datetime.combine(date, end, tzinfo=self._zone).timestamp())
        return TradingDay(label=label, open=open_, close=close)

    def day_for_label(self, label: int) -> TradingDay:
        """The trading day of a 1d candle ``time``."""
        if self.tz is None:
            return TradingDay(label=label, open=label, close=label + DAY)
        return self._day_for_date(dt.datetime.fromtimestamp(label, UTC).date())


ROUND_THE_CLOCK = Session()


def parse_clock(value: str) -> dt.time:
    """``"09:15"`` -> 09:15 (ValueError if not HH:MM)."""
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


class SessionBook:
    """Sessions by exchange code; exchanges not listed trade round the clock in UTC."""

    def __init__(self, sessions: Mapping[str, Session] | None = None) -> None:
        self._sessions = dict(sessions or {})

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, str]]) -> "SessionBook":
        """Build from ``{"NSE": {"tz": "Asia/Kolkata", "open": "09:15", "close": "15:30"}}``."""
        sessions = {}
        for exchange, spec in config.items():
            try:
                sessions[exchange.upper()] = Session(
                    tz=spec["tz"], open=parse_clock(spec["open"]), close=parse_clock(spec["close"])
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"bad session for exchange {exchange!r}: {exc}") from exc
        return cls(sessions)

    def for_exchange(self, exchange: str) -> Session:
        return self._sessions.get(exchange.upper(), ROUND_THE_CLOCK)

    def set_windows(self, windows: Mapping[str, Mapping[dt.date, tuple[dt.time, dt.time]]]) -> None:
        """Replace every session's special-day windows (``{code: {date: (open, close)}}``).

        Each session's dict is swapped whole, never cleared and refilled: a reader on another
        thread sees the old windows or the new ones."""
        for code, session in self._sessions.items():
            fresh = {date: (start, end) for date, (start, end) in windows.get(code, {}).items() if end > start}
            if fresh != session._windows:
                object.__setattr__(session, "_windows", fresh)

    def tz_name(self, exchange: str) -> str:
        return self.for_exchange(exchange).tz or "UTC"


#: The hours ticks are accepted in and bars are anchored on, per session code: NSE and BSE
#: (equity and F&O), NSE currency derivatives, NSE commodities and MCX (the longest day:
#: 23:55 while New York is on standard time, 23:30 in its summer, which the calendar
#: knows; an agricultural contract's shorter day comes from the symbol master). Fyers
#: symbols get their code from the symbol master's segment (``symbol_master.session_code``).
DEFAULT_SESSIONS: dict[str, dict[str, str]] = {
    "NSE": {"tz": "Asia/Kolkata", "open": "09:15", "close": "15:30"},
    "BSE": {"tz": "Asia/Kolkata", "open": "09:15", "close": "15:30"},
    "NSE_CD": {"tz": "Asia/Kolkata", "open": "09:00", "close": "17:00"},
    "NSE_COM": {"tz": "Asia/Kolkata", "open": "09:00", "close": "23:55"},
    "MCX": {"tz": "Asia/Kolkata", "open": "09:00", "close": "23:55"},
    "US": {"tz": "America/New_York", "open": "09:30", "close": "16:00"},
}
