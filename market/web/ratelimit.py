"""HTTP rate limit on the history API: requests per minute per user, else per client address.

A request to one of ``MARKET["HTTP_RATE_PATHS"]`` (``/api/candles``, ``/api/symbols``) is
counted against ``user:<id>`` when a signed-in or token-authenticated user makes it, else against the client address
(``REMOTE_ADDR``; ``X-Forwarded-For`` only when the peer is one of
``MARKET["TRUSTED_PROXIES"]``). Over ``HTTP_RATE_PER_MINUTE`` it answers 429 with a JSON
``{"error", "code": "rate_limited"}`` and ``Retry-After``, before the view runs.

Counts live in Django's cache (alias ``MARKET["HTTP_RATE_CACHE"]``): in-process memory by
default, so each process counts alone; Redis (Django's built-in RedisCache) when REDIS_URL
is set, so every daphne process shares them. Two counters per key (this minute and the
last) give a sliding-window estimate (``market.core.limits.sliding_window_decide``).
When the cache fails the request is let through (logged): a limit must not take the API
down with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse

from market.web.access import bearer_sign_in
from market.web.responses import json_response
from market.conf import market
from market.core.limits import client_address, sliding_window_decide, window_index

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
_KEY_PREFIX = "tc-rl"

# Wall clock (counters are shared between processes); tests replace it.
clock: Callable[[], float] = time.time
# Tests start each case with fresh counts (tests/conftest.py); production never changes it.
_generation = 0


def reset_counts() -> None:
    """Forget every count of this process (tests): later keys use a new namespace."""
    global _generation
    _generation += 1


def rate_key(request: HttpRequest) -> str:
    bearer_sign_in(request)  # a script's token counts against its user, from any address
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False) and user.pk is not None:
        return f"user:{user.pk}"
    addr = client_address(
        request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"), market().trusted_proxies
    )
    return f"ip:{addr}"


class RateLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        conf = market()
        if conf.http_rate_per_minute and request.path in conf.http_rate_paths:
            refused = self._check(request, conf.http_rate_per_minute, conf.http_rate_cache)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _check(self, request: HttpRequest, limit: int, alias: str) -> HttpResponse | None:
        now = clock()
        index = window_index(now, WINDOW_SECONDS)
        base = f"{_KEY_PREFIX}:{_generation}:{rate_key(request)}"
        current_key, previous_key = f"{base}:{index}", f"{base}:{index - 1}"
        try:
            cache = caches[alias]
            cache.add(current_key, 0, timeout=int(2 * WINDOW_SECONDS) + 5)
            try:
                current = cache.incr(current_key)
            except ValueError:  # expired between add and incr
                cache.set(current_key, 1, timeout=int(2 * WINDOW_SECONDS) + 5)
                current = 1
            previous = int(cache.get(previous_key) or 0)
            decision = sliding_window_decide(
                limit=limit, window=WINDOW_SECONDS, now=now, previous=previous, current=current - 1
            )
        except Exception:  # noqa: BLE001 - e.g. Redis down: serve, say so
            logger.warning("rate limit cache %r failed; request not limited", alias, exc_info=True)
            return None
        if decision.allowed:
            return None
        try:
            cache.decr(current_key)  # a refused request does not count against the next
        except Exception:  # noqa: BLE001 - expired meanwhile, or the cache went away
            pass
        logger.debug("rate limited %s on %s (retry after %d s)", base, request.path, decision.retry_after)
        body = {
            "error": f"too many requests: at most {limit} a minute; retry in {decision.retry_after} s",
            "code": "rate_limited",
        }
        return json_response(body, 429, Retry_After=str(decision.retry_after))
