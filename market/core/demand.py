"""Symbols on demand: which tickers a capped upstream connection should stream.

A feed whose vendor caps the symbols per connection (Finnhub 50, Fyers 5000) streams

1. the **pinned** tickers (recorded continuously: ``always_record`` first, then ``active``;
   the feed passes them in that priority order), then
2. the **watched** tickers (someone is viewing them) in order of first request, then
3. the **lingering** tickers (their last viewer left less than ``linger`` seconds ago),
   most recently left first,

up to ``capacity``. The linger avoids churning the vendor subscription when a viewer
flips between symbols, but it never refuses a real viewer: a lingering ticker yields
its slot to a watched one at once.

A viewer is an opaque id (a Channels reply channel). It re-announces what it watches
(``refresh``) more often than ``ttl``; a viewer silent for longer than ``ttl`` (a crashed
web worker) is forgotten. A viewer whose ticker is not streamed (past the cap) stays
registered as *waiting*: it is told once (``take_refusals``) and gets the first slot that
frees up, first come first served. A ticker that gets a new viewer after it went idle
counts as a new request, so it never displaces one admitted meanwhile.

Pure and synchronous: the clock is injected, nothing here does I/O, and it imports
nothing from Django or Channels (``market.live.demand`` is the Channels edge).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

Clock = Callable[[], float]


@dataclass(frozen=True)
class Refusal:
    """``viewer`` asked for ``ticker`` but the connection is full."""

    viewer: str
    ticker: str


@dataclass
class _Demand:
    order: int                                              # first request of this episode
    viewers: dict[str, float] = field(default_factory=dict)  # viewer -> last heard (clock)
    idle_since: float | None = None                         # when the last viewer left
    told: set[str] = field(default_factory=set)             # viewers already refused


class DemandBook:
    def __init__(self, *, capacity: int, linger: float, ttl: float, clock: Clock) -> None:
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        if linger < 0 or ttl <= 0:
            raise ValueError("linger must be >= 0 and ttl > 0")
        self.capacity = capacity
        self.linger = linger
        self.ttl = ttl
        self._clock = clock
        self._pinned: list[str] = []
        self._pinned_set: frozenset[str] = frozenset()
        self._demand: dict[str, _Demand] = {}
        self._seq = itertools.count()

    # -- inputs --------------------------------------------------------------------------
    def set_pinned(self, tickers: Sequence[str]) -> None:
        """Tickers recorded continuously, in priority order (duplicates ignored)."""
        self._pinned = list(dict.fromkeys(tickers))
        self._pinned_set = frozenset(self._pinned)
        for ticker in [t for t, d in self._demand.items() if not d.viewers and t in self._pinned_set]:
            del self._demand[ticker]  # pinned now: nothing left to linger for

    def add(self, viewer: str, ticker: str) -> None:
        """``viewer`` watches ``ticker`` (again: refreshes it)."""
        now = self._clock()
        d = self._demand.get(ticker)
        if d is None:
            d = self._demand[ticker] = _Demand(order=next(self._seq))
        elif not d.viewers:
            # Back from idle: a new request, behind every ticker admitted meanwhile.
            d.order, d.idle_since = next(self._seq), None
        d.viewers[viewer] = now

    def refresh(self, viewer: str, tickers: Iterable[str]) -> None:
        """The periodic re-announcement: every ticker ``viewer`` still watches."""
        for ticker in tickers:
            self.add(viewer, ticker)

    def remove(self, viewer: str, ticker: str) -> None:
        d = self._demand.get(ticker)
        if d is None or viewer not in d.viewers:
            return
        streamed = self.streamed_set()
        del d.viewers[viewer]
        d.told.discard(viewer)
        if not d.viewers:
            self._went_idle(ticker, d, streamed)

    def drop_viewer(self, viewer: str) -> None:
        """Forget ``viewer`` everywhere (its connection closed)."""
        for ticker in [t for t, d in self._demand.items() if viewer in d.viewers]:
            self.remove(viewer, ticker)

    def expire(self) -> None:
        """Forget viewers silent for longer than ``ttl``; end lingers older than ``linger``."""
        now = self._clock()
        streamed = self.streamed_set()
        for ticker, d in list(self._demand.items()):
            stale = [v for v, seen in d.viewers.items() if now - seen > self.ttl]
            for viewer in stale:
                del d.viewers[viewer]
                d.told.discard(viewer)
            if stale and not d.viewers:
                self._went_idle(ticker, d, streamed)
            elif not d.viewers and d.idle_since is not None and now - d.idle_since >= self.linger:
                del self._demand[ticker]

    def _went_idle(self, ticker: str, d: _Demand, streamed: frozenset[str]) -> None:
        if ticker in self._pinned_set or ticker not in streamed or self.linger == 0:
            del self._demand[ticker]  # pinned anyway, or never subscribed: nothing to keep
        else:
            d.idle_since = self._clock()

    # -- decisions -----------------------------------------------------------------------
    def streamed(self) -> list[str]:
        """What the upstream connection should be subscribed to, in priority order."""
        out = self._pinned[: self.capacity]
        room = self.capacity - len(out)
        if room <= 0:
            return out
        watched = sorted((d.order, t) for t, d in self._demand.items()
                         if d.viewers and t not in self._pinned_set)
        out += [t for _, t in watched[:room]]
        room -= min(room, len(watched))
        if room:
            idle = sorted(((-(d.idle_since or 0.0), d.order), t) for t, d in self._demand.items()
                          if not d.viewers and t not in self._pinned_set)
            out += [t for _, t in idle[:room]]
        return out

    def streamed_set(self) -> frozenset[str]:
        return frozenset(self.streamed())

    def left_out(self) -> list[str]:
        """Pinned tickers past the cap (never streamed; the feed warns about them)."""
        return self._pinned[self.capacity:]

    def waiting(self) -> list[str]:
        """Watched tickers not streamed because the connection is full, in queue order."""
        streamed = self.streamed_set()
        return [t for _, t in sorted((d.order, t) for t, d in self._demand.items()
                                     if d.viewers and t not in streamed)]

    def lingering(self) -> list[str]:
        return sorted(t for t, d in self._demand.items() if not d.viewers)

    def viewers(self, ticker: str) -> int:
        d = self._demand.get(ticker)
        return len(d.viewers) if d else 0

    def take_refusals(self) -> list[Refusal]:
        """Viewers newly left without a stream (each told once per refusal), oldest first.

        Call it after every change (``market.live.demand.DemandListener`` does).

        A viewer whose ticker gets streamed later is forgotten here, so it is told again
        if it is ever displaced (e.g. the admin pins more symbols than fit)."""
        streamed = self.streamed_set()
        out: list[Refusal] = []
        for ticker, d in sorted(self._demand.items(), key=lambda item: item[1].order):
            if ticker in streamed:
                d.told.clear()
                continue
            for viewer in d.viewers:
                if viewer not in d.told:
                    d.told.add(viewer)
                    out.append(Refusal(viewer, ticker))
        return out

    def next_deadline(self) -> float | None:
        """The earliest clock value at which ``expire`` can change something."""
        times = [seen + self.ttl for d in self._demand.values() for seen in d.viewers.values()]
        times += [d.idle_since + self.linger for d in self._demand.values()
                  if not d.viewers and d.idle_since is not None]
        return min(times) if times else None


def refusal_message(ticker: str, limit: int, cap: str) -> str:
    """What the browser that asked for ``ticker`` reads when all ``limit`` slots are taken;
    ``cap`` states the vendor's limit, e.g. "the Fyers feed streams at most 5000 symbols"."""
    return (f"{ticker} is not streaming live: {cap} and all {limit} are in use. History is "
            f"shown; live updates start when a slot frees up (try again later).")
