"""Symbol search ranking (market.selectors.symbol_search) over a realistic symbol table."""

from __future__ import annotations

import pytest

from market.selectors import symbol_search

REAL = [
    ("NSE:SBIN-EQ", "STATE BANK OF INDIA"),
    ("NSE:SBICARD-EQ", "SBI CARDS AND PAYMENT SERVICES"),
    ("NSE:SBILIFE-EQ", "SBI LIFE INSURANCE COMPANY"),
    ("NSE:ASBINDIA-EQ", "A S B INDIA"),
    ("NSE:RELIANCE-EQ", "RELIANCE INDUSTRIES"),
    ("NSE:RELINFRA-EQ", "RELIANCE INFRASTRUCTURE"),
    ("NSE:TCS-EQ", "TATA CONSULTANCY SERVICES"),
    ("NSE:TATAMOTORS-EQ", "TATA MOTORS"),
    ("NSE:TATASTEEL-EQ", "TATA STEEL"),
    ("NSE:HDFCBANK-EQ", "HDFC BANK"),
    ("NSE:ICICIBANK-EQ", "ICICI BANK"),
    ("NSE:INFY-EQ", "INFOSYS"),
    ("NSE:NIFTY50-INDEX", "NIFTY 50"),
    ("NSE:NIFTYBANK-INDEX", "NIFTY BANK"),
    ("BSE:SBIN-EQ", "STATE BANK OF INDIA"),
]


@pytest.fixture
def table(db):
    from market.models import Symbol

    Symbol.objects.bulk_create(
        [Symbol(ticker=t, name=n, exchange=t.split(":")[0]) for t, n in REAL]
        + [Symbol(ticker=f"NSE:Z{i:04d}X-EQ", name=f"FILLER {i} LIMITED", exchange="NSE") for i in range(300)]
    )
    return Symbol


def tickers(q: str, limit: int = 20) -> list[str]:
    return [row["ticker"] for row in symbol_search(query=q, limit=limit)]


def test_exact_bare_ticker_first(table):
    assert tickers("sbin")[:2] == ["BSE:SBIN-EQ", "NSE:SBIN-EQ"]
    assert tickers("tcs")[0] == "NSE:TCS-EQ"


def test_ticker_prefix_before_contains(table):
    got = tickers("sbi")
    assert got.index("NSE:SBICARD-EQ") < got.index("NSE:ASBINDIA-EQ")
    assert got.index("NSE:SBILIFE-EQ") < got.index("NSE:ASBINDIA-EQ")


def test_word_start_in_name(table):
    got = tickers("motors")
    assert got == ["NSE:TATAMOTORS-EQ"]
    got = tickers("bank")
    assert {"NSE:HDFCBANK-EQ", "NSE:ICICIBANK-EQ", "NSE:SBIN-EQ", "NSE:NIFTYBANK-INDEX"} <= set(got)
    # a ticker that starts with the query outranks a name word
    assert set(tickers("tata")[:2]) == {"NSE:TATAMOTORS-EQ", "NSE:TATASTEEL-EQ"}
    assert tickers("tata")[2] == "NSE:TCS-EQ"


def test_initials_and_subsequence(table):
    assert "NSE:TCS-EQ" in tickers("tcs")
    assert tickers("rlnc")[0] == "NSE:RELIANCE-EQ"
    assert "NSE:SBIN-EQ" in tickers("sboi")  # State Bank Of India


@pytest.mark.parametrize("typo, want", [("relaince", "NSE:RELIANCE-EQ"), ("hdfcbnak", "NSE:HDFCBANK-EQ"),
                                        ("infu", "NSE:INFY-EQ"), ("icicbank", "NSE:ICICIBANK-EQ")])
def test_typos_are_tolerated(table, typo, want):
    assert want in tickers(typo)[:3]


def test_unrelated_queries_find_nothing(table):
    assert tickers("qqqq") == []
    assert "NSE:TCS-EQ" not in tickers("sbin")


def test_active_first_within_a_tier_and_limit(table):
    table.objects.filter(ticker="BSE:SBIN-EQ").update(active=False)
    assert tickers("sbin")[:2] == ["NSE:SBIN-EQ", "BSE:SBIN-EQ"]
    assert len(tickers("z0", limit=7)) == 7


def test_empty_query_lists_active_symbols(table):
    table.objects.filter(ticker="NSE:INFY-EQ").update(active=False)
    got = tickers("", limit=500)
    assert "NSE:INFY-EQ" not in got and "NSE:SBIN-EQ" in got
