"""export_candles / import_candles (CSV, Parquet) and prune_candles, on both backends (on
PostgreSQL prune drops whole partitions: tests/test_partitions.py has the details)."""

from __future__ import annotations

import io
import random

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from market import services
from market.core import candle_files as cf
from market.models import Candle, Symbol

pytestmark = pytest.mark.django_db

DAY = 86400
NOW = 1_780_000_000


def _store(rows: list[Candle]) -> None:
    """``bulk_create``, with the partitions the rows go to made first (PostgreSQL; the
    services' own writes make them)."""
    services.candle_partition_ensure(pairs=[(c.timeframe, c.time) for c in rows])
    Candle.objects.bulk_create(rows)


def _seed(n_per: int = 300) -> None:
    rng = random.Random(7)
    for ticker in ("NSE:SBIN-EQ", "NSE:TCS-EQ"):
        s, _ = services.symbol_register(ticker=ticker, exchange="NSE")
        rows = []
        for tf, step in (("5s", 5), ("1m", 60), ("1d", DAY)):
            for i in range(n_per):
                o = 100 + rng.random()
                c = 100 + rng.random()
                rows.append(Candle(symbol=s, timeframe=tf, time=NOW - step * (i + 1), open=o, high=max(o, c) + 0.1,
                                   low=min(o, c) - 0.1, close=c, volume=rng.random() * 1e6, ticks=rng.randint(0, 50)))
        _store(rows)


def _snapshot() -> list[tuple]:
    return sorted(Candle.objects.values_list("symbol__ticker", "timeframe", "time", "open", "high", "low",
                                             "close", "volume", "ticks"))


def _wipe() -> None:
    Candle.objects.all().delete()
    Symbol.objects.all().delete()


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_round_trip_to_a_fresh_database_is_exact_and_idempotent(tmp_path, suffix):
    _seed()
    before = _snapshot()
    path = tmp_path / f"candles.{suffix}"
    call_command("export_candles", str(path), "--chunk", "77", stdout=io.StringIO())
    _wipe()
    with pytest.raises(CommandError, match="unknown symbol.*NSE:SBIN-EQ|unknown symbol.*NSE:TCS-EQ"):
        call_command("import_candles", str(path), stdout=io.StringIO())
    out = io.StringIO()
    call_command("import_candles", str(path), "--create-symbols", "--batch", "101", stdout=out)
    assert "imported 1800 candles" in out.getvalue() and "2 symbols created" in out.getvalue()
    assert _snapshot() == before  # candle for candle, floats bit for bit
    call_command("import_candles", str(path), "--batch", "50", stdout=io.StringIO())
    assert _snapshot() == before  # re-import changes nothing
    assert Symbol.objects.get(ticker="NSE:SBIN-EQ").active is False


def test_filters_symbol_tf_and_time(tmp_path):
    _seed(10)
    path = tmp_path / "some.csv"
    call_command("export_candles", str(path), "--symbol", "NSE:TCS-EQ", "--tf", "1m",
                 "--from", str(NOW - 5 * 60), "--to", str(NOW - 60), stdout=io.StringIO())
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(cf.COLUMNS)
    times = sorted(int(line.split(",")[2]) for line in lines[1:])
    assert times == [NOW - 60 * k for k in (5, 4, 3, 2)]
    assert all(line.startswith("NSE:TCS-EQ,1m,") for line in lines[1:])
    with pytest.raises(CommandError, match="not a stored timeframe"):
        call_command("export_candles", str(path), "--tf", "3m", stdout=io.StringIO())


