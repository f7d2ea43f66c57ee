"""Timeframe codes and their lengths.

A ``Timeframe`` is identified by its code (``"5s"``, ``"1m"``, ``"1d"``); the set of codes
is closed so that every code can be validated at the edges and derived from a stored one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

CODES: tuple[str, ...] = (
    "5s", "10s", "15s", "30s",
    "1m", "2m", "3m", "5m", "10m", "15m", "30m",
    "1h", "2h", "4h", "1d",
)
DEFAULT_STORED: tuple[str, ...] = ("5s", "1m", "5m", "15m", "1h", "1d")


class TimeframeError(ValueError):
    """An unknown timeframe code or an unusable set of stored timeframes."""


@dataclass(frozen=True, slots=True, order=True)
class Timeframe:
    seconds: int
    code: str

    @property
    def is_daily(self) -> bool:
        return self.seconds >= 86400

    def __str__(self) -> str:
        return self.code

    @classmethod
    def parse(cls, code: str) -> "Timeframe":
        try:
            return _BY_CODE[code]
        except (KeyError, TypeError):
            raise TimeframeError(
                f"unknown timeframe {code!r}; use one of {' '.join(CODES)}"
            ) from None


def _make(code: str) -> Timeframe:
    return Timeframe(seconds=int(code[:-1]) * _UNIT_SECONDS[code[-1]], code=code)


_BY_CODE: dict[str, Timeframe] = {code: _make(code) for code in CODES}
ALL: tuple[Timeframe, ...] = tuple(_BY_CODE[c] for c in CODES)
BASE = _BY_CODE["5s"]  # the late-tick rule (contract e) is defined on 5 s buckets


def divides(small: Timeframe, big: Timeframe) -> bool:
    """True when ``big`` buckets are unions of whole ``small`` buckets (same anchoring)."""
    if big.is_daily:
        # A trading day is a union of intraday buckets anchored at its open.
        return small.is_daily or 86400 % small.seconds == 0
    return not small.is_daily and big.seconds % small.seconds == 0


@dataclass(frozen=True, slots=True)
class TimeframePlan:
    """Which timeframes are stored and which stored one each other code is derived from."""

    stored: tuple[Timeframe, ...]
    source: dict[Timeframe, Timeframe]  # derived -> stored base (stored map to themselves)

    @classmethod
    def build(cls, stored_codes: Iterable[str]) -> "TimeframePlan":
        stored = tuple(sorted({Timeframe.parse(c) for c in stored_codes}))
        if not stored:
            raise TimeframeError("at least one timeframe must be stored")
        if stored[0] != BASE:
            raise TimeframeError("the stored timeframes must include 5s, the engine's base")
        source: dict[Timeframe, Timeframe] = {}
        for tf in ALL:
            if tf in stored:
                source[tf] = tf
                continue
            divisors = [s for s in stored if s.seconds < tf.seconds and divides(s, tf)]
            source[tf] = max(divisors)  # 5s divides everything, so never empty
        return cls(stored=stored, source=source)

    def base_for(self, tf: Timeframe) -> Timeframe:
        return self.source[tf]

    def is_stored(self, tf: Timeframe) -> bool:
        return self.source[tf] == tf

    @property
    def codes(self) -> Sequence[str]:
        return [tf.code for tf in ALL]
