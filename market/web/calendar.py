"""``GET /api/market/status``: is an exchange open, and if not why and until when.

Answers from the exchange calendar (``market.core.calendar``: the holidays library plus
the admin's overrides); the chart's badge says "market closed, opens ..." from it.
"""

from __future__ import annotations

import math
import re
import time

from django.http import HttpRequest, HttpResponse

from market import selectors
from market.web import access
from market.web.responses import json_response

CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
MAX_AT = 4102444800  # 2100-01-01: the holiday calendars end there


@access.api_view()
def api_market_status(request: HttpRequest) -> HttpResponse:
    """``?exchange=NSE[&at=EPOCH]`` -> ``{"exchange", "open", "session": {"open", "close"} | null,
    "next_open", "reason", "holiday"}`` (epoch seconds UTC); a bad exchange or ``at`` is a 400."""
    code = request.GET.get("exchange", "")
    if not CODE.match(code):
        return json_response({"error": "exchange must be a code such as NSE, BSE, MCX or US"}, status=400)
    code = code.upper()
    raw_at = request.GET.get("at")
    if raw_at is None or raw_at == "":
        at = time.time()
    else:
        try:
            at = float(raw_at)
        except ValueError:
            at = math.nan
        if not (math.isfinite(at) and 0 <= at < MAX_AT):
            return json_response({"error": "at must be epoch seconds (UTC) before 2100"}, status=400)
    calendar = selectors.calendar_get()
    if not (calendar.knows(code) or selectors.exchange_known(code=code)):
        return json_response({"error": f"unknown exchange {code!r}"}, status=400)
    return json_response(calendar.status(code, at).as_dict())
