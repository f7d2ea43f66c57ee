"""``/api/drawings``: the signed-in user's (or token's) drawings on a symbol (issue 12).

Same conventions as ``/api/alerts``: a JSON body of at most ``MAX_BODY`` bytes, errors
``{"error": "<field>: …"}``, a session (CSRF-checked) or a bearer token, which writes only
with the ``drawings`` scope. Visitors get 401: the page keeps their drawings in the browser.
Every write tells the user's open pages (``market.live.broadcast.user_notify``, a ``drawing`` frame).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from market import selectors, services
from market.core.drawings import DrawingError
from market.live.broadcast import user_notify
from market.web import access
from market.web.alerts import tell_alert
from market.web.responses import json_body, json_response
from market.web.validation import is_ticker

FIELDS = {"symbol", "kind", "points", "style"}
PATCH_FIELDS = {"points", "style"}
MAX_BODY = 16_384
SCOPE = "drawings"


drawings_view = access.scoped_view(SCOPE)


def _tell(drawing: Any, op: str) -> None:
    """The user's open pages (every tab) hear the change."""
    payload = {"op": op, "drawing": selectors.drawing_as_dict(drawing)}
    user_notify(user_id=drawing.user_id, kind="drawing", payload=payload)


def _body(request: HttpRequest, allowed: set[str]) -> dict[str, Any] | HttpResponse:
    body = json_body(request, max_bytes=MAX_BODY)
    if isinstance(body, HttpResponse):
        return body
    unknown = sorted(set(body) - allowed)
    if unknown:
        fields = ", ".join(sorted(allowed))
        return json_response({"error": f"{unknown[0]}: unknown field (fields: {fields})"}, 400)
    return body


def _symbol(value: object) -> str | HttpResponse:
    if value is None:
        return json_response({"error": "symbol: required"}, 400)
    if not is_ticker(value):
        return json_response({"error": "symbol: must be a ticker such as NSE:SBIN-EQ"}, 400)
    return str(value)


def _create(request: HttpRequest) -> HttpResponse:
    body = _body(request, FIELDS)
    if isinstance(body, HttpResponse):
        return body
    for name in ("symbol", "kind", "points"):
        if name not in body:
            return json_response({"error": f"{name}: required"}, 400)
    symbol = _symbol(body["symbol"])
    if isinstance(symbol, HttpResponse):
        return symbol
    if selectors.symbol_get(ticker=symbol) is None:
        return json_response({"error": f"symbol: unknown symbol {symbol}"}, 400)
    try:
        drawing = services.drawing_create(user=request.user, symbol=symbol, kind=body["kind"],
                                          points=body["points"], style=body.get("style"))
    except DrawingError as exc:
        return json_response({"error": str(exc)}, 400)
    _tell(drawing, "upsert")
    return json_response(selectors.drawing_as_dict(drawing), 201)


@drawings_view
def api_drawings(request: HttpRequest) -> HttpResponse:
    """``GET ?symbol=X``: the user's drawings on X; ``POST {symbol, kind, points, style}``."""
    if request.method == "POST":
        return _create(request)
    if request.method not in access.READ_METHODS:
        return json_response({"error": "use GET or POST"}, 405, Allow="GET, HEAD, POST")
    symbol = _symbol(request.GET.get("symbol"))
    if isinstance(symbol, HttpResponse):
        return symbol
    drawings = selectors.drawing_list(user=request.user, symbol=symbol)
    return json_response({"drawings": [selectors.drawing_as_dict(d) for d in drawings]})


@drawings_view
def api_drawing(request: HttpRequest, pk: int) -> HttpResponse:
    """``GET``, ``PATCH {points?, style?}`` (style keys merge), ``DELETE``; someone else's is a 404."""
    drawing = selectors.drawing_get(user=request.user, pk=pk)
    if drawing is None:
        return json_response({"error": f"no drawing {pk}"}, 404)
    if request.method == "DELETE":
        for alert in services.drawing_delete(drawing=drawing):
            tell_alert(alert, "upsert")  # disabled: its line went
        _tell(drawing, "delete")
        return HttpResponse(status=204)
    if request.method == "PATCH":
        body = _body(request, PATCH_FIELDS)
        if isinstance(body, HttpResponse):
            return body
        if not body:
            return json_response({"error": "points: PATCH takes points and/or style"}, 400)
        try:
            services.drawing_update(drawing=drawing, points=body.get("points"), style=body.get("style"))
        except DrawingError as exc:
            return json_response({"error": str(exc)}, 400)
        _tell(drawing, "upsert")
        return json_response(selectors.drawing_as_dict(drawing))
    if request.method not in access.READ_METHODS:
        return json_response({"error": "use GET, PATCH or DELETE"}, 405, Allow="GET, HEAD, PATCH, DELETE")
    return json_response(selectors.drawing_as_dict(drawing))
