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
import logging
import queue
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable
from urllib.parse import urlsplit

from market import selectors, services
from market.conf import alerts_conf
from market.core.alerts import webhook_body, webhook_signature
from market.feed.targets import parse_target, resolve

logger = logging.getLogger("market.feed")

CONNECT_TIMEOUT = 5.0   # seconds per socket operation
ATTEMPT_SECONDS = 10.0  # the whole attempt: connect, send, headers and body
MAX_RESPONSE = 65_536
WORKERS = 4
ROUND_SECONDS = 15.0


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
    """POST once, within ``ATTEMPT_SECONDS``; raises (``OSError``, ``targets.TargetError``) on a
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


def send_round(jobs: list[tuple[str, Callable[[], None]]],
               record: Callable[[int, BaseException | None], None] | None = None) -> list[tuple[int, BaseException | None]]:
    """Run ``(host, send)`` jobs on the pool, a host's in order, none after that host failed
    or the round ran out of time; returns ``(job index, error or None)`` for the jobs that ran.
    ``record`` is called with each outcome as soon as it is known, in the caller's thread,
    and a host's next send waits until it has been: a crash resends at most the one send
    per host that was in flight, not the whole round."""
    by_host: dict[str, list[int]] = {}
    for i, (host, _) in enumerate(jobs):
        by_host.setdefault(host, []).append(i)
    outcomes: list[tuple[int, BaseException | None]] = []
    known: queue.SimpleQueue[tuple[int, BaseException | None, threading.Event]] = queue.SimpleQueue()
    ends = time.monotonic() + ROUND_SECONDS

    def chain(indexes: list[int]) -> None:
        for i in indexes:
            if time.monotonic() >= ends:
                return
            error: BaseException | None = None
            try:
                jobs[i][1]()
            except Exception as exc:  # noqa: BLE001 - recorded as the attempt's error
                error = exc
            recorded = threading.Event()
            known.put((i, error, recorded))
            recorded.wait()  # the next send waits until this outcome is recorded
            if error is not None:
                return  # this host is failing: its other events wait for the next round

    def take(block: bool) -> None:
        try:
            i, error, recorded = known.get(timeout=0.05) if block else known.get_nowait()
        except queue.Empty:
            return
        outcomes.append((i, error))
        try:
            if record is not None:
                record(i, error)
        except Exception as exc:  # noqa: BLE001 - e.g. the database is down: raised after the round
            failures.append(exc)
        finally:
            recorded.set()

    failures: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="webhook") as pool:
        running = [pool.submit(chain, indexes) for indexes in by_host.values()]
        while not all(f.done() for f in running):
            take(block=True)
        for f in running:
            f.result()
    if failures:
        raise failures[0]
    return outcomes


def deliver_due(*, now: float | None = None) -> int:
    """Send the due webhooks and channel messages (``market.feed.notify``); returns how many
    were delivered. Outcomes are recorded here, in the caller's thread (the pool's threads
    only talk to the receivers)."""
    from market.feed import notify  # apprise is imported only by a process that delivers

    now = time.time() if now is None else now
    hooks = selectors.alert_event_due(now=now)
    channels = selectors.notify_delivery_due(now=now)
    jobs = [(_host(row["webhook"]), (lambda row=row: _webhook_send(row))) for row in hooks]
    jobs += [(f"channel {row['channel']}", (lambda row=row: notify.send(row))) for row in channels]
    delivered = 0

    def record(i: int, error: BaseException | None) -> None:
        nonlocal delivered
        if i < len(hooks):
            row = hooks[i]
            if error is not None:
                logger.warning("webhook for alert event %s failed: %s", row["id"], error)
            services.alert_event_attempted(event_id=row["id"], ok=error is None, error=str(error or ""), now=now)
        else:
            row = channels[i - len(hooks)]
            if error is not None:  # the channel by id: its target may hold a token
                logger.warning("alert event %s to channel %s failed: %s", row["id"], row["channel"],
                               type(error).__name__ if "://" in str(error) else error)
            services.notify_delivery_attempted(delivery_id=row["delivery"], ok=error is None,
                                               error=str(error or "")[:200] if "://" not in str(error or "")
                                               else type(error).__name__, now=now)
        delivered += error is None

    send_round(jobs, record)
    return delivered
