"""Is a user's URL one we may send to? (issue 13: webhooks and notification channels).

A URL an alert names is the user's, so it is treated as hostile (server-side request
forgery): only ``http``/``https``, and unless ``TICKCHART_WEBHOOK_ALLOW_PRIVATE`` (default:
DEBUG) no host that is or resolves to a loopback, private, link-local, multicast or
reserved address. ``resolve`` returns the checked address, for the sender to connect to.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from market.conf import alerts_conf


class TargetError(ValueError):
    """A URL we will not send to; the message says why (safe to show its owner)."""


def address_blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT) …:
    anything not globally routable."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local or not ip.is_global


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str


def parse_target(url: str) -> Target:
    """The URL's parts; ``TargetError`` unless it is a plain http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise TargetError("must be an http(s) URL")
    if not parts.hostname:
        raise TargetError("must name a host")
    if parts.username or parts.password:
        raise TargetError("must not carry a user name or password")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to: the first one ``host`` resolves to that may be reached."""
    literal = ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise TargetError(f"cannot resolve {host}: {exc}") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in addresses:
        if allow_private or not address_blocked(ip):
            return str(ip)
    raise TargetError(f"{host} is a private, loopback or reserved address; refused")


def target_error(url: str, *, allow_private: bool | None = None) -> str | None:
    """Why ``url`` may not be a webhook (None: it may). A name that does not resolve yet is
    accepted here; it is checked again at every send."""
    allow = alerts_conf().webhook_allow_private if allow_private is None else allow_private
    try:
        target = parse_target(url)
        if not allow and target.host.rstrip(".").lower() in ("localhost", "localhost.localdomain"):
            raise TargetError(f"{target.host} is a loopback address; refused")
        if ip_literal(target.host) is not None or not allow:
            resolve(target.host, target.port, allow_private=allow)
    except TargetError as exc:
        if "cannot resolve" in str(exc):
            return None
        return str(exc)
    return None
