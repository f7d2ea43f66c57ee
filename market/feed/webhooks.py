"""Webhook delivery of alert events (issue 13): signed POSTs, retried with backoff.

``deliver_due`` sends every due event once: ``X-TickChart-Signature`` signs the body with
the alert's secret and ``Idempotency-Key`` is the event id, so a receiver can drop
repeats (a crash between sending and recording the outcome sends again). A failure is
retried after ``core.alerts.BACKOFF`` (over half an hour in all), then marked failed.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request

from market import selectors, services
from market.core.alerts import webhook_body, webhook_signature

logger = logging.getLogger("market.feed")

TIMEOUT = 5.0
MAX_RESPONSE = 65_536


def post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST; raises on a non-2xx answer, a timeout or a refused connection."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - http(s) only (API)
        response.read(MAX_RESPONSE)
        if not 200 <= response.status < 300:
            raise OSError(f"HTTP {response.status}")


def deliver_due(*, now: float | None = None) -> int:
    """Send the due events; returns how many were delivered."""
    now = time.time() if now is None else now
    delivered = 0
    for row in selectors.alert_event_due(now=now):
        body = webhook_body(event_id=row["id"], alert=row["alert"], symbol=row["symbol"], tf=row["tf"],
                            time=row["time"], value=row["value"], message=row["message"], fired_at=row["fired_at"])
        headers = {"Content-Type": "application/json", "Idempotency-Key": row["id"],
                   "X-TickChart-Signature": webhook_signature(body, row["secret"])}
        try:
            post(row["webhook"], body, headers)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            logger.warning("webhook for alert event %s failed: %s", row["id"], exc)
            services.alert_event_attempted(event_id=row["id"], ok=False, error=str(exc), now=now)
            continue
        services.alert_event_attempted(event_id=row["id"], ok=True, now=now)
        delivered += 1
    return delivered
