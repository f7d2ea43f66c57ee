"""``/pulse/``: the Market Pulse page; its data arrives over /ws/pulse/ (market.pulse.consumers)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from market.web import access
from market.conf import pulse_settings
from market.selectors import pulse_event_list_recent, symbol_list

CLASS_ORDER = ["equity", "index", "currency", "crypto", "future", "option", "other"]


@access.page_view
def pulse(request: HttpRequest) -> HttpResponse:
    raw = pulse_settings()
    config = {
        "ws_path": "/ws/pulse/",
        "events": pulse_event_list_recent(limit=int(raw["RECENT_EVENTS"])),
        "class_order": CLASS_ORDER,
        "chart_path": "/chart/",
        # Prices to each symbol's tick size, as on its chart.
        "price_decimals": {s.ticker: price_decimals(s.tick_size) for s in symbol_list(active=True)},
        "api_session": "/api/session",
        # Without public access a failed handshake may be a refusal: the page asks api_session.
        "sign_in_required": not access.public_access(),
    }
    return render(request, "pulse/pulse.html", {"pulse_config": config})


def price_decimals(tick_size: Decimal | float | str | None) -> int:
    """The decimals a price of this tick size is shown with: the tick's own (0.05: 2,
    0.0001: 4), at least 2 as the chart's price scale, at most 8."""
    try:
        exponent = Decimal(str(tick_size)).normalize().as_tuple().exponent
    except (InvalidOperation, ValueError):
        return 2
    if not isinstance(exponent, int):  # NaN, infinity
        return 2
    return min(8, max(2, -exponent))
