"""Fyers symbol master files: CSV (no header, 21 columns) and JSON, to symbol records.

CSV columns (``https://public.fyers.in/sym_details/NSE_CM.csv`` etc.): 0 Fytoken,
1 symbol details (name), 2 exchange instrument type, 3 minimum lot size, 4 tick size,
5 ISIN, 6 trading session, 7 last update date, 8 expiry (epoch), 9 symbol ticker
(``NSE:SBIN-EQ``), 10 exchange, 11 segment, 12 scrip code, 13 underlying symbol,
14 underlying scrip code, 15 strike price, 16 option type, 17 underlying Fytoken,
18-20 reserved. Pure parsing: no Django, no network.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

COLUMNS = 21
INDEX_TYPES = {10}
FUTURE_TYPES = {11, 12, 13, 16, 17, 18, 20, 30, 32}
OPTION_TYPES = {14, 15, 19, 21, 31, 33}
EQUITY_TYPES = {0, 1, 2, 3, 4, 5, 9, 50}
CURRENCY_SEGMENT = 12  # NSE currency derivatives
COMMODITY_SEGMENT = 20  # commodity derivatives (NSE_COM, MCX_COM)


def session_code(exchange: str, segment: int | None) -> str:
    """The session code a symbol's hours and calendar are kept under
    (``market.core.sessions.DEFAULT_SESSIONS``): the ticker's exchange, except NSE's currency
    (``NSE_CD``, 09:00-17:00) and commodity (``NSE_COM``) segments, which share the ``NSE:``
    prefix with equity but not its hours."""
    if exchange == "NSE" and segment == CURRENCY_SEGMENT:
        return "NSE_CD"
    if exchange == "NSE" and segment == COMMODITY_SEGMENT:
        return "NSE_COM"
    return exchange


@dataclass(frozen=True)
class SymbolRecord:
    """``exchange`` is the session code (``session_code``); ``trading_session`` the master's
    session column (``0915-1530|1815-1915:``), which the calendar reads for the symbol's day."""

    ticker: str
    name: str
    exchange: str
    kind: str
    tick_size: float
    lot_size: int
    isin: str = ""
    fytoken: str = ""
    trading_session: str = ""


@dataclass
class Parsed:
    records: list[SymbolRecord] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line/item number, why)


def kind_for(instrument_type: int | None, ticker: str, segment: int | None = None) -> str:
    if instrument_type in INDEX_TYPES or ticker.endswith("-INDEX"):
        return "index"
    if instrument_type in OPTION_TYPES or (
            ticker.endswith(("CE", "PE")) and instrument_type not in EQUITY_TYPES):
        return "option"
    if instrument_type in FUTURE_TYPES or ticker.endswith("FUT"):
        return "currency" if segment == CURRENCY_SEGMENT else "future"
    if instrument_type in EQUITY_TYPES:
        return "equity"
    return "other"


def _record(*, ticker: Any, name: Any, itype: Any, lot: Any, tick: Any, isin: Any = "", session: Any = "",
            fytoken: Any = "", segment: Any = None) -> SymbolRecord:
    ticker = str(ticker or "").strip()
    if ":" not in ticker or len(ticker) > 64 or any(c.isspace() for c in ticker):
        raise ValueError(f"bad ticker {ticker[:70]!r}")
    exchange = ticker.split(":", 1)[0].upper()
    try:
        tick_size = float(tick)
        lot_size = int(float(lot))
    except (TypeError, ValueError):
        raise ValueError("bad tick or lot size") from None
    if not (math.isfinite(tick_size) and tick_size > 0) or lot_size < 1:
        raise ValueError("bad tick or lot size")
    try:
        itype_n = int(float(itype)) if itype not in (None, "") else None
    except (TypeError, ValueError):
        raise ValueError("bad instrument type") from None
    try:
        segment_n = int(float(segment)) if segment not in (None, "") else None
    except (TypeError, ValueError):
        segment_n = None
    return SymbolRecord(
        ticker=ticker, name=str(name or ticker).strip()[:200], exchange=session_code(exchange, segment_n)[:16],
        kind=kind_for(itype_n, ticker, segment_n), tick_size=tick_size, lot_size=lot_size,
        isin=str(isin or "").strip()[:12], fytoken=str(fytoken or "").strip()[:24],
        trading_session=str(session or "").strip()[:64],
    )


def parse_csv(text: str) -> Parsed:
    out = Parsed()
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 10:
            out.errors.append((n, f"{len(row)} columns, expected {COLUMNS}"))
            continue
        try:
            out.records.append(_record(ticker=row[9], name=row[1], itype=row[2], lot=row[3], tick=row[4],
                                       isin=row[5], session=row[6], fytoken=row[0],
                                       segment=row[11] if len(row) > 11 else None))
        except ValueError as exc:
            out.errors.append((n, str(exc)))
    return out


def parse_json(text: str) -> Parsed:
    """``*_sym_master.json``: an object keyed by ticker (or a list) of objects."""
    out = Parsed()
    try:
        data = json.loads(text)
    except ValueError as exc:
        out.errors.append((0, f"not JSON: {exc}"))
        return out
    items: Iterable[tuple[Any, Any]] = data.items() if isinstance(data, dict) else enumerate(data or [], 1)
    for n, (key, item) in enumerate(items, start=1):
        if not isinstance(item, dict):
            out.errors.append((n, "not an object"))
            continue
        ticker = item.get("symTicker") or item.get("symbol") or (key if isinstance(key, str) else "")
        try:
            out.records.append(_record(
                ticker=ticker, name=item.get("symDetails") or item.get("name"),
                itype=item.get("exInstType", item.get("instrumentType")),
                lot=item.get("minLotSize", item.get("lotSize", 1)), tick=item.get("tickSize", 0.05),
                isin=item.get("isin", ""), session=item.get("tradingSession", ""),
                fytoken=item.get("fyToken", item.get("fytoken", "")), segment=item.get("segment")))
        except ValueError as exc:
            out.errors.append((n, str(exc)))
    return out


def parse(text: str) -> Parsed:
    stripped = text.lstrip()
    return parse_json(text) if stripped[:1] in "{[" else parse_csv(text)
