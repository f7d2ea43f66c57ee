"""A simulated market: a random walk per symbol with trade arrivals and cumulative volume.

Deterministic for a given seed and time range, so a first-run back-fill and the live
stream that follows it join without a seam. Round the clock: the day volume restarts
at 00:00 UTC, as it does on the demo exchange's trading day. After a restart a walk
continues from the stored price and day volume (``start_from``), as a real exchange's
cumulative volume would: restarting it at 0 would leave it below what is already counted.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from market.core.types import Tick

DAY = 86400


@dataclass(frozen=True, slots=True)
class SimSymbol:
    ticker: str
    name: str
    price: float
    tick_size: float = 0.05
    volatility: float = 0.0006  # standard deviation of log price per sqrt(second)


DEMO_SYMBOLS: tuple[SimSymbol, ...] = (
    SimSymbol("DEMO:ALPHA", "Alpha Industries", 812.40),
    SimSymbol("DEMO:BETA", "Beta Pharma", 1520.00, tick_size=0.1),
    SimSymbol("DEMO:GAMMA", "Gamma Bank", 245.35),
    SimSymbol("DEMO:INDEX", "Demo 50 Index", 24350.00, tick_size=0.05, volatility=0.0003),
)


def sim_universe(extra: int = 0) -> tuple[SimSymbol, ...]:
    """The demo symbols and ``extra`` more (``DEMO:S0000`` ...), each with its own start
    price and volatility derived from its number, so every run builds the same universe."""
    more = tuple(
        SimSymbol(f"DEMO:S{i:04d}", f"Simulated {i}", round(20.0 + (i * 7919) % 4980, 2),
                  volatility=0.0003 + 0.0001 * (i % 6))
        for i in range(extra)
    )
    return DEMO_SYMBOLS + more


@dataclass(slots=True)
class _Walker:
    spec: SimSymbol
    price: float
    anchor: float
    day: int = -1
    day_volume: float = 0.0
    has_volume: bool = True
    rng: random.Random = field(default_factory=random.Random)


class RandomWalk:
    """Generates time-ordered ticks for several symbols at ``rate`` ticks/s each."""

    def __init__(self, symbols: Sequence[SimSymbol], *, rate: float = 2.0, seed: int = 7) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._walkers = [
            _Walker(
                spec=s,
                price=s.price,
                anchor=s.price,
                has_volume=not s.ticker.endswith("INDEX"),
                rng=random.Random(f"{seed}:{s.ticker}"),
            )
            for s in symbols
        ]
        self._next: list[tuple[float, int]] = []
        self._clock: float | None = None

    def start_from(self, ticker: str, price: float, *, day_volume: tuple[int, float] | None = None) -> None:
        """Continue a symbol's walk from a stored last price and, with ``day_volume``
        ``(day label, cumulative volume)``, from that day's volume (the label is 00:00 UTC
        of the day, as the demo exchange's ``TradingDay.label``; a later day starts at 0)."""
        for w in self._walkers:
            if w.spec.ticker != ticker:
                continue
            if price > 0:
                w.price = price
            if day_volume is not None and w.has_volume:
                label, volume = day_volume
                w.day, w.day_volume = int(label // DAY), max(0.0, float(volume))

    def ticks_until(self, t_end: float, *, t_start: float | None = None) -> Iterator[Tick]:
        """Ticks with times in [previous end (or ``t_start``), ``t_end``), ascending."""
        if self._clock is None:
            if t_start is None:
                raise ValueError("the first call needs t_start")
            self._clock = t_start
            self._next = []
            for i, w in enumerate(self._walkers):
                heapq.heappush(self._next, (t_start + w.rng.expovariate(self.rate), i))
        while self._next and self._next[0][0] < t_end:
            t, i = heapq.heappop(self._next)
            w = self._walkers[i]
            yield self._step(w, t)
            heapq.heappush(self._next, (t + w.rng.expovariate(self.rate), i))
        self._clock = t_end

    def _step(self, w: _Walker, t: float) -> Tick:
        rng = w.rng
        dt = 1.0 / self.rate
        drift = 0.02 * math.log(w.anchor / w.price) * dt  # gentle pull back to the anchor
        w.price *= math.exp(drift + w.spec.volatility * math.sqrt(dt) * rng.gauss(0.0, 1.0))
        tick = w.spec.tick_size
        price = max(tick, round(round(w.price / tick) * tick, 6))
        t_ms = round(t, 3)
        if not w.has_volume:
            return Tick(w.spec.ticker, t_ms, price)
        day = int(t // DAY)
        if day != w.day:
            w.day = day
            w.day_volume = 0.0
        w.day_volume += float(int(rng.lognormvariate(4.0, 1.0)) + 1)
        return Tick(w.spec.ticker, t_ms, price, w.day_volume, t_ms)
