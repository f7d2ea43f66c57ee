"""Studies (indicators) over candles, exact against TA-Lib's batch functions (issue 11).

A study key is ``name:p1:p2…``; missing parameters take their defaults and the key is
normalised to carry them all (``ema`` → ``ema:20``, ``macd`` → ``macd:12:26:9``,
``bb:20:2.0`` → ``bb:20:2``). ``parse_studies`` reads a request's keys (at most
``MAX_STUDIES``) and raises ``StudyError`` naming the bad key or parameter.

Definitions: TA-Lib's batch functions, run with their default seeding (``SMA``, ``EMA``
seeded with an SMA, ``WMA``, ``BBANDS`` with ``matype`` SMA and ``nbdevup = nbdevdn = K``
population standard deviations, Wilder ``RSI`` and ``ATR``, ``MACD``, ``STOCH`` with
``fastk = K``, an SMA of ``S`` for %K and an SMA of ``D`` for %D, ``OBV``), plus two from
TradingView:

- ``vwap``: ``ta.vwap(hlc3)``: the running sum of (high + low + close) / 3 × volume over the
  running sum of volume, restarted at each trading session's first candle (the trading
  day from ``market.core.sessions``: NSE 09:15 IST, a round-the-clock market 00:00 UTC; on
  a ``1d`` chart every candle is its own session). Null while the session has no volume.
- ``supertrend:N:F``: ``ta.supertrend(F, N)`` exactly as TradingView documents its Pine
  definition, on TA-Lib's Wilder ``ATR(N)`` and ``hl2``. ``direction`` keeps
  TradingView's sign convention: **-1 is an up-trend** (the value is the lower band,
  under the price) and **+1 a down-trend** (the upper band); the first candle with an
  ATR is +1. Null where the ATR is still warming up.

Index symbols (no volume) get null ``vwap`` and ``obv``; NaN (warm-up) is ``None``.

Warm-up (``Study.warmup``). The values must equal the batch function run over the whole
stored series from its first candle, so a caller that computes over a later start must
feed enough candles before the first one it shows:

- windowed studies (SMA, WMA, BB, STOCH) depend on a fixed look-back only: exact;
- recursive ones with a decaying memory (EMA, RSI, ATR, MACD) forget their start as
  ``(1 - α)^n`` (EMA α = 2 / (N + 1), Wilder α = 1 / N). After ``n`` candles with
  ``(1 - α)^n ≤ DECAY`` = 1e-18 two runs started anywhere differ by at most 1e-18 × their
  difference at the later start, which is bounded by the series' price range: below
  double precision, so 1e-6 relative holds even near a MACD zero crossing. MACD adds the
  slow EMA's and the signal EMA's warm-ups (the signal starts on an already converged
  MACD);
- ``obv`` is a running total from the first candle and ``supertrend``'s ratcheting bands
  have no bound on how long they remember their start: both take the whole series
  (``warmup`` is ``None``);
- ``vwap`` restarts each session, so it needs the candles back to the session start of
  the first candle shown (``Study.session``), not a count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt
import talib

from market.core.sessions import Session
from market.core.timeframes import Timeframe
from market.core.types import Candle

MAX_STUDIES = 8
MAX_PERIOD = 1000
DECAY = 1e-18

Array = npt.NDArray[np.float64]
Row = dict[str, Any]


class StudyError(ValueError):
    """A bad study key; the message names it."""


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    default: float
    low: float
    high: float
    integer: bool = True


@dataclass(frozen=True, slots=True)
class _Spec:
    params: tuple[_Param, ...]
    fields: tuple[str, ...]  # output fields besides "time"
    uses_volume: bool = False


def _period(name: str, default: int, low: int = 2) -> _Param:
    return _Param(name, default, low, MAX_PERIOD)


_VALUE = ("value",)
SPECS: dict[str, _Spec] = {
    "sma": _Spec((_period("N", 20),), _VALUE),
    "ema": _Spec((_period("N", 20),), _VALUE),
    "wma": _Spec((_period("N", 20),), _VALUE),
    "bb": _Spec((_period("N", 20), _Param("K", 2, 0.001, 50, integer=False)), ("upper", "middle", "lower")),
    "rsi": _Spec((_period("N", 14),), _VALUE),
    "atr": _Spec((_period("N", 14, low=1),), _VALUE),
    "macd": _Spec((_period("F", 12), _period("S", 26), _period("G", 9, low=1)), ("macd", "signal", "hist")),
    "stoch": _Spec((_period("K", 14, low=1), _period("S", 3, low=1), _period("D", 3, low=1)), ("k", "d")),
    "obv": _Spec((), _VALUE, uses_volume=True),
    "vwap": _Spec((), _VALUE, uses_volume=True),
    "supertrend": _Spec((_period("N", 10, low=1), _Param("F", 3, 0.001, 100, integer=False)),
                        ("value", "direction")),
}


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _decay(alpha: float) -> int:
    """Candles after which a recursive average with weight ``alpha`` forgets its start
    to within ``DECAY``: the least ``n`` with ``(1 - alpha)^n <= DECAY``."""
    if alpha >= 1:
        return 0
    return math.ceil(math.log(DECAY) / math.log1p(-alpha))


@dataclass(frozen=True, slots=True)
class Study:
    """One parsed study: ``name`` and its full parameter tuple."""

    name: str
    params: tuple[float, ...]

    @property
    def key(self) -> str:
        return ":".join([self.name, *(_fmt(p) for p in self.params)])

    @property
    def fields(self) -> tuple[str, ...]:
        return SPECS[self.name].fields

    @property
    def warmup(self) -> int | None:
        """Candles needed before the first shown one (``None``: the whole series)."""
        p = [int(x) for x in self.params]
        name = self.name
        if name in ("sma", "wma", "bb"):
            return p[0] - 1
        if name == "stoch":
            return p[0] + p[1] + p[2] - 3
        if name == "ema":
            return p[0] - 1 + _decay(2 / (p[0] + 1))
        if name in ("rsi", "atr"):
            return p[0] + _decay(1 / p[0])
        if name == "macd":
            fast, slow, signal = p
            return slow + signal - 2 + _decay(2 / (max(fast, slow) + 1)) + _decay(2 / (signal + 1))
        if name == "vwap":
            return 0
        return None  # obv, supertrend

    @property
    def session(self) -> bool:
        """Needs the candles back to the first shown candle's session start."""
        return self.name == "vwap"


