"""Edge validation shared by the HTTP views and the WebSocket consumer."""

from __future__ import annotations

import re

MAX_TICKER_LENGTH = 64
# Printable ASCII without spaces: broker tickers such as NSE:SBIN-EQ, NSE:M&M-EQ, BINANCE:BTCUSDT.
_TICKER = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_TICKER_LENGTH)


def is_ticker(value: object) -> bool:
    return isinstance(value, str) and _TICKER.fullmatch(value) is not None
