"""``/api/channels``: the signed-in user's (or token's) notification channels (issue 13).

A channel is an apprise URL or an e-mail address an alert's events are also sent to
(``market.feed.notify``). An apprise URL usually carries a token, so it is shown by its
scheme only, here and in every answer, once created."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from market import selectors, services
from market.feed.notify import channel_error
from market.web import access
from market.web.alerts import read_body
from market.web.responses import json_response

FIELDS = {"name", "kind", "target"}
MAX_CHANNELS = 50


@access.alerts_view
def api_channels(request: HttpRequest) -> HttpResponse:
    """``GET``: the user's channels; ``POST {"name", "kind": "apprise"|"email", "target"}``."""
    if request.method == "POST":
        body = read_body(request)
        if isinstance(body, HttpResponse):
            return body
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            return json_response({"error": f"unknown field {unknown[0]!r}"}, 400)
        name, kind, target = body.get("name", ""), body.get("kind"), body.get("target")
        if not isinstance(name, str):
            return json_response({"error": "name: must be a string"}, 400)
        refused = channel_error(kind, target)  # type: ignore[arg-type]
        if refused:
            return json_response({"error": refused}, 400)
        if len(selectors.notify_channel_list(user=request.user)) >= MAX_CHANNELS:
            return json_response({"error": f"quota: at most {MAX_CHANNELS} channels per user"}, 409)
        channel = services.notify_channel_create(user=request.user, name=name, kind=kind, target=target)
        return json_response(selectors.notify_channel_as_dict(channel), 201)
    if request.method not in access.READ_METHODS:
        return json_response({"error": "use GET or POST"}, 405, Allow="GET, HEAD, POST")
    return json_response({"channels": [selectors.notify_channel_as_dict(c)
                                       for c in selectors.notify_channel_list(user=request.user)]})


@access.alerts_view
def api_channel(request: HttpRequest, pk: int) -> HttpResponse:
    """``GET`` or ``DELETE`` one channel."""
    channel = selectors.notify_channel_get(user=request.user, pk=pk)
    if channel is None:
        return json_response({"error": f"no channel {pk}"}, 404)
    if request.method == "DELETE":
        services.notify_channel_delete(channel=channel)
        return HttpResponse(status=204)
    if request.method not in access.READ_METHODS:
        return json_response({"error": "use GET or DELETE"}, 405, Allow="GET, HEAD, DELETE")
    return json_response(selectors.notify_channel_as_dict(channel))