def parse_study(raw: str) -> Study:
    key = raw.strip()
    name, *values = key.lower().split(":")
    spec = SPECS.get(name)
    if spec is None:
        raise StudyError(f"unknown study {key!r} (known: {', '.join(SPECS)})")
    if len(values) > len(spec.params):
        raise StudyError(f"study {key!r} takes at most {len(spec.params)} parameters")
    params: list[float] = []
    for i, param in enumerate(spec.params):
        text = values[i].strip() if i < len(values) else None
        if text is None:
            params.append(param.default)
            continue
        params.append(_number(key, param, text))
    if name == "macd" and params[0] >= params[1]:
        raise StudyError(f"study {key!r}: F must be less than S")
    return Study(name, tuple(params))


def _number(key: str, param: _Param, text: str) -> float:
    what = f"study {key!r}: parameter {param.name}"
    ok = text.isascii() and (text.isdigit() if param.integer
                             else text.replace(".", "", 1).isdigit() and not text.endswith("."))
    if not ok or len(text) > 12:
        kind = "an integer" if param.integer else "a number"
        raise StudyError(f"{what} must be {kind}, not {text!r}")
    value = int(text) if param.integer else float(text)
    if not param.low <= value <= param.high:
        raise StudyError(f"{what} must be between {_fmt(param.low)} and {_fmt(param.high)}")
    return value


