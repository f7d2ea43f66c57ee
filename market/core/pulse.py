"""Market Pulse: movers, volatility regime, stress events and correlation from 1m closes.

Pure and framework-free: callers feed it candle closes (``update``) and ask it once a
second for what changed (``step``) and for the correlation card (``correlations``).
``market.pulse.service`` wires it to the channel layer and the database.

Definitions (each pinned against a naive recomputation in ``tests/pulse``):

- Series: one point per 1m bucket (``time`` floored to the minute), the latest close
  wins; no filler points (a quiet minute has none).
- ``r1m``/``r5m``/``r15m``: ``last / c - 1`` where ``c`` is the close of the newest point
  at or before ``time_last - N minutes``; ``None`` without such a point.
- ``vol15m``: sample standard deviation of the log returns between consecutive points
  whose time is within ``vol_window`` seconds (``> time_last - vol_window``); ``None``
  with fewer than two returns. Per 1m step, not annualised.
- ``slope``: least-squares slope of ``ln(close)`` against time in minutes over the same
  window (log-price change per minute); ``None`` with fewer than two points.
- Regime: each time a minute closes (a later minute arrives), the closed minute's
  ``vol15m`` joins the symbol's history (the last ``regime_lookback`` samples).
  ``high_vol`` when the current ``vol15m`` is above the ``regime_percentile`` (80th,
  linear interpolation) of that history, ``normal`` otherwise, ``warming_up`` while the
  history has fewer than ``regime_min_samples`` samples.
- Stress events, per asset class thresholds: ``move_1m`` when ``|r1m| >= move_1m``,
  ``move_5m`` when ``|r5m| >= move_5m``, ``vol_spike`` when ``vol15m >= vol_spike`` times
  the median of the history (warm history only). At most one event per symbol and kind
  per ``cooldown`` seconds (30).
- Correlation: each symbol's last close per ``corr_bucket`` seconds; the base's newest
  ``lookback`` buckets (``lookback_high_vol`` while the base is ``high_vol``); for each
  other symbol the buckets both have, log returns between consecutive common buckets,
  Pearson correlation of the two return series when there are ``corr_min_points``;
  the ``corr_top`` largest by absolute value.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

MINUTE = 60
EVENT_KINDS = ("move_1m", "move_5m", "vol_spike")


@dataclass(frozen=True, slots=True)
class Thresholds:
    move_1m: float = 0.005
    move_5m: float = 0.01
    vol_spike: float = 2.5


@dataclass(frozen=True)
class PulseConfig:
    vol_window: int = 900
    regime_percentile: float = 80.0
    regime_lookback: int = 240
    regime_min_samples: int = 20
    cooldown: float = 30.0
    thresholds: Mapping[str, Thresholds] = field(default_factory=lambda: {"default": Thresholds()})
    corr_bucket: int = 60
    corr_lookback: int = 60
    corr_lookback_high_vol: int = 30
    corr_min_points: int = 5
    corr_top: int = 10

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> "PulseConfig":
        th = {k.lower(): Thresholds(**{n: float(v) for n, v in spec.items()})
              for k, spec in (raw.get("THRESHOLDS") or {}).items()}
        th.setdefault("default", Thresholds())
        conf = cls(
            vol_window=int(raw.get("VOL_WINDOW", 900)),
            regime_percentile=float(raw.get("REGIME_PERCENTILE", 80.0)),
            regime_lookback=int(raw.get("REGIME_LOOKBACK", 240)),
            regime_min_samples=int(raw.get("REGIME_MIN_SAMPLES", 20)),
            cooldown=float(raw.get("COOLDOWN", 30.0)),
            thresholds=th,
            corr_bucket=int(raw.get("CORR_BUCKET", 60)),
            corr_lookback=int(raw.get("CORR_LOOKBACK", 60)),
            corr_lookback_high_vol=int(raw.get("CORR_LOOKBACK_HIGH_VOL", 30)),
            corr_min_points=int(raw.get("CORR_MIN_POINTS", 5)),
            corr_top=int(raw.get("CORR_TOP", 10)),
        )
        if conf.vol_window < MINUTE or conf.corr_bucket < MINUTE or conf.corr_bucket % MINUTE:
            raise ValueError("VOL_WINDOW and CORR_BUCKET must be whole minutes (>= 60)")
        if not 0 < conf.regime_percentile < 100 or conf.corr_min_points < 2:
            raise ValueError("REGIME_PERCENTILE must be in (0, 100) and CORR_MIN_POINTS >= 2")
        return conf

    def for_class(self, asset_class: str) -> Thresholds:
        return self.thresholds.get(asset_class) or self.thresholds["default"]

    @property
    def history_points(self) -> int:
        """1m points a symbol must keep: returns over 15m, the vol window, the correlation look-back."""
        corr = (max(self.corr_lookback, self.corr_lookback_high_vol) + 1) * self.corr_bucket // MINUTE
        return max(16, self.vol_window // MINUTE + 1, corr) + 1


@dataclass(slots=True)
class Mover:
    symbol: str
    asset_class: str
    time: int
    last: float
    r1m: float | None
    r5m: float | None
    r15m: float | None
    vol15m: float | None
    slope: float | None
    regime: str

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "class": self.asset_class, "time": self.time, "last": self.last,
                "r1m": self.r1m, "r5m": self.r5m, "r15m": self.r15m, "vol15m": self.vol15m,
                "slope": self.slope, "regime": self.regime}


@dataclass(slots=True)
class StressEvent:
    symbol: str
    asset_class: str
    kind: str
    time: float
    value: float
    threshold: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "class": self.asset_class, "kind": self.kind, "time": self.time,
                "value": self.value, "threshold": self.threshold, "message": self.message}


# -- the metrics, on plain lists (ascending times) ------------------------------------------
def return_over(times: list[int], closes: list[float], seconds: int) -> float | None:
    if not times:
        return None
    i = bisect.bisect_right(times, times[-1] - seconds) - 1
    if i < 0:
        return None
    return closes[-1] / closes[i] - 1.0


def window_start(times: list[int], seconds: int) -> int:
    """Index of the first point with ``time > time_last - seconds``."""
    return bisect.bisect_right(times, times[-1] - seconds)


def volatility(closes: list[float], start: int, end: int) -> float | None:
    """Sample stdev of log returns of ``closes[start:end]``."""
    n = end - start - 1
    if n < 2:
        return None
    log = math.log
    rets = [log(closes[i] / closes[i - 1]) for i in range(start + 1, end)]
    mean = sum(rets) / n
    return math.sqrt(sum((r - mean) ** 2 for r in rets) / (n - 1))


def log_slope(times: list[int], closes: list[float], start: int, end: int) -> float | None:
    n = end - start
    if n < 2:
        return None
    xs = [times[i] / MINUTE for i in range(start, end)]
    ys = [math.log(closes[i]) for i in range(start, end)]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def percentile(sorted_values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(sorted_values) - 1) * p / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def pearson(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sxx = syy = 0.0
    for x, y in zip(xs, ys):
        dx, dy = x - mx, y - my
        sxy += dx * dy
        sxx += dx * dx
        syy += dy * dy
    if sxx <= 0 or syy <= 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


# -- per-symbol state ------------------------------------------------------------------------
class _Symbol:
    __slots__ = ("symbol", "asset_class", "times", "closes", "hist", "hist_sorted", "last_event",
                 "mover", "dirty", "keep")

    def __init__(self, symbol: str, asset_class: str, keep: int) -> None:
        self.symbol = symbol
        self.asset_class = asset_class
        self.times: list[int] = []
        self.closes: list[float] = []
        self.hist: list[float] = []          # volatility of closed minutes, oldest first
        self.hist_sorted: list[float] = []
        self.last_event: dict[str, float] = {}
        self.mover: Mover | None = None
        self.dirty = False
        self.keep = keep


class PulseEngine:
    """Movers, regimes, stress events and correlations of a universe of symbols."""

    def __init__(self, config: PulseConfig | None = None) -> None:
        self.config = config or PulseConfig()
        self._symbols: dict[str, _Symbol] = {}
        self._keep = self.config.history_points

    def watch(self, symbol: str, asset_class: str) -> None:
        if symbol not in self._symbols:
            self._symbols[symbol] = _Symbol(symbol, asset_class, self._keep)

    def unwatch(self, symbol: str) -> None:
        self._symbols.pop(symbol, None)

    def watched(self) -> list[str]:
        return list(self._symbols)

    def update(self, symbol: str, time: float, close: float) -> bool:
        """A candle close at exchange ``time``; False if ignored (unknown symbol, bad price, older minute)."""
        st = self._symbols.get(symbol)
        if st is None or not (close > 0 and math.isfinite(close)):
            return False
        minute = int(time // MINUTE) * MINUTE
        times = st.times
        if times and minute <= times[-1]:
            if minute == times[-1]:
                st.closes[-1] = close
            else:
                i = bisect.bisect_left(times, minute)
                if times[i] != minute:
                    return False  # an older minute we never saw: not worth reordering history
                st.closes[i] = close
        else:
            if len(times) >= 2:
                self._close_minute(st)
            times.append(minute)
            st.closes.append(close)
            if len(times) > 2 * st.keep:  # amortised trim
                del times[: len(times) - st.keep]
                del st.closes[: len(st.closes) - st.keep]
        st.dirty = True
        return True

    def _close_minute(self, st: _Symbol) -> None:
        """The newest minute is final (a later one arrived): record its volatility."""
        times, closes = st.times, st.closes
        vol = volatility(closes, window_start(times, self.config.vol_window), len(times))
        if vol is None:
            return
        st.hist.append(vol)
        bisect.insort(st.hist_sorted, vol)
        if len(st.hist) > self.config.regime_lookback:
            old = st.hist.pop(0)
            del st.hist_sorted[bisect.bisect_left(st.hist_sorted, old)]

    def _regime(self, st: _Symbol, vol: float | None) -> str:
        conf = self.config
        if vol is None or len(st.hist_sorted) < conf.regime_min_samples:
            return "warming_up"
        return "high_vol" if vol > percentile(st.hist_sorted, conf.regime_percentile) else "normal"

    def _metrics(self, st: _Symbol) -> Mover:
        times, closes = st.times, st.closes
        start = window_start(times, self.config.vol_window)
        end = len(times)
        vol = volatility(closes, start, end)
        return Mover(
            symbol=st.symbol, asset_class=st.asset_class, time=times[-1], last=closes[-1],
            r1m=return_over(times, closes, MINUTE), r5m=return_over(times, closes, 5 * MINUTE),
            r15m=return_over(times, closes, 15 * MINUTE), vol15m=vol,
            slope=log_slope(times, closes, start, end), regime=self._regime(st, vol),
        )

    def _events(self, st: _Symbol, m: Mover, now: float) -> list[StressEvent]:
        th = self.config.for_class(st.asset_class)
        found: list[tuple[str, float, float, str]] = []
        if m.r1m is not None and abs(m.r1m) >= th.move_1m:
            found.append(("move_1m", m.r1m, th.move_1m, f"{st.symbol} {m.r1m:+.2%} in 1m"))
        if m.r5m is not None and abs(m.r5m) >= th.move_5m:
            found.append(("move_5m", m.r5m, th.move_5m, f"{st.symbol} {m.r5m:+.2%} in 5m"))
        if m.vol15m is not None and len(st.hist_sorted) >= self.config.regime_min_samples:
            median = percentile(st.hist_sorted, 50.0)
            if median > 0 and m.vol15m >= th.vol_spike * median:
                ratio = m.vol15m / median
                found.append(("vol_spike", ratio, th.vol_spike,
                              f"{st.symbol} 15m volatility {ratio:.1f}x its recent median"))
        out = []
        for kind, value, threshold, message in found:
            last = st.last_event.get(kind)
            if last is not None and now - last < self.config.cooldown:
                continue
            st.last_event[kind] = now
            out.append(StressEvent(st.symbol, st.asset_class, kind, now, value, threshold, message))
        return out

    def step(self, now: float, *, emit: bool = True) -> tuple[list[Mover], list[StressEvent]]:
        """Recompute the symbols updated since the last step: their movers and new stress events."""
        movers: list[Mover] = []
        events: list[StressEvent] = []
        for st in self._symbols.values():
            if not st.dirty:
                continue
            st.dirty = False
            m = self._metrics(st)
            st.mover = m
            movers.append(m)
            if emit:
                events.extend(self._events(st, m, now))
        return movers, events

    def movers(self) -> list[Mover]:
        return [st.mover for st in self._symbols.values() if st.mover is not None]

    def regime(self, symbol: str) -> str:
        st = self._symbols.get(symbol)
        return st.mover.regime if st is not None and st.mover is not None else "warming_up"

    def series(self, symbol: str) -> tuple[list[int], list[float]]:
        st = self._symbols[symbol]
        return st.times, st.closes

    # -- correlation ---------------------------------------------------------------------
    def _buckets(self, st: _Symbol, since: int) -> dict[int, float]:
        bucket = self.config.corr_bucket
        out: dict[int, float] = {}
        times, closes = st.times, st.closes
        for i in range(bisect.bisect_left(times, since), len(times)):
            out[times[i] - times[i] % bucket] = closes[i]  # ascending: the last close wins
        return out

    def correlations(self, base: str) -> dict[str, Any]:
        conf = self.config
        st = self._symbols.get(base)
        regime = self.regime(base)
        lookback = conf.corr_lookback_high_vol if regime == "high_vol" else conf.corr_lookback
        card: dict[str, Any] = {"base": base, "bucket": conf.corr_bucket, "lookback": lookback,
                                "regime": regime, "top": []}
        if st is None or not st.times:
            return card
        bucket = conf.corr_bucket
        newest = st.times[-1] - st.times[-1] % bucket
        since = newest - (lookback - 1) * bucket
        base_b = self._buckets(st, since)
        log = math.log
        rows = []
        for other in self._symbols.values():
            if other is st or not other.times or other.times[-1] < since:
                continue
            ob = self._buckets(other, since)
            common = sorted(b for b in ob if b in base_b and b <= newest)
            if len(common) - 1 < conf.corr_min_points:
                continue
            xs = [log(base_b[common[i]] / base_b[common[i - 1]]) for i in range(1, len(common))]
            ys = [log(ob[common[i]] / ob[common[i - 1]]) for i in range(1, len(common))]
            r = pearson(xs, ys)
            if r is not None:
                rows.append((other.symbol, r, len(xs)))
        rows.sort(key=lambda row: (-abs(row[1]), row[0]))
        card["top"] = [{"symbol": s, "corr": r, "n": n} for s, r, n in rows[: conf.corr_top]]
        return card


def snapshot(movers: Iterable[Mover], correlation: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
    """The ``pulse`` frame browsers get: every mover (grouped client-side) and the card."""
    return {"type": "pulse", "time": now, "movers": [m.as_dict() for m in movers],
            "correlation": dict(correlation) if correlation is not None else None}