def test_malformed_row_names_its_line_and_keeps_the_rows_before(tmp_path):
    services.symbol_register(ticker="X", exchange="NSE")
    good = [f"X,5s,{1000 + 5 * i},1,2,0.5,1.5,10,3" for i in range(25)]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([",".join(cf.COLUMNS), *good, "X,5s,2000,1,abc,0.5,1.5,10,3", "X,5s,2005,1,2,0.5,1.5,1,1"]) + "\n")
    with pytest.raises(CommandError, match=r"line 27: not a number.*25 candles before it were imported"):
        call_command("import_candles", str(path), "--batch", "10", stdout=io.StringIO())
    assert Candle.objects.count() == 25
    path.write_text(",".join(cf.COLUMNS) + "\nX,5s,1000,1,0.9,0.5,1.5,10,3\n")
    with pytest.raises(CommandError, match="line 2: low 0.5 / high 0.9"):
        call_command("import_candles", str(path), stdout=io.StringIO())
    path.write_text("sym,tf\nX,5s\n")
    with pytest.raises(CommandError, match="line 1: header"):
        call_command("import_candles", str(path), stdout=io.StringIO())
    path.write_text(",".join(cf.COLUMNS) + "\nX,7s,1000,1,2,0.5,1.5,10,3\n")
    with pytest.raises(CommandError, match="line 2: unknown timeframe '7s'"):
        call_command("import_candles", str(path), stdout=io.StringIO())


def test_malformed_parquet_row_names_its_row(tmp_path):
    services.symbol_register(ticker="X", exchange="NSE")
    rows = [("X", "5s", 1000 + 5 * i, 1.0, 2.0, 0.5, 1.5, 10.0, 3) for i in range(30)]
    rows[22] = ("X", "5s", 1110, 1.0, 2.0, 0.5, float("nan"), 10.0, 3)
    path = tmp_path / "bad.parquet"
    cf.write_parquet(rows, path, batch=7)
    with pytest.raises(CommandError, match="row 23: open/high/low/close/volume must be finite"):
        call_command("import_candles", str(path), "--batch", "5", stdout=io.StringIO())
    assert Candle.objects.count() == 22


def test_parse_when():
    assert cf.parse_when("2024-06-01") == 1717200000
    assert cf.parse_when("1717200000") == 1717200000
    assert cf.parse_when("2024-06-01T05:30:00+05:30") == 1717200000
    with pytest.raises(cf.CandleFileError):
        cf.parse_when("yesterday")


def test_prune_deletes_exactly_the_old_rows_per_timeframe():
    s, _ = services.symbol_register(ticker="X", exchange="NSE")
    ages = [1, 29, 30.5, 31, 400, 729, 731, 5000]  # days
    _store([
        Candle(symbol=s, timeframe=tf, time=int(NOW - a * DAY), open=1, high=1, low=1, close=1)
        for tf in ("5s", "1m", "1h") for a in ages
    ])
    # SQLite deletes each row past the cutoff; PostgreSQL drops whole partitions, so the rows
    # sharing the cutoff's day (5 s: 30.5 days) or month (1 m: 731 days) stay until it expires.
    partitions = connection.vendor == "postgresql"
    out = io.StringIO()
    call_command("prune_candles", "--dry-run", "--now", str(NOW), stdout=out)
    expect_5s, expect_1m = (5, 1) if partitions else (6, 2)
    assert f"5s: would delete {expect_5s}" in out.getvalue() and f"1m: would delete {expect_1m}" in out.getvalue()
    assert Candle.objects.count() == 24
    call_command("prune_candles", "--now", str(NOW), "--batch", "2", stdout=io.StringIO())
    left = {tf: sorted(round((NOW - t) / DAY, 1) for t in
                       Candle.objects.filter(timeframe=tf).values_list("time", flat=True))
            for tf in ("5s", "1m", "1h")}
    assert left == {"5s": [1, 29, 30.5] if partitions else [1, 29],
                    "1m": [1, 29, 30.5, 31, 400, 729, 731] if partitions else [1, 29, 30.5, 31, 400, 729],
                    "1h": sorted(ages)}


@override_settings(MARKET={"RETENTION_DAYS": {"5s": 2, "1m": None}})
def test_retention_comes_from_settings():
    s, _ = services.symbol_register(ticker="X", exchange="NSE")
    _store([Candle(symbol=s, timeframe=tf, time=NOW - 3 * DAY, open=1, high=1, low=1, close=1)
            for tf in ("5s", "1m")])
    call_command("prune_candles", "--now", str(NOW), stdout=io.StringIO())
    assert list(Candle.objects.values_list("timeframe", flat=True)) == ["1m"]
    with pytest.raises(CommandError, match="no retention set for 1m"):
        call_command("prune_candles", "--tf", "1m", stdout=io.StringIO())