def parse_studies(raw: str | Iterable[str]) -> list[Study]:
    """Studies of a request: a comma-separated string or a list of keys; repeats (after
    normalisation) are kept once, in their first place."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    if isinstance(raw, str) and not raw.strip():
        return []
    if len(items) > MAX_STUDIES:
        raise StudyError(f"at most {MAX_STUDIES} studies, got {len(items)}")
    out: dict[str, Study] = {}
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise StudyError(f"empty study key {item!r}")
        study = parse_study(item)
        out.setdefault(study.key, study)
    return list(out.values())


def warmup(studies: Sequence[Study]) -> int | None:
    """Candles needed before the first shown one for all of ``studies`` (None: all)."""
    need = 0
    for s in studies:
        w = s.warmup
        if w is None:
            return None
        need = max(need, w)
    return need


# ---------------------------------------------------------------- the computations


@dataclass(frozen=True, slots=True)
class Series:
    """Candles as arrays (ascending), with the trading-day label of each."""

    time: npt.NDArray[np.int64]
    high: Array
    low: Array
    close: Array
    volume: Array

    @classmethod
    def of(cls, candles: Sequence[Candle]) -> "Series":
        n = len(candles)

        def column(name: str) -> Array:
            return np.fromiter(map(attrgetter(name), candles), dtype=np.float64, count=n)

        return cls(time=np.fromiter(map(attrgetter("time"), candles), dtype=np.int64, count=n),
                   high=column("high"), low=column("low"), close=column("close"), volume=column("volume"))


def session_labels(times: npt.NDArray[np.int64], tf: Timeframe, session: Session) -> npt.NDArray[np.int64]:
    """The trading day (its label) of each candle time: what VWAP restarts on."""
    if tf.is_daily:
        return times.copy()  # a 1d candle is one whole session
    if session.round_the_clock:
        return times - times % 86400
    out = np.empty_like(times)
    day = None
    for i, t in enumerate(times.tolist()):
        if day is None or not day.contains(t):
            day = session.day_of(t)
        out[i] = day.label
    return out


def session_start(t: int, tf: Timeframe, session: Session) -> int:
    """Where the session holding candle time ``t`` starts (a candle time bound)."""
    if tf.is_daily:
        return t
    return session.day_of(t).open


def vwap(s: Series, labels: npt.NDArray[np.int64]) -> Array:
    """TradingView ``ta.vwap(hlc3)``, restarted where ``labels`` changes."""
    n = len(s.close)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    pv = (s.high + s.low + s.close) / 3.0 * s.volume
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], n]
    for a, b in zip(starts.tolist(), ends.tolist()):
        num = np.cumsum(pv[a:b])
        den = np.cumsum(s.volume[a:b])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a:b] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


@dataclass(frozen=True, slots=True)
class TrendState:
    """Supertrend after a candle: what the next candle's step needs (Pine's ``[1]`` values)."""

    close: float = math.nan   # the candle's close
    atr: float = math.nan     # its ATR (NaN while the ATR warms up)
    up: float = 0.0           # nz(upperBand), nz(lowerBand): 0 while the bands are na
    low: float = 0.0
    st: float = math.nan      # its supertrend value


def supertrend_step(prev: TrendState, high: float, low: float, close: float, atr: float,
                    factor: float) -> tuple[TrendState, float, float]:
    """One candle of TradingView's ``ta.supertrend``: ``(state, value, direction)``."""
    if atr != atr:  # ATR still na: Pine's bands fall back to nz(prev) = 0
        return TrendState(close, atr, prev.up, prev.low, prev.st), math.nan, math.nan
    hl2 = (high + low) / 2.0
    up, lo = hl2 + factor * atr, hl2 - factor * atr
    pc = prev.close
    if not (lo > prev.low or pc < prev.low):
        lo = prev.low
    if not (up < prev.up or pc > prev.up):
        up = prev.up
    if prev.atr != prev.atr:  # the first candle with an ATR
        d = 1
    elif prev.st == prev.up:
        d = -1 if close > up else 1
    else:
        d = 1 if close < lo else -1
    st = lo if d == -1 else up
    return TrendState(close, atr, up, lo, st), st, d


def atr_step(prev_atr: float, prev_close: float, high: float, low: float, period: int) -> float:
    """TA-Lib's Wilder ATR one candle on (its own operations, so the value is the batch one)."""
    tr = max(high - low, abs(prev_close - high), abs(low - prev_close))
    return (prev_atr * (period - 1) + tr) / period


def supertrend_run(s: Series, period: int, factor: float) -> tuple[Array, Array, TrendState]:
    """Supertrend over the whole series: values, directions, and the state after the last."""
    atr = talib.ATR(s.high, s.low, s.close, timeperiod=period).tolist()
    high, low, close = s.high.tolist(), s.low.tolist(), s.close.tolist()
    n = len(close)
    value = [math.nan] * n
    direction = [math.nan] * n
    state = TrendState()
    step = supertrend_step
    for i in range(n):
        state, value[i], direction[i] = step(state, high[i], low[i], close[i], atr[i], factor)
    return np.array(value), np.array(direction), state


