"""The selectors and services that took over the ORM calls of the Fyers feed, its sync,
the symbol import, Market Pulse and the management commands."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from market import selectors, services
from market.core.pulse import StressEvent
from market.core.timeframes import BASE, Timeframe
from market.core.types import Candle, CandleUpdate
from market.models import PulseEvent, Symbol

pytestmark = pytest.mark.django_db

M1 = Timeframe.parse("1m")


def _symbol(ticker: str, **extra) -> Symbol:
    return Symbol.objects.create(ticker=ticker, exchange="NSE", name=ticker, source="fyers", **extra)


def _store(symbol: Symbol, tf: Timeframe, *times: int) -> None:
    services.candle_upsert_many(updates=[CandleUpdate(symbol.ticker, tf.code, Candle(t, 1, 2, 0.5, 1.5, 10, 3), True)
                                         for t in times], symbol_ids={symbol.ticker: symbol.pk})


def test_candle_newest_is_the_newest_of_that_timeframe_only():
    a, b = _symbol("NSE:A-EQ"), _symbol("NSE:B-EQ")
    assert selectors.candle_newest(symbol=a, tf=BASE) is None
    _store(a, BASE, 100, 300, 200)
    _store(a, M1, 600)
    _store(b, BASE, 900)
    newest = selectors.candle_newest(symbol=a, tf=BASE)
    assert newest == Candle(300, 1, 2, 0.5, 1.5, 10, 3)
    assert selectors.candle_newest(symbol=a, tf=M1).time == 600


def test_candle_stored_range_is_half_open_and_keyed_by_time():
    a = _symbol("NSE:A-EQ")
    _store(a, BASE, 95, 100, 105, 110)
    _store(a, M1, 100)
    got = selectors.candle_stored_range(symbol=a, tf=BASE, start=100, end=110)
    assert list(got) == [100, 105]
    assert got[105] == Candle(105, 1, 2, 0.5, 1.5, 10, 3)


def test_symbol_list_by_tickers_and_symbol_count():
    _symbol("NSE:A-EQ")
    _symbol("NSE:B-EQ", active=False)
    Symbol.objects.create(ticker="AAPL", exchange="US", name="Apple", source="finnhub")
    found = selectors.symbol_list_by_tickers(tickers=["NSE:B-EQ", "NSE:NOPE-EQ", "NSE:A-EQ"])
    assert sorted(s.ticker for s in found) == ["NSE:A-EQ", "NSE:B-EQ"]
    assert selectors.symbol_count(active=True, source="fyers") == 1
    assert selectors.symbol_count(active=False, source="fyers") == 1
    assert selectors.symbol_count(active=True, source="finnhub") == 1


def test_user_get_by_username():
    user = get_user_model().objects.create_user(username="ada", password="x")
    assert selectors.user_get(username="ada") == user
    assert selectors.user_get(username="nobody") is None


def test_symbol_upsert_many_creates_inactive_and_updates_only_what_differs():
    kept = _symbol("NSE:A-EQ", tick_size=0.05)
    values = {"NSE:A-EQ": {"name": "A Ltd", "exchange": "NSE", "tick_size": 0.05},
              "NSE:B-EQ": {"name": "B Ltd", "exchange": "NSE", "tick_size": 0.1},
              "NSE:C-EQ": {"name": "NSE:C-EQ", "exchange": "NSE", "tick_size": 0.05}}
    assert services.symbol_upsert_many(values=values) == (2, 1)
    a, b = Symbol.objects.get(pk=kept.pk), Symbol.objects.get(ticker="NSE:B-EQ")
    assert a.name == "A Ltd" and a.active  # an existing symbol keeps its active flag
    assert b.name == "B Ltd" and float(b.tick_size) == 0.1 and not b.active
    assert services.symbol_upsert_many(values=values) == (0, 0)  # nothing differs now
    assert services.symbol_upsert_many(values={}) == (0, 0)


def test_symbol_set_active_and_activate_many():
    a, b = _symbol("NSE:A-EQ"), _symbol("NSE:B-EQ", active=False)
    services.symbol_set_active(symbol=a, active=False)
    assert not Symbol.objects.get(pk=a.pk).active
    Symbol.objects.filter(pk=b.pk).update(source="replay")
    assert services.symbol_activate_many(tickers=["NSE:A-EQ", "NSE:B-EQ", "NSE:NOPE-EQ"], source="fyers") == 2
    assert sorted(Symbol.objects.filter(active=True, source="fyers").values_list("ticker", flat=True)) == [
        "NSE:A-EQ", "NSE:B-EQ"]


def test_pulse_events_are_stored_cut_to_their_columns_and_listed_newest_first():
    events = [StressEvent("X" * 70, "equity", "move_1m", 10.0, 2.5, 2.0, "m" * 250),
              StressEvent("DEMO:B", "crypto", "vol_spike", 20.0, 4.0, 3.0, "spike")]
    assert services.pulse_event_create_many(events=events) == 2
    assert PulseEvent.objects.count() == 2
    recent = selectors.pulse_event_list_recent(limit=5)
    assert [r["symbol"] for r in recent] == ["DEMO:B", "X" * 64]
    assert recent[0] == {"symbol": "DEMO:B", "class": "crypto", "kind": "vol_spike", "time": 20.0, "value": 4.0,
                         "threshold": 3.0, "message": "spike"}
    assert len(recent[1]["message"]) == 200
    assert len(selectors.pulse_event_list_recent(limit=1)) == 1
