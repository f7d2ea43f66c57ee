"""``GET /api/candles.csv`` and ``/api/candles.parquet``: ``/api/candles``'s parameters,
no page limit, streamed.

Pages of 10,000 candles are read one after another (``selectors.candle_pages``) in the
database thread and encoded as they come (``market.core.candle_files``), through an async
iterator: under daphne, Django would read a sync iterator whole before sending a byte.
``limit`` caps the number of candles; without ``from`` the export starts at the first one.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from market import selectors
from market.conf import market
from market.core.candle_files import ChartCsv, ChartParquet, study_columns
from market.web import access
from market.web.responses import json_response
from market.web.views import BadRequest, candles_query

PAGE = 10_000
_UNLIMITED = 10**12
MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def _filename(ticker: str, tf: str, fmt: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in ticker)
    return f"{safe}_{tf}.{fmt}"


def _export(request: HttpRequest, fmt: str) -> HttpResponse:
    try:
        ticker, tf, start, end, limit, studies = candles_query(request.GET, max_limit=_UNLIMITED)
    except BadRequest as exc:
        return json_response({"error": str(exc)}, status=400)
    symbol = selectors.symbol_get(ticker=ticker)
    if symbol is None:
        return json_response({"error": f"unknown symbol {ticker}"}, status=404)
    tz = market().sessions.tz_name(symbol.exchange)
    pages = selectors.candle_pages(symbol=symbol, tf=tf, start=start, end=end, page=PAGE)

    def next_page() -> tuple[list[Any], dict[str, list[dict[str, Any]]] | None] | None:
        candles = next(pages, None)
        if candles is None:
            return None
        rows = selectors.candle_studies(symbol=symbol, tf=tf, candles=candles, studies=studies) if studies else None
        return candles, rows

    response = StreamingHttpResponse(_stream(fmt, tz, [s.key for s in studies or []], next_page, limit),
                                     content_type=MEDIA[fmt])
    response["Content-Disposition"] = f'attachment; filename="{_filename(symbol.ticker, tf.code, fmt)}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


async def _stream(fmt: str, tz: str, keys: list[str], next_page: Callable[[], Any],
                  limit: int | None) -> AsyncIterator[bytes]:
    """The encoded file, a page at a time (each read in the database thread)."""
    read = sync_to_async(next_page)
    first = await read()
    columns = study_columns(first[1]) if first and first[1] else list(keys)
    encoder = ChartParquet(tz, columns) if fmt == "parquet" else ChartCsv(tz, columns)
    if fmt == "csv":
        yield encoder.header().encode()
    left = limit if limit is not None else _UNLIMITED
    item = first
    while item is not None and left > 0:
        candles, rows = item
        if len(candles) > left:
            candles = candles[:left]
            rows = {k: v[:left] for k, v in rows.items()} if rows else rows
        left -= len(candles)
        chunk = encoder.page(candles, rows)
        yield chunk if isinstance(chunk, bytes) else chunk.encode()
        item = await read() if left > 0 else None
    if isinstance(encoder, ChartParquet):
        yield encoder.close()


@access.api_view()
def api_candles_csv(request: HttpRequest) -> HttpResponse:
    return _export(request, "csv")


@access.api_view()
def api_candles_parquet(request: HttpRequest) -> HttpResponse:
    return _export(request, "parquet")
