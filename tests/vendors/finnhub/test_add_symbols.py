from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from market.models import Symbol


@pytest.mark.django_db
def test_add_symbols_sets_exchange_kind_and_source_from_the_ticker():
    out = StringIO()
    call_command("add_symbols", "AAPL", "OANDA:EUR_USD", "BINANCE:BTCUSDT", stdout=out)
    rows = {s.ticker: (s.exchange, s.kind, s.source, s.active) for s in Symbol.objects.all()}
    assert rows == {"AAPL": ("US", "equity", "finnhub", True),
                    "OANDA:EUR_USD": ("OANDA", "currency", "finnhub", True),
                    "BINANCE:BTCUSDT": ("BINANCE", "crypto", "finnhub", True)}
    call_command("add_symbols", "AAPL", "--inactive", stdout=out)
    assert not Symbol.objects.get(ticker="AAPL").active
    call_command("add_symbols", "AAPL", stdout=out)
    assert Symbol.objects.get(ticker="AAPL").active


@pytest.mark.django_db
def test_add_symbols_warns_past_the_connection_limit(settings):
    settings.FINNHUB = {**settings.FINNHUB, "MAX_SYMBOLS": 2}
    err = StringIO()
    call_command("add_symbols", "A", "B", "C", stdout=StringIO(), stderr=err)
    assert "3 active finnhub symbols" in err.getvalue()
    with pytest.raises(CommandError):
        call_command("add_symbols", "BAD TICKER", stdout=StringIO())
