"""Alert events to a user's other channels (issue 13): apprise URLs and e-mail.

Sent from the webhooks' delivery thread and pool (``market.feed.webhooks.deliver_due``),
retried with the same backoff; each (event, channel) is one ``NotifyDelivery`` row, so an
event reaches a channel until it is delivered once (a crash between sending and recording
the outcome sends again; the event id is in every message). An apprise URL usually
carries a token: it is never logged or shown, only its scheme.

Private targets: as for webhooks, unless ``TICKCHART_WEBHOOK_ALLOW_PRIVATE`` a channel
whose host is or resolves to a loopback/private/reserved address is refused, at creation
and before each send. Apprise makes its own connections, so unlike a webhook the address
is not pinned between the check and the send.
"""

from __future__ import annotations

import socket
from typing import Any

import apprise
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from market.conf import alerts_conf
from market.feed.targets import TargetError, address_blocked, ip_literal

KINDS = ("apprise", "email")


def _apprise_plugin(target: str) -> Any:
    plugin = apprise.Apprise.instantiate(target, suppress_exceptions=True)
    if plugin is None:
        raise TargetError("not a URL apprise can send to (see https://github.com/caronc/apprise/wiki)")
    return plugin


def _check_host(host: str | None, *, allow_private: bool) -> None:
    """Refuse a host that is, or resolves to, an address we may not reach. A name that
    does not resolve is left to the service (a token in the host part, e.g. ``tgram://``)."""
    if allow_private or not host:
        return
    if host.rstrip(".").lower() in ("localhost", "localhost.localdomain"):
        raise TargetError("a loopback host; refused")
    literal = ip_literal(host.strip("[]"))
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            return
        addresses = [ip_literal(info[4][0].split("%")[0]) for info in infos]
    if any(ip is not None and address_blocked(ip) for ip in addresses):
        raise TargetError("a private, loopback or reserved address; refused")


def channel_error(kind: str, target: str, *, allow_private: bool | None = None) -> str | None:
    """Why ``target`` may not be a ``kind`` channel (None: it may); never echoes the target."""
    allow = alerts_conf().webhook_allow_private if allow_private is None else allow_private
    if kind not in KINDS:
        return f"kind: must be one of {', '.join(KINDS)}"
    if not isinstance(target, str) or not target.strip() or len(target) > 1000:
        return "target: required (at most 1000 characters)"
    if kind == "email":
        try:
            validate_email(target)
        except ValidationError:
            return "target: not an e-mail address"
        return None
    try:
        plugin = _apprise_plugin(target)
        _check_host(getattr(plugin, "host", None), allow_private=allow)
    except TargetError as exc:
        return f"target: {exc}"
    return None


def subject(row: dict[str, Any]) -> str:
    return f"TickChart alert: {row['symbol']}" + (f" · {row['message']}" if row["message"] else "")


def text(row: dict[str, Any]) -> str:
    return (f"{row['symbol']} ({row['tf']}) at {row['value']:g}, compared with {row['other']:g}.\n"
            f"{row['message']}\n\nevent {row['id']} (alert {row['alert']}), exchange time {row['time']:g}\n")


def send(row: dict[str, Any], *, allow_private: bool | None = None) -> None:
    """Send one event (a ``selectors.notify_delivery_due`` row) to its channel; raises on failure."""
    allow = alerts_conf().webhook_allow_private if allow_private is None else allow_private
    if row["kind"] == "email":
        message = mail.EmailMessage(subject(row), text(row), to=[row["target"]],
                                    headers={"X-TickChart-Event": row["id"]})
        if message.send() != 1:
            raise OSError("the mail backend did not send it")
        return
    plugin = _apprise_plugin(row["target"])
    _check_host(getattr(plugin, "host", None), allow_private=allow)
    sender = apprise.Apprise()
    sender.add(plugin)
    if not sender.notify(title=subject(row), body=text(row)):
        raise OSError("the apprise service did not accept it")
