"""The JSON responses of the HTTP edge (API, access refusals, rate limits, health checks)."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse


def json_response(payload: Any, status: int = 200, **headers: str) -> HttpResponse:
    """``payload`` as ``application/json``; ``headers`` by keyword, ``_`` for ``-``
    (``Retry_After="3"`` sets ``Retry-After``)."""
    response = HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def json_body(request: Any, *, max_bytes: int) -> dict[str, Any] | HttpResponse:
    """A write's JSON object body, or the error response to send instead (413, 400)."""
    if len(request.body) > max_bytes:
        return json_response({"error": f"body too large (at most {max_bytes} bytes)"}, 413)
    try:
        body = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError:
        return json_response({"error": "body must be JSON"}, 400)
    if not isinstance(body, dict):
        return json_response({"error": "body must be a JSON object"}, 400)
    return body
