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
