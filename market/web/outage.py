"""A database outage answers 503 and says so, instead of Django's 500 error page.

The feed keeps publishing live candles through an outage (docs/durability.md), but a page
load or a history request needs the database. A browser that reloads or reconnects then
gets a short page that names the state and reloads itself (``Retry-After``), and the API a
JSON error with the same status; both are logged once per request at WARNING.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.deprecation import MiddlewareMixin

from market.web.responses import json_response

logger = logging.getLogger("market.web")

RETRY_AFTER = 10  # seconds: what the page waits before it reloads itself


class DatabaseOutageMiddleware(MiddlewareMixin):
    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DatabaseError):
            return None
        return unavailable(request, exception)


def unavailable(request: HttpRequest, exception: DatabaseError) -> HttpResponse:
    """The 503 for ``request`` (the API's own exception handler answers with it too, since
    django-ninja catches exceptions before middleware sees them)."""
    logger.warning("database unavailable for %s: %s", request.path, exception)
    if request.path.startswith("/api/"):
        return json_response({"error": "database unavailable, retry shortly"}, 503,
                             Retry_After=str(RETRY_AFTER))
    body = render_to_string("market/unavailable.html", {"retry": RETRY_AFTER})  # no request: no session reads
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    return response
