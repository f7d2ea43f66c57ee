"""``GET /data/history`` (what ``fyersModel.history`` calls), chunked and rate-limited.

Requests use epoch seconds (``date_format=0``) and answers carry each candle's start in
epoch seconds UTC, which is exactly TickChart's candle ``time``: no time-zone shifting
anywhere (the oldest ancestor added IST twice). The one conversion is for ``1D``: Fyers
stamps a day bar at local midnight (IST), TickChart at 00:00 UTC of the local date, so a
day bar is relabelled by its exchange-local date.

Fyers limits the span of one request by resolution; longer ranges are split into
chunks. Seconds resolutions only reach back about 30 trading days.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import requests

from market.core.budget import DayExhausted
from market.core.sessions import Session
from market.core.timeframes import Timeframe
from market.core.types import Candle
from market.vendors.fyers.ratelimit import RateLimiter

logger = logging.getLogger("market.fyers")

DAY = 86400
RESOLUTIONS: dict[str, str] = {
    "5s": "5S", "10s": "10S", "15s": "15S", "30s": "30S",
    "1m": "1", "2m": "2", "3m": "3", "5m": "5", "10m": "10", "15m": "15", "30m": "30",
    "1h": "60", "2h": "120", "4h": "240", "1d": "1D",
}
# Span of one request (days). Fyers is reported to serve ~100 days of minute bars and 366
# of daily bars per request: stay a margin inside both, as one day too many is refused.
# Seconds bars are kept small so one answer stays a few tens of thousands of rows.
CHUNK_DAYS = {"seconds": 5, "minutes": 90, "daily": 360}
# How far back 5 s history is asked for (calendar days): Fyers keeps ~30 trading days
# (~42 calendar days); older gaps are filled from 1m bars without a 5S request first.
SECONDS_HISTORY_DAYS = 40
MAX_RETRIES = 6


class HistoryError(RuntimeError):
    """Fyers answered ``{"s": "error"}`` (message is Fyers', safe to log)."""

    def __init__(self, message: str, code: Any = None) -> None:
        super().__init__(message)
        self.code = code


class TokenRejected(HistoryError):
    """The access token is expired or invalid: log in again (``fyers_login``)."""


class BudgetExhausted(HistoryError):
    """The app's daily request budget is used up (every process together): stop until the
    next day (``resumes``, epoch seconds) instead of failing request after request."""

    def __init__(self, message: str, resumes: float) -> None:
        super().__init__(message)
        self.resumes = resumes


def resolution(tf: Timeframe) -> str:
    try:
        return RESOLUTIONS[tf.code]
    except KeyError:
        raise ValueError(f"Fyers has no history resolution for {tf.code}") from None


def chunk_seconds(tf: Timeframe) -> int:
    kind = "daily" if tf.is_daily else "seconds" if tf.seconds < 60 else "minutes"
    return int(CHUNK_DAYS[kind] * DAY)


def chunks(start: int, end: int, tf: Timeframe) -> list[tuple[int, int]]:
    """``[start, end)`` as inclusive ``(range_from, range_to)`` request windows."""
    step = chunk_seconds(tf)
    out = []
    a = start
    while a < end:
        b = min(a + step, end)
        out.append((a, b - 1))
        a = b
    return out


@dataclass
class Converted:
    candles: list[Candle]
    skipped: dict[str, int] = field(default_factory=dict)


def to_candles(rows: Iterable[Any], tf: Timeframe, session: Session) -> Converted:
    """Fyers rows ``[t, o, h, l, c, v]`` → candles on TickChart's buckets.

    Rows outside the session, off the bucket grid, or malformed are skipped and counted
    (never guessed into a bucket).
    """
    out: dict[int, Candle] = {}
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for row in rows:
        try:
            t, o, h, l, c = (row[0], float(row[1]), float(row[2]), float(row[3]), float(row[4]))
            v = float(row[5]) if len(row) > 5 and row[5] is not None else 0.0
            t = int(t)
        except (TypeError, ValueError, IndexError):
            skip("malformed")
            continue
        if not (0 < l <= min(o, c) and max(o, c) <= h) or v < 0:
            skip("malformed")
            continue
        day = session.day_of(t)
        if tf.is_daily:
            key = day.label
        else:
            if not day.contains(t):
                skip("out_of_session")
                continue
            key = day.bucket_start(tf, t)
            if key != t:
                skip("off_grid")
                continue
        out[key] = Candle(key, o, h, l, c, v, 0)
    return Converted([out[k] for k in sorted(out)], skipped)


class HistoryClient:
    """Blocking client (call it from a worker thread in async code); one shared limiter."""

    def __init__(
        self, *, client_id: str, access_token: Callable[[], str] | str, limiter: RateLimiter,
        api_base: str = "https://api-t1.fyers.in", session: requests.Session | None = None,
        timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client_id = client_id
        self._token = access_token if callable(access_token) else (lambda: access_token)
        self.limiter = limiter
        self.url = f"{api_base.rstrip('/')}/data/history"
        self.http = session or requests.Session()
        self.timeout = timeout
        self._sleep = sleep
        self.requests = 0

    def request(self, symbol: str, tf: Timeframe, range_from: int, range_to: int) -> list[list[Any]]:
        """One history request (inclusive epoch range); 429 backs off and retries."""
        params = {"symbol": symbol, "resolution": resolution(tf), "date_format": "0",
                  "range_from": str(int(range_from)), "range_to": str(int(range_to)), "cont_flag": "1"}
        headers = {"Authorization": f"{self.client_id}:{self._token()}", "version": "3"}
        for attempt in range(MAX_RETRIES):
            try:
                self.limiter.acquire()
            except DayExhausted as exc:
                raise BudgetExhausted(f"history {symbol} {tf.code}: {exc}", exc.resumes) from None
            self.requests += 1
            try:
                response = self.http.get(self.url, params=params, headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                self.limiter.done()
                if attempt == MAX_RETRIES - 1:
                    raise HistoryError(f"history {symbol} {tf.code}: {type(exc).__name__}") from None
                self._sleep(min(30.0, 2.0 ** attempt))
                continue
            self.limiter.done()
            if response.status_code == 429:
                retry_after = response.headers.get("Retry-After")
                seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
                pause = self.limiter.throttle(seconds)
                logger.warning("Fyers rate limit (429) on history %s %s; all calls pause %.0fs",
                               symbol, tf.code, pause)
                continue
            try:
                body = response.json()
            except ValueError:
                body = {}
            if not isinstance(body, dict):
                body = {}
            if response.status_code in (401, 403) or _token_problem(body):
                raise TokenRejected(f"history: token rejected ({body.get('message', response.status_code)})",
                                    body.get("code"))
            status = body.get("s")
            if status == "ok":
                self.limiter.succeeded()
                candles = body.get("candles") or []
                return candles if isinstance(candles, list) else []
            if status == "no_data":
                self.limiter.succeeded()
                return []
            message = str(body.get("message") or response.status_code)[:200]
            raise HistoryError(f"history {symbol} {tf.code}: {message}", body.get("code"))
        raise HistoryError(f"history {symbol} {tf.code}: still rate limited after {MAX_RETRIES} tries")

    def fetch(self, symbol: str, tf: Timeframe, start: int, end: int, session: Session) -> Converted:
        """Candles with ``start <= time < end``, in as many requests as the spans need."""
        merged: dict[int, Candle] = {}
        skipped: dict[str, int] = {}
        for a, b in chunks(start, end, tf):
            converted = to_candles(self.request(symbol, tf, a, b), tf, session)
            for c in converted.candles:
                if start <= c.time < end or (tf.is_daily and start - DAY < c.time < end):
                    merged[c.time] = c
            for k, n in converted.skipped.items():
                skipped[k] = skipped.get(k, 0) + n
        return Converted([merged[k] for k in sorted(merged)], skipped)


def _token_problem(body: dict[str, Any]) -> bool:
    # Fyers answers an expired or invalid token with codes -8/-15/-16/-17/-300 and a
    # message naming the token.
    message = str(body.get("message", "")).lower()
    return body.get("s") == "error" and ("token" in message or body.get("code") in (-8, -15, -16, -17))


def iter_days(start: int, end: int) -> Iterator[int]:
    t = start
    while t < end:
        yield t
        t += DAY
