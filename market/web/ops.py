"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from market import selectors
from market.web import access
from market.conf import market
from market.web.responses import json_response

LAYER_TIMEOUT = 2.0


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. No dependencies, so a database outage never restarts it."""
    return json_response({"status": "ok"})


def _database() -> tuple[bool, list[dict]]:
    """Reading the feeds' states is the database check: it fails when the database does."""
    return True, selectors.feed_state_list()


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "readyz.ping"})
    await asyncio.wait_for(layer.receive(channel), timeout=LAYER_TIMEOUT)


async def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: database and channel layer work (503 otherwise); feed heartbeats reported.

    A stale feed does not fail readiness unless READY_MAX_FEED_AGE is set: the charts'
    history still serves, and pulling every web worker would show users nothing at all.
    """
    checks: dict[str, object] = {}
    ok = True
    feeds: list[dict] = []
    try:
        _, feeds = await sync_to_async(_database)()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        ok = False
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await _layer_round_trip()
        checks["channel_layer"] = "ok"
    except Exception as exc:  # noqa: BLE001
        ok = False
        checks["channel_layer"] = f"error: {type(exc).__name__}"
    now = time.time()
    checks["feeds"] = {
        f["source"]: {"state": f["state"], "heartbeat_age": round(now - f["heartbeat"], 1),
                      **({"detail": f["detail"]} if f.get("detail") else {})} for f in feeds
    }
    max_age = market().ready_max_feed_age
    if max_age and feeds and not any(
        f["state"] == "live" and now - f["heartbeat"] <= max_age for f in feeds
    ):
        ok = False
        checks["feed"] = f"no live feed heartbeat within {max_age:g}s"
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


@access.metrics_view
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text; a staff session or the metrics token in production (market.web.access)."""
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
