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
