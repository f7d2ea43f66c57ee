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
- sends run on a small pool (``WORKERS``); a host's first send of a round goes alone, and
  only once it has answered do up to ``PER_HOST`` of its sends go side by side; a host that
  failed is skipped for the rest of the round, and no send starts once the round has run
  ``ROUND_SECONDS``: a bad receiver delays nobody else for long. Events committed while a
  round runs join it (``deliver_due``'s ``wake``) instead of waiting for it to end.
"""

from __future__ import annotations

import http.client
import logging
import queue
import socket
import ssl
import threading
import time
from collections import deque
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
WORKERS = 8    # sends in flight in all ...
PER_HOST = 4   # ... and to one receiver that has answered in this round
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
               record: Callable[[list[tuple[int, BaseException | None]]], None] | None = None,
               more: Callable[[], list[tuple[str, Callable[[], None]]]] | None = None,
               ) -> list[tuple[int, BaseException | None]]:
    """Run ``(host, send)`` jobs on the pool, a host's in the order given, none after that
    host failed or the round ran out of time; returns ``(job index, error or None)`` for the
    jobs that ran.

    A host's first send goes alone; once one has succeeded in this round, up to
    ``PER_HOST`` of its sends are in flight (a healthy receiver is not fed one POST at a
    time, a failing one costs one attempt per round); ``WORKERS`` in all, each host given a
    slot before any host a second. ``record`` is called with the outcomes known so far (a
    list, recorded together), in the caller's thread, and no send starts on the slot of one
    whose outcome is not recorded yet: a crash resends at most ``PER_HOST`` sends per host.
    ``more`` (called whenever a slot frees, e.g. events committed since the round began)
    returns further jobs, indexed after those already given.
    """
    jobs = list(jobs)
    waiting: dict[str, deque[int]] = {}
    in_flight: dict[str, int] = {}
    proven: set[str] = set()
    failed: set[str] = set()
    running = 0
    outcomes: list[tuple[int, BaseException | None]] = []
    finished: queue.SimpleQueue[tuple[int, BaseException | None]] = queue.SimpleQueue()
    failures: list[BaseException] = []
    ends = time.monotonic() + ROUND_SECONDS

    def add(new: list[tuple[str, Callable[[], None]]]) -> None:
        for host, send in new:
            jobs.append((host, send))
            waiting.setdefault(host, deque()).append(len(jobs) - 1)

    def run(i: int) -> None:
        error: BaseException | None = None
        try:
            jobs[i][1]()
        except Exception as exc:  # noqa: BLE001 - recorded as the attempt's error
            error = exc
        finished.put((i, error))

    for i, (host, _) in enumerate(jobs):
        waiting.setdefault(host, deque()).append(i)
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="webhook") as pool:
        while True:
            if more is not None and time.monotonic() < ends:
                add(more())
            launched = True
            while launched and running < WORKERS and time.monotonic() < ends:
                launched = False  # one more per host per pass: every host gets a slot first
                for host, queued in waiting.items():
                    limit = PER_HOST if host in proven else 1
                    if queued and host not in failed and in_flight.get(host, 0) < limit and running < WORKERS:
                        i = queued.popleft()
                        in_flight[host] = in_flight.get(host, 0) + 1
                        running += 1
                        launched = True
                        pool.submit(run, i)
            if not running:
                break
            try:  # a short wait, so events that ``more`` has by now join without waiting for a send
                known = [finished.get(timeout=0.02 if more is not None else None)]
            except queue.Empty:
                continue
            while True:  # and whatever else finished meanwhile: recorded in one go
                try:
                    known.append(finished.get_nowait())
                except queue.Empty:
                    break
            for i, error in known:
                host = jobs[i][0]
                running -= 1
                in_flight[host] -= 1
                (failed if error is not None else proven).add(host)
                outcomes.append((i, error))
            try:
                if record is not None:
                    record(known)
            except Exception as exc:  # noqa: BLE001 - e.g. the database is down: raised after the round
                failures.append(exc)
    if failures:
        raise failures[0]
    return outcomes


def deliver_due(*, now: float | None = None, wake: threading.Event | None = None) -> int:
    """Send the due webhooks and channel messages (``market.feed.notify``); returns how many
    were delivered. Outcomes are recorded here, in the caller's thread (the pool's threads
    only talk to the receivers), those known together in one transaction. ``wake`` is set
    when new events have been committed: while the round runs they join it at once (their
    hosts' order and limits as for the rest), rather than waiting for the next round."""
    from market.feed import notify  # apprise is imported only by a process that delivers

    rows: list[tuple[str, dict[str, Any]]] = []  # ("hook" | "channel", row), by job index
    taken: set[tuple[str, Any]] = set()
    delivered = 0

    def due() -> list[tuple[str, Callable[[], None]]]:
        at = time.time() if now is None else now
        new: list[tuple[str, Callable[[], None]]] = []
        for row in selectors.alert_event_due(now=at):
            if ("hook", row["id"]) not in taken:
                taken.add(("hook", row["id"]))
                rows.append(("hook", row))
                new.append((_host(row["webhook"]), (lambda row=row: _webhook_send(row))))
        for row in selectors.notify_delivery_due(now=at):
            if ("channel", row["delivery"]) not in taken:
                taken.add(("channel", row["delivery"]))
                rows.append(("channel", row))
                new.append((f"channel {row['channel']}", (lambda row=row: notify.send(row))))
        return new

    def more() -> list[tuple[str, Callable[[], None]]]:
        if wake is None or not wake.is_set():
            return []
        wake.clear()
        return due()

    def outcome(i: int, error: BaseException | None) -> tuple[str, Any, bool, str]:
        kind, row = rows[i]
        if kind == "hook":
            if error is not None:
                logger.warning("webhook for alert event %s failed: %s", row["id"], error)
            return kind, row["id"], error is None, str(error or "")
        if error is not None:  # the channel by id: its target may hold a token
            logger.warning("alert event %s to channel %s failed: %s", row["id"], row["channel"],
                           type(error).__name__ if "://" in str(error) else error)
        return (kind, row["delivery"], error is None,
                str(error or "")[:200] if "://" not in str(error or "") else type(error).__name__)

    def record(known: list[tuple[int, BaseException | None]]) -> None:
        nonlocal delivered
        services.delivery_attempts_record([outcome(i, error) for i, error in known],
                                          now=time.time() if now is None else now)
        delivered += sum(error is None for _, error in known)

    if wake is not None:
        wake.clear()
    send_round(due(), record, more)
    return delivered
