"""``/pulse/``: the Market Pulse page; its data arrives over /ws/pulse/ (market.pulse.consumers)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from market.web import access
from market.conf import pulse_settings
from market.selectors import pulse_event_list_recent

CLASS_ORDER = ["equity", "index", "currency", "crypto", "future", "option", "other"]


@access.page_view
def pulse(request: HttpRequest) -> HttpResponse:
    raw = pulse_settings()
    config = {
        "ws_path": "/ws/pulse/",
        "events": pulse_event_list_recent(limit=int(raw["RECENT_EVENTS"])),
        "class_order": CLASS_ORDER,
        "chart_path": "/chart/",
        "api_session": "/api/session",
        # Without public access a failed handshake may be a refusal: the page asks api_session.
        "sign_in_required": not access.public_access(),
    }
    return render(request, "pulse/pulse.html", {"pulse_config": config})
