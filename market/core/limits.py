"""Rate-limit mechanics, framework-free: token bucket, strikes, sliding-window counts.

The edges wire these in (``market.web.consumers`` per WebSocket connection,
``market.web.ratelimit`` per user or client address over Django's cache); this
module owns only the arithmetic, so every rule is unit-tested with a fake clock
(``tests/core/test_limits.py``). Clocks are injected: any ``() -> float`` in seconds,
``time.monotonic`` by default. Imports: the standard library only.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Clock = Callable[[], float]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; starts full. ``take()`` spends one if it can.

    A client may send ``burst`` messages at once (a page re-subscribing its watchlist after
    a reconnect) and ``rate`` a second for ever after.
    """

    __slots__ = ("rate", "burst", "_clock", "_tokens", "_stamp")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        if now > self._stamp:  # a clock that steps back refills nothing (and takes nothing)
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def take(self, cost: float = 1.0) -> bool:
        self._refill()
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until ``take(cost)`` would succeed (0 if it would now)."""
        self._refill()
        return max(0.0, (cost - self._tokens) / self.rate)


class Strikes:
    """``limit`` strikes within any ``window`` seconds is "too many" (exact; O(limit) memory)."""

    __slots__ = ("limit", "window", "_clock", "_times")

    def __init__(self, limit: int, window: float, clock: Clock = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("strikes need limit >= 1 and window > 0")
        self.limit = limit
        self.window = float(window)
        self._clock = clock
        self._times: deque[float] = deque(maxlen=limit)

    def strike(self) -> bool:
        """Record one; True when this makes ``limit`` strikes within ``window``."""
        now = self._clock()
        self._times.append(now)
        return len(self._times) == self.limit and now - self._times[0] <= self.window

    def __len__(self) -> int:
        now = self._clock()
        return sum(1 for t in self._times if now - t <= self.window)


class Verdict(enum.Enum):
    ALLOW = "allow"    # handle the message
    REJECT = "reject"  # answer with an error, keep the connection
    CLOSE = "close"    # the client keeps breaking limits: close the connection


class MessageGate:
    """Per-connection admission of client messages.

    Every message costs a token; a message without one is rejected and is a strike, and
    so is any other limit broken (``strike()``: a frame too large, too many
    subscriptions). ``strikes_to_close`` strikes within ``strike_window`` seconds close
    the connection; once closing, everything is ``CLOSE``.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: float,
        strikes_to_close: int,
        strike_window: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.bucket = TokenBucket(rate, burst, clock)
        self.strikes = Strikes(strikes_to_close, strike_window, clock)
        self.closing = False

    def admit(self) -> Verdict:
        if self.closing:
            return Verdict.CLOSE
        if self.bucket.take():
            return Verdict.ALLOW
        return self.strike()

    def strike(self) -> Verdict:
        if self.closing or self.strikes.strike():
            self.closing = True
            return Verdict.CLOSE
        return Verdict.REJECT


# -- sliding-window counts (shared counters: Django's cache, one process or many) ----------
@dataclass(frozen=True)
class WindowDecision:
    allowed: bool
    retry_after: int  # whole seconds (>= 1) when not allowed, else 0
    estimate: float  # weighted requests in the last ``window`` seconds, this one included


def window_index(now: float, window: float) -> int:
    """Which fixed window ``now`` falls in; counters are kept per window."""
    return int(now // window)


def sliding_window_decide(*, limit: int, window: float, now: float, previous: int, current: int) -> WindowDecision:
    """Allow one more request? ``current`` counts this window's allowed requests *before*
    this one, ``previous`` the window before's.

    The estimate weights the previous window by the share of it still inside the last
    ``window`` seconds (the usual two-counter approximation of a sliding window: no burst
    of 2x ``limit`` across a window boundary, and two counters per key instead of a log).
    ``retry_after`` is when the same request would be allowed if nothing else arrived.
    """
    if limit < 1 or window <= 0:
        raise ValueError("a window needs limit >= 1 and window > 0")
    elapsed = now - window_index(now, window) * window
    weight = 1.0 - elapsed / window
    estimate = previous * weight + current + 1
    if estimate <= limit:
        return WindowDecision(True, 0, estimate)
    if current + 1 <= limit:
        # Wait in this window until enough of the previous one has slid out.
        until = window * (1.0 - (limit - current - 1) / previous) if previous else elapsed
        wait = until - elapsed
    else:
        # This window alone is full: wait for the next, where it weighs as "previous".
        until = window * (1.0 - (limit - 1) / current) if current > limit - 1 else 0.0
        wait = (window - elapsed) + max(0.0, until)
    return WindowDecision(False, max(1, math.ceil(wait - 1e-9)), estimate)


# -- client addresses ----------------------------------------------------------------------
def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """``["127.0.0.1", "10.0.0.0/8", "::1"]`` -> networks; ValueError names a bad entry."""
    out: list[Network] = []
    for item in items:
        try:
            out.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {item!r}") from None
    return tuple(out)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[::1]:8000"
        value = value[1:value.index("]")]
    elif value.count(":") == 1:  # "1.2.3.4:5678"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: tuple[Network, ...]) -> bool:
    return any(addr.version == net.version and addr in net for net in trusted)


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The address to count a request against, as a short normalised string.

    ``X-Forwarded-For`` is believed only when the peer (``remote_addr``) is a trusted
    proxy; then the client is the right-most hop that is not itself trusted (the left of
    the header is whatever the client chose to send). IPv6 clients are counted per /64,
    the block one subscriber gets. Anything unparseable counts as ``"unknown"`` (one
    shared bucket, never a fresh one per garbage value).
    """
    peer = _ip(remote_addr or "")
    if peer is None:
        return "unknown"
    client = peer
    if forwarded_for and _trusted(peer, trusted):
        for hop in reversed(forwarded_for.split(",")[-32:]):
            addr = _ip(hop)
            if addr is None:
                break  # garbage from here leftwards: keep the last hop we could vouch for
            client = addr
            if not _trusted(addr, trusted):
                break
    if client.version == 6:
        mapped = client.ipv4_mapped  # type: ignore[union-attr]
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{client}/64", strict=False))
    return str(client)
