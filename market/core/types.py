"""Domain values shared by the engine, the feeds and the storage edge."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Reject(str, enum.Enum):
    """Why a message did not become an accepted tick (contract d, e, h, i)."""

    MALFORMED = "malformed"          # not a mapping, unknown shape
    NO_SYMBOL = "no_symbol"
    BAD_PRICE = "bad_price"          # missing, non-numeric, non-finite or <= 0
    NO_TIME = "no_time"              # missing or unusable exchange time
    BAD_VOLUME = "bad_volume"        # present but non-numeric / negative
    UNKNOWN_SYMBOL = "unknown_symbol"
    REPEAT = "repeat"                # the SDK re-sent the last state
    LATE = "late"                    # before the open 5 s bucket
    FUTURE = "future"                # > max_ahead seconds ahead of the wall clock
    OUT_OF_SESSION = "out_of_session"


@dataclass(slots=True)
class Tick:
    """One normalised trade print or quote snapshot.

    ``time`` is exchange time in epoch seconds UTC. ``day_volume`` is the cumulative
    volume of the trading day (Fyers ``vol_traded_today``); ``size`` is a per-trade volume
    for sources that send one instead. Both ``None`` means an instrument without volume.
    """

    symbol: str
    time: float
    price: float
    day_volume: float | None = None
    last_traded_time: float | None = None
    size: float | None = None


@dataclass(slots=True)
class Candle:
    """OHLCV of one bucket; ``time`` is the bucket start (epoch seconds UTC)."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    ticks: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "ticks": self.ticks,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Candle":
        return cls(
            time=int(d["time"]),
            open=float(d["open"]),
            high=float(d["high"]),
            low=float(d["low"]),
            close=float(d["close"]),
            volume=float(d["volume"]),
            ticks=int(d.get("ticks", 0)),
        )


@dataclass(slots=True)  # not frozen: frozen __init__ costs 3x, and the engine makes many
class CandleUpdate:
    """A candle of one (symbol, timeframe); ``final`` once its bucket has closed."""

    symbol: str
    timeframe: str
    candle: Candle
    final: bool


@dataclass(frozen=True, slots=True)
class Control:
    """A message that is not a tick: ``ping``, ``error`` (with the vendor's text) or ``other``."""

    kind: str
    message: str = ""


@dataclass(slots=True)
class TickBatch:
    """What one message holding several prints (a Finnhub frame) parsed into."""

    ticks: list[Tick] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    rejects: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1


class WriterFenced(RuntimeError):
    """Another runfeed took this writer's lock (its fencing epoch is newer): stop writing."""
