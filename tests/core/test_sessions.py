import datetime as dt

import pytest

from market.core.sessions import (
    DEFAULT_SESSIONS, ROUND_THE_CLOCK, Session, SessionBook,
)
from market.core.timeframes import Timeframe

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
UTC = dt.timezone.utc
TF = Timeframe.parse


def ist(*args) -> int:
    return int(dt.datetime(*args, tzinfo=IST).timestamp())


def utc(*args) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp())


@pytest.fixture
def book():
    return SessionBook.from_config(DEFAULT_SESSIONS)


def test_nse_trading_day_bounds_and_label(book):
    nse = book.for_exchange("NSE")
    day = nse.day_of(ist(2024, 11, 20, 12, 0))
    assert day.open == ist(2024, 11, 20, 9, 15)
    assert day.close == ist(2024, 11, 20, 15, 30)
    assert day.label == utc(2024, 11, 20)
    assert nse.day_for_label(day.label) == day


def test_session_is_half_open(book):
    day = book.for_exchange("NSE").day_of(ist(2024, 11, 20, 12, 0))
    assert day.contains(ist(2024, 11, 20, 9, 15))
    assert not day.contains(ist(2024, 11, 20, 9, 14, 59))
    assert day.contains(ist(2024, 11, 20, 15, 29, 59))
    assert not day.contains(ist(2024, 11, 20, 15, 30))


def test_exchange_lookup_is_case_insensitive_and_unknown_is_round_the_clock(book):
    assert book.for_exchange("nse") == book.for_exchange("NSE")
    assert book.for_exchange("BSE").tz == "Asia/Kolkata"
    assert book.for_exchange("CRYPTO") is ROUND_THE_CLOCK  # MCX has hours of its own now (NSE_CD, MCX, ...)
    assert book.for_exchange("").round_the_clock
    assert book.tz_name("NSE") == "Asia/Kolkata"
    assert book.tz_name("DEMO") == "UTC"


def test_round_the_clock_day_is_the_utc_calendar_day():
    t = utc(2024, 11, 20, 23, 59, 59)
    day = ROUND_THE_CLOCK.day_of(t)
    assert (day.label, day.open, day.close) == (utc(2024, 11, 20), utc(2024, 11, 20), utc(2024, 11, 21))
    assert ROUND_THE_CLOCK.day_of(t + 1).label == utc(2024, 11, 21)
    assert ROUND_THE_CLOCK.day_for_label(utc(2024, 11, 20)) == day


def test_nse_intraday_buckets_anchor_at_the_open_and_stop_at_the_close(book):
    day = book.for_exchange("NSE").day_of(ist(2024, 11, 20, 12, 0))

    def at(h, m, s=0):
        return ist(2024, 11, 20, h, m, s)

    assert day.bucket(TF("30m"), at(9, 44, 59)) == (at(9, 15), at(9, 45))
    assert day.bucket(TF("30m"), at(9, 45)) == (at(9, 45), at(10, 15))
    assert day.bucket(TF("1h"), at(15, 29)) == (at(15, 15), at(15, 30))   # the 15:15 stub
    assert day.bucket(TF("4h"), at(14, 0)) == (at(13, 15), at(15, 30))
    assert day.bucket(TF("5s"), at(9, 15, 7) + 0.5) == (at(9, 15, 5), at(9, 15, 10))
    assert day.bucket(TF("1d"), at(10, 0)) == (utc(2024, 11, 20), at(15, 30))


def test_round_the_clock_buckets_anchor_at_midnight_utc():
    day = ROUND_THE_CLOCK.day_of(utc(2024, 11, 20, 5, 7, 3))
    assert day.bucket_start(TF("4h"), utc(2024, 11, 20, 5, 7, 3)) == utc(2024, 11, 20, 4)
    assert day.bucket_start(TF("3m"), utc(2024, 11, 20, 5, 7, 3)) == utc(2024, 11, 20, 5, 6)
    assert day.bucket_start(TF("1d"), utc(2024, 11, 20, 5, 7, 3)) == utc(2024, 11, 20)


def test_nse_evening_tick_belongs_to_its_local_date_but_is_out_of_session(book):
    nse = book.for_exchange("NSE")
    t = ist(2024, 11, 20, 23, 30)  # 18:00 UTC, same local date
    day = nse.day_of(t)
    assert day.label == utc(2024, 11, 20)
    assert not day.contains(t)
    early = ist(2024, 11, 21, 0, 30)  # 2024-11-20 19:00 UTC but local date is the 21st
    assert nse.day_of(early).label == utc(2024, 11, 21)


def test_from_config_rejects_bad_specs():
    with pytest.raises(ValueError):
        SessionBook.from_config({"X": {"tz": "Asia/Kolkata", "open": "15:30", "close": "09:15"}})
    with pytest.raises(ValueError):
        SessionBook.from_config({"X": {"tz": "Asia/Kolkata", "open": "9"}})
    with pytest.raises(ValueError):
        Session(tz="Asia/Kolkata", open=dt.time(9, 15), close=None)


def test_segment_sessions_and_their_bar_grids(book):
    cd = book.for_exchange("NSE_CD").day_of(ist(2026, 12, 2, 16, 0))
    assert (cd.open, cd.close) == (ist(2026, 12, 2, 9, 0), ist(2026, 12, 2, 17, 0))
    mcx = book.for_exchange("MCX").day_of(ist(2026, 12, 2, 21, 0))
    assert (mcx.open, mcx.close) == (ist(2026, 12, 2, 9, 0), ist(2026, 12, 2, 23, 55))
    assert mcx.bucket(TF("1h"), ist(2026, 12, 2, 23, 40)) == (ist(2026, 12, 2, 23, 0), ist(2026, 12, 2, 23, 55))
    assert book.for_exchange("NSE_COM").open == dt.time(9, 0)


def test_special_day_windows_accept_and_anchor_a_muhurat_session(book):
    nse = book.for_exchange("NSE")
    sunday = dt.date(2026, 11, 8)
    assert not nse.day_of(ist(2026, 11, 8, 18, 30)).contains(ist(2026, 11, 8, 18, 30))
    book.set_windows({"NSE": {sunday: (dt.time(18, 0), dt.time(19, 0))}})
    day = nse.day_of(ist(2026, 11, 8, 18, 30))
    assert (day.open, day.close, day.label) == (ist(2026, 11, 8, 18, 0), ist(2026, 11, 8, 19, 0), utc(2026, 11, 8))
    assert day.bucket(TF("1h"), ist(2026, 11, 8, 18, 30)) == (ist(2026, 11, 8, 18, 0), ist(2026, 11, 8, 19, 0))
    assert nse.day_for_label(utc(2026, 11, 8)) == day
    assert nse.day_of(ist(2026, 11, 9, 10, 0)).open == ist(2026, 11, 9, 9, 15)  # other days unchanged
    book.set_windows({})
    assert nse.day_of(ist(2026, 11, 8, 18, 30)).open == ist(2026, 11, 8, 9, 15)
