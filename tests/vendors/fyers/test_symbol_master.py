"""Symbol master: CSV (no header, 21 columns) and JSON, parsed and imported; bad rows reported."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from market.vendors.fyers.symbol_master import parse, parse_csv, parse_json
from market.models import Symbol

FIXTURES = Path(__file__).parent / "fixtures"


def test_csv_rows_become_records_and_bad_rows_are_reported():
    parsed = parse_csv((FIXTURES / "NSE_CM_sample.csv").read_text())
    by = {r.ticker: r for r in parsed.records}
    assert sorted(by) == ["NSE:NIFTY50-INDEX", "NSE:RELIANCE-EQ", "NSE:SBIN-EQ", "NSE:TCS-EQ"]
    sbin = by["NSE:SBIN-EQ"]
    assert (sbin.name, sbin.exchange, sbin.kind, sbin.tick_size, sbin.lot_size) == (
        "STATE BANK OF INDIA", "NSE", "equity", 0.05, 1)
    assert (sbin.isin, sbin.fytoken, sbin.trading_session) == ("INE062A01020", "10100000003045", "0915-1530|1815-1915:")
    assert by["NSE:NIFTY50-INDEX"].kind == "index"
    assert by["NSE:RELIANCE-EQ"].tick_size == 0.1
    assert [line for line, _ in parsed.errors] == [4, 5]
    assert "tick" in parsed.errors[0][1] and "3 columns" in parsed.errors[1][1]


def test_json_master_and_kinds():
    parsed = parse_json((FIXTURES / "NSE_FO_sample.json").read_text())
    by = {r.ticker: r for r in parsed.records}
    assert by["NSE:NIFTY26NOVFUT"].kind == "future" and by["NSE:NIFTY26NOVFUT"].lot_size == 75
    assert by["NSE:NIFTY26N2724000CE"].kind == "option"
    assert len(parsed.errors) == 2
    assert parse("[]").records == [] and parse("{not json").errors


@pytest.mark.django_db
def test_import_symbols_from_a_file_and_a_url_upserts_and_reports(http, fyers_settings):
    Symbol.objects.create(ticker="NSE:SBIN-EQ", exchange="NSE", name="old name", active=True, source="replay")
    out = StringIO()
    call_command("import_symbols", str(FIXTURES / "NSE_CM_sample.csv"), stdout=out)
    text = out.getvalue()
    assert "4 symbols (3 new, 1 updated), 2 rows did not parse" in text and "row 4:" in text
    sbin = Symbol.objects.get(ticker="NSE:SBIN-EQ")
    assert (sbin.name, sbin.isin, sbin.fytoken, sbin.source, sbin.active) == (
        "STATE BANK OF INDIA", "INE062A01020", "10100000003045", "fyers", True)  # keeps its active flag
    assert Symbol.objects.get(ticker="NSE:TCS-EQ").active is False  # new symbols start inactive
    assert Symbol.objects.get(ticker="NSE:NIFTY50-INDEX").kind == "index"

    # the same master again changes nothing; a segment from the (loopback) public site works
    http.files["/sym_details/NSE_FO.csv"] = (FIXTURES / "NSE_FO_sample.json").read_bytes()
    out = StringIO()
    call_command("import_symbols", str(FIXTURES / "NSE_CM_sample.csv"), segment=["NSE_FO"],
                 activate=["NSE:NIFTY26NOVFUT", "NSE:NOPE-EQ"], stdout=out)
    text = out.getvalue()
    assert "4 symbols (0 new, 0 updated)" in text
    assert "NSE_FO.csv: 2 symbols (2 new, 0 updated), 2 rows did not parse" in text
    assert "activated 1 symbol(s); unknown: NSE:NOPE-EQ" in text
    assert Symbol.objects.get(ticker="NSE:NIFTY26NOVFUT").active is True


def test_segments_get_their_session_code_and_keep_the_session_column():
    rows = (
        "101126102901201,USDINR 26 Oct 29 FUT,11,1,0.0025,,0900-1700|1815-1915:,2026-09-29,1793269800,"
        "NSE:USDINR26OCTFUT,10,12,1201,USDINR,-1,-1.0,XX,-1,None,0,0.0\n"
        "1120251205470295,GOLDM 25 Dec 05 FUT,30,1,1.0,,0900-2355|1815-1915:,2025-12-02,1764959100,"
        "MCX:GOLDM25DECFUT,11,20,470295,GOLDM,117,-1.0,XX,1120000000117,1764959100,0,0.0\n"
        "101126102752175,NIFTY 26 Oct 27 FUT,11,75,0.1,,0915-1530|1815-1915:,2026-09-29,1793097000,"
        "NSE:NIFTY26OCTFUT,10,11,52175,NIFTY,26000,-1.0,XX,-1,None,0,0.0\n"
    )
    by = {r.ticker: r for r in parse_csv(rows).records}
    assert (by["NSE:USDINR26OCTFUT"].exchange, by["NSE:USDINR26OCTFUT"].kind) == ("NSE_CD", "currency")
    assert by["MCX:GOLDM25DECFUT"].exchange == "MCX"
    assert by["MCX:GOLDM25DECFUT"].trading_session == "0900-2355|1815-1915:"
    assert by["NSE:NIFTY26OCTFUT"].exchange == "NSE"  # F&O keeps equity's hours