def supertrend(s: Series, period: int, factor: float) -> tuple[Array, Array]:
    """TradingView's ``ta.supertrend(factor, period)`` (its documented Pine code) on
    TA-Lib's ATR; ``direction`` -1 up-trend, +1 down-trend; NaN while the ATR warms up."""
    value, direction, _ = supertrend_run(s, period, factor)
    return value, direction


def _outputs(study: Study, s: Series, labels: Callable[[], npt.NDArray[np.int64]],
             no_volume: bool) -> tuple[Array, ...]:
    p = study.params
    n = len(s.close)
    name = study.name
    if name in ("obv", "vwap") and (no_volume or not s.volume.any()):
        return (np.full(n, np.nan),)
    if name == "sma":
        return (talib.SMA(s.close, timeperiod=int(p[0])),)
    if name == "ema":
        return (talib.EMA(s.close, timeperiod=int(p[0])),)
    if name == "wma":
        return (talib.WMA(s.close, timeperiod=int(p[0])),)
    if name == "bb":
        return tuple(talib.BBANDS(s.close, timeperiod=int(p[0]), nbdevup=p[1], nbdevdn=p[1], matype=0))
    if name == "rsi":
        return (talib.RSI(s.close, timeperiod=int(p[0])),)
    if name == "atr":
        return (talib.ATR(s.high, s.low, s.close, timeperiod=int(p[0])),)
    if name == "macd":
        return tuple(talib.MACD(s.close, fastperiod=int(p[0]), slowperiod=int(p[1]), signalperiod=int(p[2])))
    if name == "stoch":
        return tuple(talib.STOCH(s.high, s.low, s.close, fastk_period=int(p[0]), slowk_period=int(p[1]),
                                 slowk_matype=0, slowd_period=int(p[2]), slowd_matype=0))
    if name == "obv":
        return (talib.OBV(s.close, s.volume),)
    if name == "vwap":
        return (vwap(s, labels()),)
    if name == "supertrend":
        return supertrend(s, int(p[0]), float(p[1]))
    raise StudyError(f"unknown study {name!r}")  # pragma: no cover (parse_study checks)


def _nulls(a: Array) -> list[float | None]:
    return [None if v != v else v for v in a.tolist()]


def compute(studies: Sequence[Study], candles: Sequence[Candle], *, tf: Timeframe, session: Session,
            skip: int = 0, no_volume: bool = False) -> dict[str, list[Row]]:
    """Each study over ``candles`` (warm-up first), as rows for ``candles[skip:]``:
    ``{key: [{"time": t, <fields>: value | None}, …]}`` in candle order."""
    if not studies:
        return {}
    if len(candles) <= skip:
        return {study.key: [] for study in studies}
    s = Series.of(candles)
    cache: list[npt.NDArray[np.int64]] = []

    def labels() -> npt.NDArray[np.int64]:
        if not cache:
            cache.append(session_labels(s.time, tf, session))
        return cache[0]

    times = s.time[skip:].tolist()
    out: dict[str, list[Row]] = {}
    for study in studies:
        arrays = _outputs(study, s, labels, no_volume)
        columns = [_nulls(a[skip:]) for a in arrays]
        if study.name == "supertrend":
            columns[1] = [None if d is None else int(d) for d in columns[1]]
        out[study.key] = _rows(times, study.fields, columns)
    return out


def _rows(times: list[int], fields: tuple[str, ...], columns: list[list[Any]]) -> list[Row]:
    # One literal per arity: ``dict(zip(...))`` per row costs 5x as much (bench/studies.py).
    if len(fields) == 1:
        (a,) = fields
        return [{"time": t, a: x} for t, x in zip(times, columns[0])]
    if len(fields) == 2:
        a, b = fields
        return [{"time": t, a: x, b: y} for t, x, y in zip(times, *columns)]
    a, b, c = fields
    return [{"time": t, a: x, b: y, c: z} for t, x, y, z in zip(times, *columns)]
