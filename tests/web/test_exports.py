"""``GET /api/candles.csv`` and ``/api/candles.parquet`` (issue 16): /api/candles's
parameters, no 10,000 limit, streamed a page at a time through an async iterator."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pyarrow.parquet as pq
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from market import selectors, services
from market.core.timeframes import Timeframe
from market.core.types import Candle, CandleUpdate
from market.web import exports

TICKER = "NSE:SBIN-EQ"
T0 = 1_761_968_700  # 2025-11-01 09:15 IST
COUNT = 23_456
SESSION = 375
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))

pytestmark = pytest.mark.django_db(transaction=True)


def seed_time(i: int) -> int:
    return T0 + (i // SESSION) * 86_400 + (i % SESSION) * 60


@pytest.fixture
def seeded(make_symbol):
    symbol = make_symbol(TICKER)
    ups = [CandleUpdate(TICKER, "1m", Candle(time=seed_time(i), open=100 + i % 7, high=110 + i % 5, low=90 - i % 3,
                                             close=100 + i % 11 + 0.05, volume=1000 + i, ticks=1 + i % 9), True)
           for i in range(COUNT)]
    services.candle_upsert_many(updates=ups, symbol_ids={TICKER: symbol.id})
    return symbol


async def get(path: str) -> tuple[int, dict, bytes]:
    """The whole streamed body, and the response's headers."""
    response = await AsyncClient().get(path)
    if not response.streaming:
        return response.status_code, dict(response.headers), response.content
    assert response.is_async, "a sync iterator would be read whole before the first byte under daphne"
    body = b"".join([chunk async for chunk in response.streaming_content])
    return response.status_code, dict(response.headers), body


def rows_of_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


async def test_csv_streams_every_candle_past_the_page_limit(seeded):
    status, headers, body = await get(f"/api/candles.csv?symbol={TICKER}&tf=1m")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == 'attachment; filename="NSE_SBIN-EQ_1m.csv"'
    rows = rows_of_csv(body)
    assert len(rows) == COUNT
    assert [int(r["epoch"]) for r in rows] == [seed_time(i) for i in range(COUNT)]
    i = 17_001
    assert rows[i] == {"time": dt.datetime.fromtimestamp(seed_time(i), IST).isoformat(), "epoch": str(seed_time(i)),
                       "open": str(float(100 + i % 7)), "high": str(float(110 + i % 5)), "low": str(float(90 - i % 3)),
                       "close": str(100 + i % 11 + 0.05), "volume": str(float(1000 + i)), "ticks": str(1 + i % 9)}
    assert rows[0]["time"] == "2025-11-01T09:15:00+05:30"


async def test_range_limit_and_a_derived_timeframe(seeded):
    _, _, body = await get(f"/api/candles.csv?symbol={TICKER}&tf=1m&from={seed_time(100)}&to={seed_time(20_100)}")
    assert [int(r["epoch"]) for r in rows_of_csv(body)] == [seed_time(i) for i in range(100, 20_101)]
    _, _, body = await get(f"/api/candles.csv?symbol={TICKER}&tf=1m&limit=12345")
    assert len(rows_of_csv(body)) == 12_345
    _, _, body = await get(f"/api/candles.csv?symbol={TICKER}&tf=3m")  # aggregated, across pages
    rows = rows_of_csv(body)
    expected = sorted({t - (t - T0) % 86_400 % 180 for t in map(seed_time, range(COUNT))})
    assert [int(r["epoch"]) for r in rows] == expected
    assert sum(float(r["volume"]) for r in rows) == sum(1000 + i for i in range(COUNT))


async def test_studies_are_columns_equal_to_the_api(seeded):
    _, _, body = await get(f"/api/candles.csv?symbol={TICKER}&tf=1m&studies=ema:20,macd")
    rows = rows_of_csv(body)
    assert list(rows[0]) == ["time", "epoch", "open", "high", "low", "close", "volume", "ticks", "ema:20",
                             "macd:12:26:9.macd", "macd:12:26:9.signal", "macd:12:26:9.hist"]
    api = (await AsyncClient().get(f"/api/candles?symbol={TICKER}&tf=1m&from={seed_time(15_000)}&limit=50"
                                   "&studies=ema:20,macd")).json()
    for j in (0, 49):
        row = rows[15_000 + j]
        assert float(row["ema:20"]) == pytest.approx(api["studies"]["ema:20"][j]["value"], rel=1e-12)
        assert float(row["macd:12:26:9.hist"]) == pytest.approx(api["studies"]["macd:12:26:9"][j]["hist"], rel=1e-12)
    assert rows[0]["ema:20"] == ""  # warm-up: empty, as null in the API


async def test_parquet_has_the_same_candles_with_a_zoned_time(seeded):
    status, headers, body = await get(f"/api/candles.parquet?symbol={TICKER}&tf=1m&studies=rsi:14")
    assert status == 200 and headers["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(body))
    assert table.num_rows == COUNT and table.schema.field("time").type.tz == "Asia/Kolkata"
    assert pq.ParquetFile(io.BytesIO(body)).metadata.num_row_groups == -(-COUNT // exports.PAGE)
    times = [int(t.timestamp()) for t in table.column("time").to_pylist()]
    assert times == [seed_time(i) for i in range(COUNT)]
    assert table.column("volume").to_pylist()[-1] == 1000 + COUNT - 1
    rsi = table.column("rsi:14").to_pylist()
    assert rsi[:14] == [None] * 14 and all(0 <= v <= 100 for v in rsi[14:])


async def test_pages_are_sent_as_they_are_read(seeded, monkeypatch):
    monkeypatch.setattr(exports, "PAGE", 1000)
    response = await AsyncClient().get(f"/api/candles.csv?symbol={TICKER}&tf=1m&limit=5000")
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) == 1 + 5  # the header, then one chunk per page of 1,000
    assert sum(c.count(b"\n") for c in chunks) == 1 + 5000


@pytest.mark.parametrize("query, status, message", [
    ("symbol=NSE:NOPE-EQ&tf=1m", 404, "unknown symbol NSE:NOPE-EQ"),
    ("tf=1m", 400, "symbol is required"),
    (f"symbol={TICKER}&tf=7m", 400, "7m"),
    (f"symbol={TICKER}&tf=1m&from=20&to=10", 400, "from must not be after to"),
    (f"symbol={TICKER}&tf=1m&studies=ema:0", 400, "ema"),
    (f"symbol={TICKER}&tf=1m&limit=1&limit=2", 400, "limit given more than once"),
])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
async def test_bad_requests_are_json_errors(seeded, query, status, message, fmt):
    response = await AsyncClient().get(f"/api/candles.{fmt}?{query}")
    assert response.status_code == status and message in response.json()["error"]


async def test_an_export_needs_read_access(seeded, settings):
    settings.TICKCHART_PUBLIC_ACCESS = False
    response = await AsyncClient().get(f"/api/candles.csv?symbol={TICKER}&tf=1m")
    assert response.status_code == 401


async def test_empty_range_gives_the_header_only(seeded):
    status, _, body = await get(f"/api/candles.csv?symbol={TICKER}&tf=1m&from=10&to=20")
    assert (status, body) == (200, b"time,epoch,open,high,low,close,volume,ticks\n")
    assert await sync_to_async(selectors.candle_list)(symbol=seeded, tf=Timeframe.parse("1m"), start=10, end=20) == []
    status, _, body = await get(f"/api/candles.parquet?symbol={TICKER}&tf=1m&from=10&to=20&studies=macd")
    table = pq.read_table(io.BytesIO(body))
    assert status == 200 and table.num_rows == 0 and "time" in table.schema.names
