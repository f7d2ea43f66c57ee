"""Webhook delivery of alert events (issue 13): signed POSTs, retried with backoff.

``deliver_due`` sends every due event once: ``X-TickChart-Signature`` signs the body with
the alert's secret and ``Idempotency-Key`` is the event id, so a receiver can drop
repeats (a crash between sending and recording the outcome sends again). A failure is
retried after ``core.alerts.BACKOFF`` (over half an hour in all), then marked failed.

A webhook URL is the user's, so it is treated as hostile (server-side request forgery):

- only ``http``/``https``; unless ``TICKCHART_WEBHOOK_ALLOW_PRIVATE`` (default: DEBUG),
  a host that is or resolves to a loopback, private, link-local, multicast or reserved
  address is refused, at creation (``target_error``) and again at every send, where the
  request goes to the very address that was checked (no second lookup a rebinding DNS
  server could answer differently);
- redirects are never followed (a 3xx is a failure), at most ``MAX_RESPONSE`` bytes of an
  answer are read, and every attempt has a hard deadline (``ATTEMPT_SECONDS``, a timer
  closes the socket), so a slow or endless receiver cannot hold the thread;
- sends run on a small pool (``WORKERS``), one host's events one after the other; a host
  that failed is skipped for the rest of the round, and no send starts once the round has
  run ``ROUND_SECONDS``: a bad receiver delays nobody else for long.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from market import selectors, services
from market.conf import alerts_conf
from market.core.alerts import webhook_body, webhook_signature

logger = logging.getLogger("market.feed")

CONNECT_TIMEOUT = 5.0   # seconds per socket operation
ATTEMPT_SECONDS = 10.0  # the whole attempt: connect, send, headers and body
MAX_RESPONSE = 65_536
WORKERS = 4
ROUND_SECONDS = 15.0


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


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to: the first one ``host`` resolves to that may be reached."""
    literal = _literal(host)
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
        if _literal(target.host) is not None or not allow:
            resolve(target.host, target.port, allow_private=allow)
    except TargetError as exc:
        if "cannot resolve" in str(exc):
            return None
        return str(exc)
    return None


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address, whatever the name resolves to by now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool | None = None) -> None:
    """POST once, within ``ATTEMPT_SECONDS``; raises (``OSError``, ``TargetError``) on a
    refused target, a non-2xx answer (a redirect included), a timeout or a refused connection."""
    allow = alerts_conf().webhook_allow_private if allow_private is None else allow_private
    target = parse_target(url)
    address = resolve(target.host, target.port, allow_private=allow)
    cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = cls(target.host, target.port, address, CONNECT_TIMEOUT)
    expired = threading.Event()

    def cut() -> None:  # the hard deadline: unblocks whatever the attempt is waiting for
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(ATTEMPT_SECONDS, cut)
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(MAX_RESPONSE)  # and no more: the rest is dropped with the socket
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise TimeoutError(f"no answer within {ATTEMPT_SECONDS:g} s") from None
        raise OSError(str(exc) or type(exc).__name__) from None
    finally:
        timer.cancel()
        conn.close()
    if expired.is_set():
        raise TimeoutError(f"no answer within {ATTEMPT_SECONDS:g} s")
    if 300 <= status < 400:
        raise OSError(f"HTTP {status}: redirects are not followed")
    if not 200 <= status < 300:
        raise OSError(f"HTTP {status}")


def _webhook_send(row: dict[str, Any]) -> None:
    body = webhook_body(event_id=row["id"], alert=row["alert"], symbol=row["symbol"], tf=row["tf"],
                        time=row["time"], value=row["value"], message=row["message"], fired_at=row["fired_at"])
    headers = {"Content-Type": "application/json", "Idempotency-Key": row["id"],
               "X-TickChart-Signature": webhook_signature(body, row["secret"])}
    post(row["webhook"], body, headers)


def _host(url: str) -> str:
    """A receiver: host and port (one chain of sends each)."""
    try:
        return urlsplit(url).netloc.lower() or url
    except ValueError:
        return url


def send_round(jobs: list[tuple[str, Callable[[], None]]]) -> list[tuple[int, BaseException | None]]:
    """Run ``(host, send)`` jobs on the pool, a host's in order, none after that host failed
    or the round ran out of time; returns ``(job index, error or None)`` for the jobs that ran."""
    by_host: dict[str, list[int]] = {}
    for i, (host, _) in enumerate(jobs):
        by_host.setdefault(host, []).append(i)
    outcomes: list[tuple[int, BaseException | None]] = []
    lock = threading.Lock()
    ends = time.monotonic() + ROUND_SECONDS

    def chain(indexes: list[int]) -> None:
        for i in indexes:
            if time.monotonic() >= ends:
                return
            try:
                jobs[i][1]()
            except Exception as exc:  # noqa: BLE001 - recorded as the attempt's error
                with lock:
                    outcomes.append((i, exc))
                return  # this host is failing: its other events wait for the next round
            with lock:
                outcomes.append((i, None))

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="webhook") as pool:
        list(pool.map(chain, by_host.values()))
    return outcomes


def deliver_due(*, now: float | None = None) -> int:
    """Send the due events; returns how many were delivered. Outcomes are recorded here, in
    the caller's thread (the pool's threads only talk HTTP)."""
    now = time.time() if now is None else now
    rows = selectors.alert_event_due(now=now)
    jobs = [(_host(row["webhook"]), (lambda row=row: _webhook_send(row))) for row in rows]
    delivered = 0
    for i, error in sorted(send_round(jobs), key=lambda o: o[0]):
        row = rows[i]
        if error is not None:
            logger.warning("webhook for alert event %s failed: %s", row["id"], error)
            services.alert_event_attempted(event_id=row["id"], ok=False, error=str(error), now=now)
            continue
        services.alert_event_attempted(event_id=row["id"], ok=True, now=now)
        delivered += 1
    return delivered
