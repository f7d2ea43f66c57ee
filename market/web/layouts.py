"""Layouts (issue 12): ``/api/layouts`` and the grid page ``/layout/<id>/``, ``/layout/``.

The API has the conventions of ``/api/drawings``: a JSON body of at most ``MAX_BODY``
bytes, errors ``{"error": "<field>: …"}``, a session (CSRF-checked) or a bearer token,
which writes only with the ``drawings`` scope; another user's layout is a 404. A spec's
unknown symbols are refused here (the pure check, ``market.core.layouts``, cannot know them).

The page renders each pane's history in, as the chart page does. ``/layout/`` reopens the
signed-in user's last opened layout; a visitor (or a user without one) gets an unsaved
grid, which the page keeps in localStorage.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from market import selectors, services
from market.core.layouts import GRIDS, LINK_GROUPS, TYPES, LayoutError, parse_spec, symbols_of
from market.core.timeframes import CODES, Timeframe
from market.web import access
from market.web.drawings import SCOPE
from market.web.responses import json_body, json_response
from market.web.views import symbol_config

FIELDS = {"name", "spec"}
MAX_BODY = 16_384

layouts_view = access.scoped_view(SCOPE)


def _body(request: HttpRequest) -> dict[str, Any] | HttpResponse:
    body = json_body(request, max_bytes=MAX_BODY)
    if isinstance(body, HttpResponse):
        return body
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return json_response({"error": f"{unknown[0]}: unknown field (fields: name, spec)"}, 400)
    return body


def _unknown_symbol(spec: Any) -> HttpResponse | None:
    """A 400 naming the first chart whose symbol, or a symbol it compares, the database
    does not know (a saved layout would otherwise open on an overlay that cannot load)."""
    try:
        parsed = parse_spec(spec)
    except LayoutError as exc:
        return json_response({"error": str(exc)}, 400)
    known = selectors.symbols_known(tickers=symbols_of(parsed))
    for i, chart in enumerate(parsed["charts"]):
        if chart["symbol"] not in known:
            return json_response({"error": f"spec.charts[{i}].symbol: unknown symbol {chart['symbol']}"}, 400)
        for j, ticker in enumerate(chart.get("compare", ())):
            if ticker not in known:
                return json_response({"error": f"spec.charts[{i}].compare[{j}]: unknown symbol {ticker}"}, 400)
    return None


def _refused(exc: LayoutError) -> HttpResponse:
    status = 409 if isinstance(exc, (services.LayoutQuotaError, services.LayoutNameTaken)) else 400
    return json_response({"error": str(exc)}, status)


def _create(request: HttpRequest) -> HttpResponse:
    body = _body(request)
    if isinstance(body, HttpResponse):
        return body
    for name in ("name", "spec"):
        if name not in body:
            return json_response({"error": f"{name}: required"}, 400)
    refused = _unknown_symbol(body["spec"])
    if refused is not None:
        return refused
    try:
        layout = services.layout_create(owner=request.user, name=body["name"], spec=body["spec"])
    except LayoutError as exc:
        return _refused(exc)
    return json_response(selectors.layout_as_dict(layout), 201)


@layouts_view
def api_layouts(request: HttpRequest) -> HttpResponse:
    """``GET``: the user's layouts (by name); ``POST {name, spec}``."""
    if request.method == "POST":
        return _create(request)
    if request.method not in access.READ_METHODS:
        return json_response({"error": "use GET or POST"}, 405, Allow="GET, HEAD, POST")
    layouts = selectors.layout_list(owner=request.user)
    return json_response({"layouts": [selectors.layout_as_dict(x) for x in layouts]})


@layouts_view
def api_layout(request: HttpRequest, pk: int) -> HttpResponse:
    """``GET``, ``PATCH {name?, spec?}`` (a spec is replaced whole), ``DELETE``."""
    layout = selectors.layout_get(owner=request.user, pk=pk)
    if layout is None:
        return json_response({"error": f"no layout {pk}"}, 404)
    if request.method == "DELETE":
        services.layout_delete(layout=layout)
        return HttpResponse(status=204)
    if request.method == "PATCH":
        body = _body(request)
        if isinstance(body, HttpResponse):
            return body
        if not body:
            return json_response({"error": "name: PATCH takes name and/or spec"}, 400)
        if "spec" in body:
            refused = _unknown_symbol(body["spec"])
            if refused is not None:
                return refused
        try:
            services.layout_update(layout=layout, name=body.get("name"), spec=body.get("spec"))
        except LayoutError as exc:
            return _refused(exc)
        return json_response(selectors.layout_as_dict(layout))
    if request.method not in access.READ_METHODS:
        return json_response({"error": "use GET, PATCH or DELETE"}, 405, Allow="GET, HEAD, PATCH, DELETE")
    return json_response(selectors.layout_as_dict(layout))


# ---------------------------------------------------------------------- the grid page

def _pane(chart: dict[str, Any]) -> dict[str, Any]:
    """One pane's page data: its symbol's config and history (none for an unknown symbol)."""
    symbol = selectors.symbol_get(ticker=chart["symbol"])
    if symbol is None:
        return {"symbol": chart["symbol"], "missing": True, "candles": []}
    candles = selectors.candle_list(symbol=symbol, tf=Timeframe.parse(chart["tf"]))
    return {**symbol_config(symbol), "candles": [c.as_dict() for c in candles]}


def _render(request: HttpRequest, layout: Any) -> HttpResponse:
    signed_in = access.user_is_reader(request.user)
    symbols = selectors.symbol_list(active=True)
    config: dict[str, Any] = {
        "layout": selectors.layout_as_dict(layout) if layout is not None else None,
        # Server-rendered history per chart of the layout (null: the panes fetch it).
        "panes": [_pane(c) for c in layout.spec["charts"]] if layout is not None else None,
        "signed_in": signed_in,
        "timeframes": list(CODES),
        "grids": list(GRIDS),
        "types": list(TYPES),
        "link_groups": list(LINK_GROUPS),
        "symbols": [{"ticker": s.ticker, "name": s.name} for s in symbols],
        "ws_path": "/ws/market/",
        "api_candles": "/api/candles",
        "api_symbols": "/api/symbols",
        "api_markers": "/api/markers",
        "api_session": "/api/session",
        "api_layouts": "/api/layouts",
        "sign_in_required": not access.public_access(),
    }
    return render(request, "market/layout.html", {"layout_config": config, "layout": layout})


@access.page_view
def layout_page(request: HttpRequest, pk: int) -> HttpResponse:
    """``/layout/<id>/``: the user's layout (someone else's, or a visitor's ask, is a 404)."""
    layout = selectors.layout_get(owner=request.user, pk=pk) if access.user_is_reader(request.user) else None
    if layout is None:
        return render(request, "market/layout_missing.html", {"pk": pk}, status=404)
    services.layout_opened(layout=layout)
    return _render(request, layout)


@access.page_view
def layout_last(request: HttpRequest) -> HttpResponse:
    """``/layout/``: the signed-in user's last opened layout, else an unsaved grid."""
    if access.user_is_reader(request.user):
        layout = selectors.layout_last(owner=request.user)
        if layout is not None:
            return redirect("layout", pk=layout.pk)
    return _render(request, None)
