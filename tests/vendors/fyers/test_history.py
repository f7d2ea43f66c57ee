"""The history client against a loopback server answering like Fyers' /data/history."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from market.core.sessions import DEFAULT_SESSIONS, SessionBook
from market.core.timeframes import Timeframe
from market.vendors.fyers.history import HistoryClient, HistoryError, TokenRejected, chunks, to_candles
from market.vendors.fyers.ratelimit import RateLimiter

IST = ZoneInfo("Asia/Kolkata")
NSE = SessionBook.from_config(DEFAULT_SESSIONS).for_exchange("NSE")
TF5S, TF1M, TF1D = Timeframe.parse("5s"), Timeframe.parse("1m"), Timeframe.parse("1d")


def ist(y, m, d, hh, mm, ss=0) -> int:
    return int(dt.datetime(y, m, d, hh, mm, ss, tzinfo=IST).timestamp())


class FakeClock:
    def __init__(self):
        self.t = 0.0
        self.slept = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.slept.append(s)
        self.t += s


def client(http, clock=None, token="TOKEN") -> HistoryClient:
    clock = clock or FakeClock()
    return HistoryClient(client_id="XB12345-100", access_token=token, api_base=http.base,
                         limiter=RateLimiter(10, 200, clock=clock, sleep=clock.sleep), sleep=clock.sleep)


def bars_between(a: int, b: int, step: int, session=NSE) -> list[list]:
    """What Fyers returns: one bar per bucket start in [a, b] inside the session."""
    out = []
    t = a - a % step if step < 86400 else a
    while t <= b:
        if session.day_of(t).contains(t) and (t - session.day_of(t).open) % step == 0:
            out.append([t, 100.0, 101.0, 99.5, 100.5, 10])
        t += step
    return out


def test_the_request_matches_the_sdk_and_times_are_not_shifted(http):
    t = ist(2026, 11, 20, 9, 15)  # 03:45 UTC: a candle start in epoch seconds UTC
    http.history = lambda q: (200, {"s": "ok", "candles": [[t, 800.0, 805.5, 799.0, 804.0, 12345]]})
    got = client(http).fetch("NSE:SBIN-EQ", TF1M, t, t + 60, NSE)
    assert [c.time for c in got.candles] == [t] == [int(dt.datetime(2026, 11, 20, 3, 45, tzinfo=dt.timezone.utc).timestamp())]
    assert (got.candles[0].open, got.candles[0].high, got.candles[0].volume) == (800.0, 805.5, 12345.0)
    method, path, query, headers = http.requests[-1]
    assert (method, path) == ("GET", "/data/history")
    assert query == {"symbol": "NSE:SBIN-EQ", "resolution": "1", "date_format": "0", "range_from": str(t),
                     "range_to": str(t + 59), "cont_flag": "1"}
    assert headers["Authorization"] == "XB12345-100:TOKEN" and headers["version"] == "3"


def test_day_bars_are_labelled_by_the_local_trading_date():
    midnight_ist = ist(2026, 11, 20, 0, 0)  # Fyers stamps day bars at 00:00 IST = 18:30 UTC the day before
    got = to_candles([[midnight_ist, 1, 2, 0.5, 1.5, 100]], TF1D, NSE)
    assert [c.time for c in got.candles] == [int(dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc).timestamp())]


def test_bars_off_our_grid_or_outside_the_session_are_skipped_and_counted():
    rows = [[ist(2026, 11, 20, 9, 15), 1, 2, 0.5, 1.5, 1],       # good
            [ist(2026, 11, 20, 9, 15, 30), 1, 2, 0.5, 1.5, 1],   # not a 1m bucket start
            [ist(2026, 11, 20, 8, 0), 1, 2, 0.5, 1.5, 1],        # pre-open
            [ist(2026, 11, 20, 9, 16), 1, 0.5, 2, 1.5, 1],       # high < low
            ["x"]]
    got = to_candles(rows, TF1M, NSE)
    assert len(got.candles) == 1
    assert got.skipped == {"off_grid": 1, "out_of_session": 1, "malformed": 2}


def test_long_ranges_are_chunked_within_fyers_spans(http):
    start, end = ist(2026, 11, 9, 9, 15), ist(2026, 11, 20, 15, 30)
    http.history = lambda q: (200, {"s": "ok", "candles": bars_between(int(q["range_from"]), int(q["range_to"]), 5)})
    c = client(http)
    got = c.fetch("NSE:SBIN-EQ", TF5S, start, end, NSE)
    ranges = [(int(q["range_from"]), int(q["range_to"])) for _, _, q, _ in http.requests]
    assert ranges == chunks(start, end, TF5S)
    assert len(ranges) == 3 and ranges[0] == (start, start + 5 * 86400 - 1)
    assert all(b + 1 == a for (_, b), (a, _) in zip(ranges, ranges[1:]))  # no gap, no overlap
    assert ranges[-1][1] == end - 1
    times = [x.time for x in got.candles]
    assert times == sorted(set(times)) and times[0] == start and times[-1] == end - 5
    assert len(times) == 12 * 4500  # 12 session days (9..20 Nov; the fake broker trades every day) x 4500 bars
    assert chunks(0, 180 * 86400, TF1M) == [(0, 90 * 86400 - 1), (90 * 86400, 180 * 86400 - 1)]
    assert len(chunks(0, 400 * 86400, TF1D)) == 2
    assert chunks(10, 10, TF1M) == []


def test_empty_ranges_and_error_bodies(http):
    http.history = lambda q: (200, {"s": "no_data", "candles": []})
    assert client(http).fetch("NSE:SBIN-EQ", TF1M, 0 + 1_700_000_000, 1_700_003_600, NSE).candles == []
    http.history = lambda q: (200, {"s": "ok", "candles": []})
    assert client(http).fetch("NSE:SBIN-EQ", TF1M, 1_700_000_000, 1_700_003_600, NSE).candles == []
    http.history = lambda q: (200, {"s": "error", "code": -50, "message": "Invalid symbol provided"})
    with pytest.raises(HistoryError, match="Invalid symbol") as err:
        client(http).fetch("NSE:NOPE-EQ", TF1M, 1_700_000_000, 1_700_003_600, NSE)
    assert not isinstance(err.value, TokenRejected)


@pytest.mark.parametrize("status,body", [
    (401, {"s": "error", "code": -16, "message": "Could not authenticate the user"}),
    (200, {"s": "error", "code": -15, "message": "Your token has expired. Please generate a token"}),
])
def test_an_expired_token_is_its_own_error(http, status, body):
    http.history = lambda q: (status, body)
    with pytest.raises(TokenRejected):
        client(http).fetch("NSE:SBIN-EQ", TF1M, 1_700_000_000, 1_700_003_600, NSE)
    assert len(http.requests) == 1  # not retried


def test_429_backs_off_through_the_shared_limiter_and_retries(http):
    answers = [(429, {"s": "error", "message": "request limit reached"})] * 2 + [
        (200, {"s": "ok", "candles": [[ist(2026, 11, 20, 9, 15), 1, 2, 0.5, 1.5, 1]]})]
    http.history = lambda q: answers.pop(0)
    clock = FakeClock()
    c = client(http, clock)
    got = c.fetch("NSE:SBIN-EQ", TF1M, ist(2026, 11, 20, 9, 15), ist(2026, 11, 20, 9, 16), NSE)
    assert len(got.candles) == 1 and len(http.requests) == 3
    assert c.limiter.throttled == 2
    assert sum(clock.slept) >= 1.0 + 2.0  # Retry-After 1, then doubling: never hammered
    http.history = lambda q: (429, {"s": "error"})
    with pytest.raises(HistoryError, match="rate limited"):
        c.fetch("NSE:SBIN-EQ", TF1M, ist(2026, 11, 20, 9, 15), ist(2026, 11, 20, 9, 16), NSE)


def test_minute_chunks_stay_inside_the_reported_100_day_limit(http):
    """Fyers is reported to serve ~100 days of minute bars a request: a server refusing
    anything longer than 100 days still answers every chunk of a 250-day back-fill."""
    limit = 100 * 86400

    def history(q):
        span = int(q["range_to"]) - int(q["range_from"]) + 1
        if span > limit:
            return 200, {"s": "error", "code": -50, "message": "range too long"}
        return 200, {"s": "no_data", "candles": []}

    http.history = history
    start = 1_700_000_000 - 250 * 86400
    client(http).fetch("NSE:SBIN-EQ", TF1M, start, 1_700_000_000, NSE)
    spans = [int(q["range_to"]) - int(q["range_from"]) + 1 for m, p, q, _ in http.requests if p == "/data/history"]
    assert len(spans) == 3 and max(spans) <= limit - 10 * 86400  # a 10-day margin
    assert sum(spans) == 250 * 86400
