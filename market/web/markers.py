"""``/api/markers``: marks a strategy posts onto a symbol's chart (issue 16).

Anyone who may read sees every marker of a symbol (they are on every open chart of it);
posting and deleting need a signed-in user or a token with the ``markers`` scope, and
only a marker's author deletes it. Each write is told to the symbol's open charts.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from market import selectors, services
from market.core.markers import MarkerError, parse_marker
from market.live.broadcast import marker_notify
from market.web import access
from market.web.responses import json_body, json_response
from market.web.validation import is_ticker
from market.web.views import BadRequest, int_param

MAX_BODY = 4096
markers_view = access.scoped_view("markers", public_reads=True)


def _symbol(ticker: object) -> Any:
    if not isinstance(ticker, str) or not is_ticker(ticker.strip()):
        raise MarkerError("symbol: must be a ticker such as NSE:SBIN-EQ")
    symbol = selectors.symbol_get(ticker=ticker.strip())
    if symbol is None:
        raise MarkerError(f"symbol: unknown symbol {ticker.strip()}")
    return symbol


def _list(request: HttpRequest) -> HttpResponse:
    try:
        symbol = _symbol(request.GET.get("symbol", ""))
        start = int_param(request.GET, "from", low=0, high=10**10)
        end = int_param(request.GET, "to", low=0, high=10**10)
    except (MarkerError, BadRequest) as exc:
        return json_response({"error": str(exc)}, 400)
    markers = selectors.marker_list(symbol=symbol, start=start, end=end)
    return json_response({"symbol": symbol.ticker, "markers": markers})


def _create(request: HttpRequest) -> HttpResponse:
    body = json_body(request, max_bytes=MAX_BODY)
    if isinstance(body, HttpResponse):
        return body
    try:
        spec = parse_marker(body)
        symbol = _symbol(spec.symbol)
        marker = services.marker_create(user=request.user, symbol=symbol, spec=spec)
    except MarkerError as exc:
        return json_response({"error": str(exc)}, 400)
    except services.MarkerQuotaError as exc:
        return json_response({"error": str(exc)}, 409)
    data = selectors.marker_as_dict(marker)  # its symbol and user are the objects just given
    marker_notify(ticker=symbol.ticker, op="upsert", marker=data)
    return json_response(data, 201)


@markers_view
def api_markers(request: HttpRequest) -> HttpResponse:
    """``GET /api/markers?symbol=[&from=][&to=]`` | ``POST /api/markers``."""
    if request.method in access.READ_METHODS:
        return _list(request)
    if request.method == "POST":
        return _create(request)
    return json_response({"error": "use GET or POST"}, 405, Allow="GET, HEAD, POST")


@markers_view
def api_marker(request: HttpRequest, pk: int) -> HttpResponse:
    """``GET /api/markers/<id>`` | ``DELETE`` (its author only)."""
    marker = selectors.marker_get(pk=pk)
    if marker is None:
        return json_response({"error": f"no marker {pk}"}, 404)
    if request.method in access.READ_METHODS:
        return json_response(selectors.marker_as_dict(marker))
    if request.method != "DELETE":
        return json_response({"error": "use GET or DELETE"}, 405, Allow="GET, HEAD, DELETE")
    if marker.user_id != request.user.pk:
        return json_response({"error": "only its author may delete a marker"}, 403)
    data = selectors.marker_as_dict(marker)
    services.marker_delete(marker=marker)
    marker_notify(ticker=data["symbol"], op="delete", marker=data)
    return json_response(data)
