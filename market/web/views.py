"""HTTP edges: the chart page and the JSON API. Validation here, reads in selectors."""

from __future__ import annotations

from typing import Any, NamedTuple

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render

from market import selectors
from market.web import access
from market.conf import market
from market.core.studies import Study, StudyError, parse_studies
from market.core.timeframes import CODES, Timeframe, TimeframeError
from market.web.responses import json_response
from market.web.validation import is_ticker

DEFAULT_TF = "1m"
_MAX_EPOCH = 10**10


class BadRequest(ValueError):
    pass


def int_param(params: QueryDict, name: str, *, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    # int() would also read "١٢", "1_0", " 5 " and "+5": accept plain ASCII digits only.
    digits = raw[1:] if raw.startswith("-") else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
        raise BadRequest(f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def _timeframe(code: str | None) -> Timeframe:
    try:
        return Timeframe.parse(code or DEFAULT_TF)
    except TimeframeError as exc:
        raise BadRequest(str(exc)) from None


def _studies(raw: str | None) -> list[Study] | None:
    """``studies=ema:20,rsi:14,macd`` (None: not asked for)."""
    if raw is None:
        return None
    try:
        return parse_studies(raw)
    except StudyError as exc:
        raise BadRequest(str(exc)) from None


class CandlesQuery(NamedTuple):
    ticker: str
    tf: Timeframe
    start: int | None
    end: int | None
    limit: int | None
    studies: list[Study] | None


def candles_query(params: QueryDict, *, max_limit: int) -> CandlesQuery:
    """``symbol, tf, from, to, limit, studies`` of ``/api/candles`` and its exports, checked;
    raises BadRequest naming the bad one."""
    # "?limit=10&limit=10000": which one counts is a guess; say so instead.
    repeated = [k for k in ("symbol", "tf", "from", "to", "limit", "studies") if len(params.getlist(k)) > 1]
    if repeated:
        raise BadRequest(f"{repeated[0]} given more than once")
    ticker = params.get("symbol", "").strip()
    if not ticker:
        raise BadRequest("symbol is required")
    if not is_ticker(ticker):
        raise BadRequest("symbol must be a ticker such as NSE:SBIN-EQ")
    tf = _timeframe(params.get("tf"))
    start = int_param(params, "from", low=0, high=_MAX_EPOCH)
    end = int_param(params, "to", low=0, high=_MAX_EPOCH)
    limit = int_param(params, "limit", low=1, high=max_limit)
    if start is not None and end is not None and start > end:
        raise BadRequest("from must not be after to")
    return CandlesQuery(ticker, tf, start, end, limit, _studies(params.get("studies")))


CANDLE_TYPES = ("candles", "heikin_ashi")


def candle_type(params: QueryDict) -> str:
    """``type`` of ``/api/candles``: ``candles`` (default) or ``heikin_ashi`` (issue 12)."""
    raw = params.getlist("type")
    if len(raw) > 1:
        raise BadRequest("type given more than once")
    kind = raw[0] if raw and raw[0] != "" else "candles"
    if kind not in CANDLE_TYPES:
        raise BadRequest(f"type must be one of {', '.join(CANDLE_TYPES)}")
    return kind


@access.api_view()
def api_candles(request: HttpRequest) -> HttpResponse:
    """``GET /api/candles?symbol=&tf=[&from=][&to=][&limit=][&studies=][&type=]``: ascending
    candles (with ``type=heikin_ashi`` as Heikin-Ashi candles, anchored on the first stored
    bar: market.core.heikin_ashi), and with ``studies`` each study's values for them (issue
    11; the studies are always of the real candles)."""
    conf = market()
    try:
        ticker, tf, start, end, limit, studies = candles_query(request.GET, max_limit=conf.max_limit)
        kind = candle_type(request.GET)
    except BadRequest as exc:
        return json_response({"error": str(exc)}, status=400)
    symbol = selectors.symbol_get(ticker=ticker)
    if symbol is None:
        return json_response({"error": f"unknown symbol {ticker}"}, status=404)
    candles = selectors.candle_list(symbol=symbol, tf=tf, start=start, end=end, limit=limit)
    shown = selectors.candle_heikin_ashi(symbol=symbol, tf=tf, candles=candles) if kind == "heikin_ashi" else candles
    body: dict[str, Any] = {
        "symbol": symbol.ticker,
        "tf": tf.code,
        "candles": [c.as_dict() for c in shown],
    }
    if kind != "candles":  # only when asked, as studies: the plain body keeps its shape
        body["type"] = kind
    if studies is not None:
        body["studies"] = selectors.candle_studies(symbol=symbol, tf=tf, candles=candles, studies=studies)
    # The exchange's time zone, for scripts that index by local time (the body keeps its shape).
    return json_response(body, X_Exchange_Timezone=conf.sessions.tz_name(symbol.exchange))


@access.api_view()
def api_symbols(request: HttpRequest) -> HttpResponse:
    """``GET /api/symbols?q=``: search and autocomplete."""
    query = "".join(ch for ch in request.GET.get("q", "")[:64] if ch.isprintable())
    return json_response({"symbols": selectors.symbol_search(query=query)})


@access.api_view(require_read=False)
def api_session(request: HttpRequest) -> HttpResponse:
    """``GET /api/session``: may this browser or token read? Open to all, so a page whose
    socket handshake failed can tell "signed out" from "server down" (market.web.access)."""
    return json_response(access.session_info(request))


def symbol_config(symbol: Any) -> dict[str, Any]:
    """What a chart (the chart page, a layout's pane) knows of its symbol: ticker, name,
    exchange, its time zone and regular session."""
    conf = market()
    session = selectors.session_for(symbol.exchange)  # special sessions (calendar overrides) included
    return {
        "symbol": symbol.ticker,
        "name": symbol.name,
        "exchange": symbol.exchange,
        "tz": conf.sessions.tz_name(symbol.exchange),
        # Regular session (exchange-local HH:MM) for the countdown and "market closed";
        # null: the exchange trades round the clock.
        "session": None if session.round_the_clock or session.close is None else {
            "tz": session.tz, "open": session.open.strftime("%H:%M"), "close": session.close.strftime("%H:%M"),
        },
    }


@access.page_view
def chart(request: HttpRequest, ticker: str | None = None) -> HttpResponse:
    """The chart page, with its history rendered in (no second round trip)."""
    symbols = selectors.symbol_list(active=True)
    if ticker is None:
        if not symbols:
            return render(request, "market/empty.html", status=200)
        symbol = symbols[0]
    else:
        symbol = selectors.symbol_get(ticker=ticker) if is_ticker(ticker) else None
        if symbol is None:
            return not_found(request, ticker)
    asked = request.GET.get("tf")
    try:
        tf = _timeframe(asked)
        tf_note = None
    except BadRequest:
        tf = Timeframe.parse(DEFAULT_TF)
        tf_note = f"{asked[:16]} is not a timeframe; showing {tf.code}"
    candles = selectors.candle_list(symbol=symbol, tf=tf)
    config = {
        **symbol_config(symbol),
        "tf": tf.code,
        # The asked-for tf was not one: the page says so and corrects its URL.
        "tf_note": tf_note,
        "timeframes": list(CODES),
        # The oldest stored candle per timeframe (null: none): the range buttons that
        # could show no more than a shorter one are disabled.
        "history_start": selectors.candle_first_times(symbol=symbol),
        "symbols": [{"ticker": s.ticker, "name": s.name} for s in symbols],
        "candles": [c.as_dict() for c in candles],
        "ws_path": "/ws/market/",
        "api_candles": "/api/candles",
        "api_symbols": "/api/symbols",
        "api_markers": "/api/markers",
        "api_session": "/api/session",
        # Without public access a failed handshake may be a refusal: the page asks api_session.
        "sign_in_required": not access.public_access(),
    }
    return render(request, "market/chart.html",
                  {"chart_config": config, "symbol": symbol, "tf": tf.code, "tf_note": tf_note})


MAX_SUGGESTIONS = 8


def not_found(request: HttpRequest, ticker: str) -> HttpResponse:
    """``/chart/<unknown>/``: a 404 in the site's look, with the symbol search and the
    closest symbols (the search's own ranking, on the whole ticker, then its bare part),
    or the symbols there are when nothing is close. Rendered here, so never Django's
    debug page."""
    shown = "".join(ch for ch in ticker[:64] if ch.isprintable())
    bare = shown.split(":", 1)[-1].split("-", 1)[0]
    suggestions: list[dict[str, Any]] = []
    for query in dict.fromkeys(q for q in (shown, bare) if q.strip()):
        suggestions = selectors.symbol_search(query=query, limit=MAX_SUGGESTIONS)
        if suggestions:
            break
    close = bool(suggestions)
    if not close:
        suggestions = selectors.symbol_search(query="", limit=MAX_SUGGESTIONS)
    context = {"ticker": shown, "suggestions": suggestions, "close": close,
               "search_config": {"api_symbols": "/api/symbols", "chart_path": "/chart/"}}
    return render(request, "market/not_found.html", context, status=404)
