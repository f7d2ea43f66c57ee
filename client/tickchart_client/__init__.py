"""TickChart's Python client: ``Client(url, token)`` for history, live candles and alerts.

    from tickchart_client import Client
    tc = Client("http://127.0.0.1:8000", token)           # or $TICKCHART_TOKEN
    df = tc.history("NSE:SBIN-EQ", "1m", "2026-11-01", studies=["ema:20"])
    async for update in tc.stream(["NSE:SBIN-EQ"], "1m"):
        print(update.symbol, update.candle)
"""

from tickchart_client.client import Client, TickChartError
from tickchart_client.stream import StreamError, Update

__all__ = ["Client", "StreamError", "TickChartError", "Update"]
__version__ = "0.1.0"
