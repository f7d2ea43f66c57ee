"""The exchange calendar: trading days, sessions, next open, reasons and overrides."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from market.core.calendar import Calendar, Override, parse_trading_session, specs_from_config, us_summer
from market.core.sessions import DEFAULT_SESSIONS, SessionBook

IST = ZoneInfo("Asia/Kolkata")
NY = ZoneInfo("America/New_York")
MUHURAT = Override("XNSE", dt.date(2026, 11, 8), "special", dt.time(18, 0), dt.time(19, 0), "Muhurat trading")
BUDGET = Override("NSE", dt.date(2026, 2, 7), "special", dt.time(9, 15), dt.time(15, 30), "Budget day")
CLOSURE = Override("NSE", dt.date(2026, 11, 11), "closed", note="Election day")


def at(y, m, d, hh=0, mm=0, tz=IST) -> int:
    return int(dt.datetime(y, m, d, hh, mm, tzinfo=tz).timestamp())


@pytest.fixture
def cal() -> Calendar:
    return Calendar(SessionBook.from_config(DEFAULT_SESSIONS), overrides=[MUHURAT, BUDGET, CLOSURE])


def test_a_regular_weekday_is_open_in_session_and_closed_outside(cal):
    s = cal.status("NSE", at(2026, 11, 9, 10, 0))  # Monday
    assert (s.open, s.reason, s.holiday) == (True, "open", None)
    assert (s.session.open, s.session.close) == (at(2026, 11, 9, 9, 15), at(2026, 11, 9, 15, 30))
    assert s.next_open == at(2026, 11, 12, 9, 15)  # Tue holiday, Wed closure
    before = cal.status("NSE", at(2026, 11, 9, 9, 0))
    assert (before.open, before.reason, before.session, before.next_open) == (False, "closed", None,
                                                                               at(2026, 11, 9, 9, 15))
    assert cal.status("NSE", at(2026, 11, 9, 15, 30)).open is False  # [open, close)


def test_weekend_holiday_and_closure_say_why_and_when_it_opens(cal):
    sat = cal.status("NSE", at(2026, 11, 7, 11, 0))
    assert (sat.open, sat.reason, sat.holiday, sat.next_open) == (False, "weekend", None, at(2026, 11, 8, 18, 0))
    tue = cal.status("NSE", at(2026, 11, 10, 11, 0))
    assert (tue.reason, tue.holiday) == ("holiday", "Diwali Balipratipada")  # from the holidays library
    wed = cal.status("NSE", at(2026, 11, 11, 11, 0))
    assert (wed.reason, wed.holiday, wed.next_open) == ("holiday", "Election day", at(2026, 11, 12, 9, 15))
    assert not cal.is_trading_day("NSE", dt.date(2026, 1, 26))  # Republic Day
    assert cal.is_trading_day("NSE", dt.date(2026, 1, 27))


def test_special_sessions_muhurat_on_a_sunday_and_a_budget_saturday(cal):
    during = cal.status("NSE", at(2026, 11, 8, 18, 30))
    assert (during.open, during.reason) == (True, "special_session")
    assert (during.session.open, during.session.close) == (at(2026, 11, 8, 18, 0), at(2026, 11, 8, 19, 0))
    assert during.next_open == at(2026, 11, 9, 9, 15)
    assert cal.status("NSE", at(2026, 11, 8, 12, 0)).reason == "weekend"  # that Sunday, before it
    # an XNSE override reaches every segment on that holiday calendar; an NSE one only NSE
    assert cal.status("MCX", at(2026, 11, 8, 18, 30)).reason == "special_session"
    assert cal.status("NSE", at(2026, 2, 7, 10, 0)).reason == "special_session"
    assert cal.status("BSE", at(2026, 2, 7, 10, 0)).reason == "weekend"


def test_segments_keep_their_own_hours():
    cal = Calendar(SessionBook.from_config(DEFAULT_SESSIONS))
    wed = dt.date(2026, 12, 2)
    cd = cal.sessions_on("NSE_CD", wed)[0]
    assert (cd.open, cd.close) == (at(2026, 12, 2, 9, 0), at(2026, 12, 2, 17, 0))
    # MCX closes 23:55 while New York is on standard time and 23:30 in its summer
    assert cal.sessions_on("MCX", wed)[0].close == at(2026, 12, 2, 23, 55)
    assert cal.sessions_on("MCX", dt.date(2026, 7, 8))[0].close == at(2026, 7, 8, 23, 30)
    assert us_summer(dt.date(2026, 7, 8)) and not us_summer(wed)
    # the symbol master's session column wins (an agricultural contract's short day)
    agri = cal.for_exchange("MCX", "0900-1700|1815-1915:").day(wed).sessions[0]
    assert agri.close == at(2026, 12, 2, 17, 0)
    us = cal.sessions_on("US", dt.date(2026, 11, 26))  # Thanksgiving, from XNYS
    assert us == () and cal.status("US", at(2026, 11, 26, 12, 0, NY)).holiday == "Thanksgiving Day"
    assert cal.sessions_on("US", wed)[0].open == at(2026, 12, 2, 9, 30, NY)


def test_round_the_clock_exchanges_are_always_open():
    cal = Calendar(SessionBook.from_config({}))  # NSE without a session: round the clock
    s = cal.status("DEMO", at(2026, 11, 7, 12, 0))
    assert (s.open, s.reason) == (True, "open")
    assert cal.status("NSE", at(2026, 11, 7, 12, 0)).open is True
    assert not cal.knows("DEMO") and cal.knows("NSE")  # NSE still has a calendar spec


def test_next_open_last_close_and_trading_days_back(cal):
    nse = cal.for_exchange("NSE")
    fri_close = at(2026, 11, 6, 15, 30)
    assert nse.last_close(at(2026, 11, 7, 12, 0)) == fri_close
    assert nse.last_close(at(2026, 11, 9, 10, 0)) == at(2026, 11, 8, 19, 0)  # the Muhurat session
    # two trading days before Thursday 12 Nov: Mon 9 (Tue holiday, Wed closed) and Sun 8 (Muhurat)
    assert nse.trading_days_back(at(2026, 11, 12, 10, 0), 1) == at(2026, 11, 9, 9, 15)
    assert nse.trading_days_back(at(2026, 11, 12, 10, 0), 2) == at(2026, 11, 8, 18, 0)


def test_bad_overrides_and_configs_are_refused():
    with pytest.raises(ValueError):
        Override("NSE", dt.date(2026, 1, 1), "special", dt.time(10), dt.time(9))
    with pytest.raises(ValueError):
        Override("NSE", dt.date(2026, 1, 1), "maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        specs_from_config({"NSE": {"holidays": "NOPE"}})
    with pytest.raises(ValueError):
        specs_from_config({"MCX": {"holidays": "XNSE", "summer_close": "late"}})


@pytest.mark.parametrize("column, hours", [
    ("0915-1530|1815-1915:", (dt.time(9, 15), dt.time(15, 30))),
    ("0900-2355|1815-1915:", (dt.time(9, 0), dt.time(23, 55))),
    ("0900-1700", (dt.time(9, 0), dt.time(17, 0))),
    ("", None), ("24x7", None), ("1530-0915", None), ("9-17", None),
])
def test_the_symbol_master_session_column(column, hours):
    assert parse_trading_session(column) == hours


def test_status_as_dict_is_the_api_shape(cal):
    d = cal.status("NSE", at(2026, 11, 10, 11, 0)).as_dict()
    assert d == {"exchange": "NSE", "open": False, "session": None, "next_open": at(2026, 11, 12, 9, 15),
                 "reason": "holiday", "holiday": "Diwali Balipratipada"}


def test_special_windows_for_the_session_book(cal):
    windows = cal.special_windows()
    assert windows["NSE"][dt.date(2026, 11, 8)] == (dt.time(18, 0), dt.time(19, 0))   # Muhurat (XNSE)
    assert windows["MCX"][dt.date(2026, 11, 8)] == (dt.time(18, 0), dt.time(19, 0))
    assert windows["NSE"][dt.date(2026, 2, 7)] == (dt.time(9, 15), dt.time(15, 30))   # budget Saturday
    assert dt.date(2026, 2, 7) not in windows.get("BSE", {})
    assert "US" not in windows
