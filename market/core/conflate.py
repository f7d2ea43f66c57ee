"""Conflation: each (symbol, timeframe) stream sends at most N updates a second.

Latest wins: a held update is replaced by a newer one of the same stream. A final
candle (its bucket closed) is never held back, and it supersedes a held update of the
same candle, so every candle's final state is delivered.
"""

from __future__ import annotations

from market.core.types import CandleUpdate


class Conflator:
    def __init__(self, max_per_second: float) -> None:
        if max_per_second <= 0:
            raise ValueError("max_per_second must be positive")
        self.interval = 1.0 / max_per_second
        self._last_sent: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], CandleUpdate] = {}
        self.conflated = 0  # updates replaced before they were sent

    def offer(self, updates: list[CandleUpdate], now: float) -> list[CandleUpdate]:
        """What to send now, of ``updates`` (in order) and of what was held before."""
        out: list[CandleUpdate] = []
        for u in updates:
            key = (u.symbol, u.timeframe)
            held = self._held.get(key)
            if u.final:
                if held is not None and held.candle.time == u.candle.time:
                    del self._held[key]
                    self.conflated += 1
                elif held is not None and held.candle.time < u.candle.time:
                    out.append(self._held.pop(key))  # an older candle's last state goes first
                out.append(u)
                continue
            if held is not None:
                self.conflated += 1
            self._held[key] = u
        for key, u in list(self._held.items()):
            if now - self._last_sent.get(key, float("-inf")) >= self.interval:
                out.append(u)
                del self._held[key]
                self._last_sent[key] = now
        return out

    @property
    def held(self) -> int:
        return len(self._held)
