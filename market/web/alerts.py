"""``/api/alerts``: the signed-in user's (or token's) alerts and their events (issue 13).

Every change is also told to the owner's open pages as an ``alert`` frame
(``{"type": "alert", "op": "upsert" | "delete", "alert": {...}}``, after the commit), so
each tab's alerts panel stays current."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from market import selectors, services
from market.conf import alerts_conf
from market.core.alerts import AlertError
from market.feed.targets import target_error
from market.live.broadcast import user_notify
from market.web import access
from market.web.responses import json_body, json_response
from market.web.validation import is_ticker

FIELDS = {"symbol", "tf", "left", "op", "right", "trigger", "bars", "expires", "message", "webhook", "channels"}
MAX_BODY = 16_384


def read_body(request: HttpRequest) -> dict[str, Any] | HttpResponse:
    return json_body(request, max_bytes=MAX_BODY)


def _create(request: HttpRequest) -> HttpResponse:
    body = read_body(request)
    if isinstance(body, HttpResponse):
        return body
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        return json_response({"error": f"unknown field {unknown[0]!r}"}, 400)
    for name in ("symbol", "tf", "left", "op", "right"):
        if name not in body:
            return json_response({"error": f"{name}: required"}, 400)
    symbol = body["symbol"]
    if not isinstance(symbol, str) or not is_ticker(symbol):
        return json_response({"error": "symbol: must be a ticker such as NSE:SBIN-EQ"}, 400)
    if selectors.symbol_get(ticker=symbol) is None:
        return json_response({"error": f"symbol: unknown symbol {symbol}"}, 400)
    for name in ("message", "webhook"):
        if not isinstance(body.get(name, ""), str):
            return json_response({"error": f"{name}: must be a string"}, 400)
    webhook = body.get("webhook", "")
    if webhook and not webhook.startswith(("https://", "http://")):
        return json_response({"error": "webhook: must be an http(s) URL"}, 400)
    refused = target_error(webhook) if webhook else None
    if refused:
        return json_response({"error": f"webhook: {refused}"}, 400)
    channels = _channels(request, body.get("channels", []))
    if isinstance(channels, HttpResponse):
        return channels
    quota = alerts_conf().quota
    if selectors.alert_count(user=request.user) >= quota:
        return json_response({"error": f"quota: at most {quota} alerts per user; delete some first"}, 409)
    try:
        alert = services.alert_create(
            user=request.user, symbol=symbol, tf=body["tf"], left=body["left"], op=body["op"],
            right=body["right"], trigger=body.get("trigger", "once"), bars=body.get("bars", 1),
            expires=body.get("expires"), message=body.get("message", ""), webhook=webhook)
    except AlertError as exc:
        return json_response({"error": str(exc)}, 400)
    if channels:
        services.alert_channels_set(alert=alert, channels=channels)
    tell_alert(alert, "upsert")
    return json_response(shown(alert), 201)


def _channels(request: HttpRequest, ids: Any) -> list[Any] | HttpResponse:
    """The user's own channels named by ``ids``."""
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return json_response({"error": "channels: must be a list of channel ids"}, 400)
    out = []
    for pk in dict.fromkeys(ids):
        channel = selectors.notify_channel_get(user=request.user, pk=pk)
        if channel is None:
            return json_response({"error": f"channels: no channel {pk}"}, 400)
        out.append(channel)
    return out


def shown(alert: Any, channels: list[int] | None = None) -> dict[str, Any]:
    """An alert as the API shows it: ``selectors.alert_as_dict`` and its channel ids."""
    if channels is None:
        channels = selectors.alert_channel_ids(alerts=[alert])[alert.id]
    return selectors.alert_as_dict(alert) | {"channels": channels}


def tell_alert(alert: Any, op: str) -> None:
    """The owner's open pages hear the change (the service has committed it); a deleted
    alert is told by its id and symbol only."""
    payload = shown(alert) if op == "upsert" else {"id": alert.id, "symbol": alert.symbol}
    user_notify(user_id=alert.user_id, kind="alert", payload={"op": op, "alert": payload})


@access.alerts_view
def api_alerts(request: HttpRequest) -> HttpResponse:
    """``GET``: the user's alerts; ``POST``: create one."""
    if request.method == "POST":
        return _create(request)
    if request.method not in access.READ_METHODS:
        return json_response({"error": "use GET or POST"}, 405, Allow="GET, HEAD, POST")
    alerts = selectors.alert_list(user=request.user)
    channels = selectors.alert_channel_ids(alerts=alerts)
    return json_response({"alerts": [shown(a, channels[a.id]) for a in alerts]})


@access.alerts_view
def api_alert(request: HttpRequest, pk: int) -> HttpResponse:
    """``GET``, ``PATCH {"status": "paused"|"active"}`` and/or ``{"channels": [ids]}``, ``DELETE``."""
    alert = selectors.alert_get(user=request.user, pk=pk)
    if alert is None:
        return json_response({"error": f"no alert {pk}"}, 404)
    if request.method == "DELETE":
        services.alert_delete(alert=alert)
        alert.id = pk  # Django clears it on delete
        tell_alert(alert, "delete")
        return HttpResponse(status=204)
    if request.method == "PATCH":
        body = read_body(request)
        if isinstance(body, HttpResponse):
            return body
        if "channels" in body:
            channels = _channels(request, body.pop("channels"))
            if isinstance(channels, HttpResponse):
                return channels
            services.alert_channels_set(alert=alert, channels=channels)
            if not body:
                tell_alert(alert, "upsert")
                return json_response(shown(alert))
        if set(body) != {"status"} or body["status"] not in ("paused", "active"):
            return json_response({"error": 'status: PATCH takes {"status": "paused" | "active"}'}, 400)
        if alert.status == "done":
            return json_response({"error": "status: the alert has fired and is done"}, 400)
        if alert.status == "disabled":
            return json_response({"error": f"status: the alert is disabled ({alert.reason})"}, 400)
        if body["status"] == "paused":
            services.alert_pause(alert=alert)
        else:
            services.alert_resume(alert=alert)
        tell_alert(alert, "upsert")
        return json_response(shown(alert))
    if request.method not in access.READ_METHODS:
        return json_response({"error": "use GET, PATCH or DELETE"}, 405, Allow="GET, HEAD, PATCH, DELETE")
    return json_response(shown(alert))


@access.alerts_view
def api_alert_events(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method not in access.READ_METHODS:
        return json_response({"error": "use GET"}, 405, Allow="GET, HEAD")
    alert = selectors.alert_get(user=request.user, pk=pk)
    if alert is None:
        return json_response({"error": f"no alert {pk}"}, 404)
    return json_response({"alert": alert.id, "events": selectors.alert_event_list(alert=alert)})
