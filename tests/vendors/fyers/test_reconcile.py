"""Reconciliation and back-fill against the database: the broker's closed bars win,
identical ones are left alone, the engine's open candle is never touched, re-running
changes nothing; the pace fits the rate limit."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from market import services
from market.core.sessions import SessionBook
from market.core.timeframes import Timeframe
from market.core.types import Candle, CandleUpdate
from market.vendors.fyers import sync
from market.vendors.fyers.history import HistoryClient
from market.vendors.fyers.ratelimit import RateLimiter
from market.vendors.fyers.reconcile import corrections
from market.models import Candle as Row
from market.models import Symbol
from tests.vendors.fyers.live import candles

TF5, TF1M = Timeframe.parse("5s"), Timeframe.parse("1m")
UTC_DAY = SessionBook.from_config({}).for_exchange("X")  # round the clock


def test_policy_closed_buckets_only_missing_added_differing_fixed_identical_kept():
    ours = {0: Candle(0, 10, 11, 9, 10.5, 100, 7), 5: Candle(5, 10.5, 10.6, 10.4, 10.5, 5, 2),
            10: Candle(10, 1, 1, 1, 1, 1, 1)}
    theirs = [Candle(0, 10, 11.5, 9, 10.5, 100, 0),   # a high our snapshots missed
              Candle(5, 10.5, 10.6, 10.4, 10.5, 5, 0),  # identical
              Candle(10, 2, 2, 2, 2, 2, 0),              # the engine's open bucket: skipped
              Candle(15, 3, 3, 3, 3, 3, 0),              # missing
              Candle(20, 4, 4, 4, 4, 4, 0)]              # not closed yet
    fixes = corrections(ours, theirs, tf=TF5, session=UTC_DAY, closed_before=20, skip={10})
    assert fixes == [Candle(0, 10, 11.5, 9, 10.5, 100, 7), Candle(15, 3, 3, 3, 3, 3, 0)]


@pytest.fixture
def sbin(db, fyers_settings):
    return Symbol.objects.create(ticker="NSE:SBIN-EQ", exchange="NSE", source="fyers", active=True)


def client(http) -> HistoryClient:
    return HistoryClient(client_id="X-100", access_token="T", api_base=http.base, limiter=RateLimiter(10, 200))


@pytest.mark.django_db
def test_catch_up_corrects_5s_and_rebuilds_closed_larger_buckets_idempotently(http, sbin):
    now = time.time()
    t0 = int(now) - int(now) % 3600 - 3600  # on an hour boundary: 5m, 15m and 1h buckets reach past the range
    ours = [Candle(t0 + 5 * i, 100, 101, 99, 100.5, 10, 3) for i in range(12)]
    services.candle_upsert_many(updates=[CandleUpdate(sbin.ticker, "5s", c, True) for c in ours],
                                symbol_ids={sbin.ticker: sbin.pk})
    services.candle_upsert_many(updates=[CandleUpdate(sbin.ticker, "1m", Candle(t0, 100, 101, 99, 100.5, 120, 36), True)],
                                symbol_ids={sbin.ticker: sbin.pk})
    official = {t0 + 5 * i: [t0 + 5 * i, 100, 101, 99, 100.5, 10] for i in range(12)}
    official[t0 + 20] = [t0 + 20, 100, 104.0, 99, 100.5, 12]  # a spike our snapshots missed
    official[t0 + 60] = [t0 + 60, 100.5, 100.5, 100.5, 100.5, 1]  # a bucket we never saw
    http.history = lambda q: (200, {"s": "ok", "candles": [b for t, b in sorted(official.items())
                                                           if int(q["range_from"]) <= t <= int(q["range_to"])]}
                              if q["resolution"] == "5S" else {"s": "no_data", "candles": []})
    result = sync.catch_up(client(http), sbin, t0, t0 + 65, now=now)
    # the minute from t0 + 60 reaches past the repaired range: left alone, it may hold more
    assert sorted((u.timeframe, u.candle.time) for u in result.updates) == [
        ("1m", t0), ("5s", t0 + 20), ("5s", t0 + 60)]
    assert candles(sbin.ticker, "5s")[4] == (t0 + 20, 100, 104.0, 99, 100.5, 12)
    assert Row.objects.get(symbol=sbin, timeframe="5s", time=t0 + 20).ticks == 3  # our tick count kept
    assert candles(sbin.ticker, "1m")[0] == (t0, 100, 104.0, 99, 100.5, 122)
    assert all(u.final for u in result.updates)
    again = sync.catch_up(client(http), sbin, t0, t0 + 65, now=now)
    assert again.updates == [] and again.requests == 2  # 5S + 1D: two requests, nothing to change


@pytest.mark.django_db
def test_backfill_command_fetches_each_timeframe_is_idempotent_and_logs_a_summary(http, sbin, token, caplog):
    import logging

    caplog.set_level(logging.INFO, "market.fyers")
    t = int(time.time()) - 86400 * 2
    t -= t % 86400
    opening = t + 3 * 3600 + 45 * 60  # 09:15 IST
    bars = {"1": [[opening + 60 * i, 100 + i, 101 + i, 99 + i, 100.5 + i, 10] for i in range(30)]}
    http.history = lambda q: (200, {"s": "ok", "candles": [b for b in bars.get(q["resolution"], [])
                                                           if int(q["range_from"]) <= b[0] <= int(q["range_to"])]})
    out = StringIO()
    call_command("backfill", symbol=[sbin.ticker], tf=["1m"], start=str(opening), end=str(opening + 3600),
                 no_progress=True, stdout=out)
    assert "30 candles written from 1 requests" in out.getvalue()
    assert [c[0] for c in candles(sbin.ticker, "1m")] == [opening + 60 * i for i in range(30)]
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("backfill:")]
    assert summary and "1 symbols x 1 timeframes, 1 requests, 30 candles written" in summary[-1]
    out = StringIO()
    call_command("backfill", symbol=[sbin.ticker], tf=["1m"], start=str(opening), end=str(opening + 3600),
                 no_progress=True, stdout=out)
    assert "0 candles written" in out.getvalue()
    with pytest.raises(CommandError, match="not stored"):
        call_command("backfill", tf=["2m"], stdout=StringIO())
    with pytest.raises(CommandError, match="unknown symbols"):
        call_command("backfill", symbol=["NSE:NOPE-EQ"], stdout=StringIO())


@pytest.mark.django_db
def test_backfill_stops_at_the_apps_daily_budget_and_says_when_to_resume(http, sbin, token, fyers_settings, caplog):
    import logging
    import uuid

    from django.test import override_settings

    caplog.set_level(logging.ERROR, "market.fyers")
    http.history = lambda q: (200, {"s": "no_data", "candles": []})
    end = int(time.time()) - 86400
    app = f"TEST{uuid.uuid4().hex[:8]}-100"  # a fresh app: a shared Redis keeps other tests' counts of today
    with override_settings(FYERS={**fyers_settings, "CLIENT_ID": app, "RATE_PER_DAY": 2}):
        with pytest.raises(CommandError, match=r"daily REST budget used up \(2 of 2 requests\).*run backfill again after"):
            call_command("backfill", symbol=[sbin.ticker], tf=["1m"], start=str(end - 200 * 86400), end=str(end),
                         no_progress=True, stdout=StringIO())
    assert len([p for p in http.paths("GET") if p == "/data/history"]) == 2  # three chunks; the third never sent
    assert sum(f"daily REST budget of app {app} is used up" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.django_db
def test_backfill_without_a_token_says_to_log_in(fyers_settings):
    with pytest.raises(CommandError, match="fyers_login"):
        call_command("backfill", stdout=StringIO())


def test_reconciliation_pace_fits_its_share_of_the_rate_limit(fyers_settings):
    from market.vendors.fyers.feed import FyersFeed
    from market.conf import fyers_conf

    class Ctx:
        pipeline = None

    feed = FyersFeed(Ctx(), conf=fyers_conf(RECONCILE_SECONDS=300, RECONCILE_BUDGET=0.5),
                     limiter=RateLimiter(10, 200))
    # half of 200/min for 5 minutes = 500 requests a round; one 5S request a symbol (+1 1D a day)
    assert feed.catchup.reconcile_batch_size() == 500
    feed = FyersFeed(Ctx(), conf=fyers_conf(RECONCILE_SECONDS=60, RECONCILE_BUDGET=0.25),
                     limiter=RateLimiter(10, 200))
    assert feed.catchup.reconcile_batch_size() == 50
