"""``manage.py add_symbols AAPL OANDA:EUR_USD BINANCE:BTCUSDT``: symbols for a feed to stream.

Exchange and asset class follow from the Finnhub ticker (``AAPL`` -> US equity, session
America/New_York; ``BINANCE:`` -> crypto, ``OANDA:`` -> currency, round the clock). An
existing symbol is (re)activated, its other fields left alone.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from market import selectors, services
from market.vendors.finnhub.messages import classify
from market.conf import finnhub_conf
from market.web.validation import is_ticker


class Command(BaseCommand):
    help = "Add (or re-activate) symbols streamed by a feed (default: finnhub)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("tickers", nargs="+", help="e.g. AAPL OANDA:EUR_USD BINANCE:BTCUSDT")
        parser.add_argument("--source", default="finnhub", help="feed that supplies them (default finnhub)")
        parser.add_argument("--inactive", action="store_true",
                            help="add them inactive: an on-demand feed streams them only while watched")

    def handle(self, *args, **opts) -> None:
        conf = finnhub_conf()
        bad = [t for t in opts["tickers"] if not is_ticker(t)]
        if bad:
            raise CommandError(f"not a ticker: {', '.join(bad)}")
        for ticker in opts["tickers"]:
            exchange, kind = classify(ticker, conf.prefix_kinds)
            if exchange == "US":
                exchange = conf.stock_exchange
            symbol, created = services.symbol_register(ticker=ticker, exchange=exchange, kind=kind,
                                                       source=opts["source"])
            active = not opts["inactive"]
            if not created and symbol.active != active:
                services.symbol_set_active(symbol=symbol, active=active)
            elif created and not active:
                services.symbol_set_active(symbol=symbol, active=False)
            self.stdout.write(f"{'added' if created else 'exists'} {ticker} ({exchange}, {kind}, "
                              f"source {symbol.source}{'' if active else ', inactive'})")
        n = selectors.symbol_count(active=True, source=opts["source"])
        if opts["source"] == "finnhub" and n > conf.max_symbols:
            self.stderr.write(f"warning: {n} active finnhub symbols; Finnhub allows {conf.max_symbols} "
                              "per connection, the rest will not be streamed (the feed names them)")
