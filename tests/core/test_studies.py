"""Studies (issue 11): keys, and values equal to TA-Lib's batch functions over the whole
series from its first candle, also when computed from a later start with the warm-up that
``Study.warmup`` / ``Study.session`` ask for; VWAP and Supertrend by hand and against an
independent transcription of TradingView's Pine code."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import talib

from market.core import studies as st
from market.core.derive import aggregate
from market.core.studies import MAX_STUDIES, StudyError, parse_studies, parse_study
from market.core.types import Candle
from tests.core.helpers import DAY1, NSE, RTC, TF, ist, utc

ALL = ["sma", "ema", "wma", "bb", "rsi", "atr", "macd", "stoch", "obv", "vwap", "supertrend",
       "ema:50", "sma:5", "bb:10:1.5", "rsi:2", "macd:5:35:5", "stoch:5:1:1", "supertrend:7:2.5", "atr:1"]


# ------------------------------------------------------------------ series


def nse_minutes(days: int, seed: int, *, gaps: bool = True, start=DAY1) -> list[Candle]:
    """NSE 1m candles, 09:15–15:30 IST, weekdays only, with missing minutes (no ticks, no
    candle) and an opening jump each day."""
    rng = random.Random(seed)
    out: list[Candle] = []
    price = 500.0
    day0 = int(ist(*start, 9, 15))
    for d in range(days * 7 // 5 + 2):
        open_ = day0 + d * 86400
        if (d % 7) in (3, 4):  # DAY1 is a Wednesday: skip Sat/Sun
            continue
        price *= math.exp(rng.gauss(0, 0.01))  # overnight gap
        for m in range(375):
            if gaps and rng.random() < 0.05:
                continue
            o = price
            price *= math.exp(rng.gauss(0, 0.001))
            hi = max(o, price) * (1 + abs(rng.gauss(0, 0.0005)))
            lo = min(o, price) * (1 - abs(rng.gauss(0, 0.0005)))
            vol = float(rng.randint(0, 5000)) if m else float(rng.randint(10_000, 50_000))
            out.append(Candle(open_ + 60 * m, o, hi, lo, price, vol, 1))
        if len({c.time // 86400 for c in out}) >= days:
            break
    return out


def random_walk(n: int, seed: int, *, start: int | None = None, step: int = 300) -> list[Candle]:
    """A round-the-clock series (the DEMO market), every ``step`` s, a few long gaps."""
    rng = np.random.default_rng(seed)
    t = int(utc(2024, 11, 20, 13, 0)) if start is None else start
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    out = []
    prev = close[0]
    for i in range(n):
        o, c = prev, close[i]
        hi = max(o, c) + abs(rng.normal(0, 0.05))
        lo = min(o, c) - abs(rng.normal(0, 0.05))
        out.append(Candle(t, float(o), float(hi), float(lo), float(c), float(rng.integers(1, 1000)), 1))
        t += step * (int(rng.integers(2, 40)) if rng.random() < 0.01 else 1)
        prev = c
    return out


def arrays(candles):
    s = st.Series.of(candles)
    return s.high, s.low, s.close, s.volume


# ------------------------------------------------------------------ references


def pine_vwap(candles, session, tf):
    """``ta.vwap(hlc3)`` written out: restart on each new trading day."""
    out, num, den, day = [], 0.0, 0.0, None
    for c in candles:
        label = c.time if tf.is_daily else session.day_of(c.time).label
        if label != day:
            num = den = 0.0
            day = label
        num += (c.high + c.low + c.close) / 3 * c.volume
        den += c.volume
        out.append(num / den if den else None)
    return out


def pine_supertrend(candles, factor, period):
    """TradingView's documented ``pine_supertrend`` line by line, with Pine's na rules
    (a comparison with na is false, ``nz(na) = 0``), on TA-Lib's ATR."""
    h, l, c, _ = arrays(candles)
    atr = talib.ATR(h, l, c, timeperiod=period)
    na = math.isnan
    lower_hist, upper_hist, st_hist, out = [], [], [], []
    for i in range(len(candles)):
        src = (h[i] + l[i]) / 2
        upper_band = src + factor * atr[i]
        lower_band = src - factor * atr[i]
        prev_lower = 0.0 if i == 0 or na(lower_hist[-1]) else lower_hist[-1]
        prev_upper = 0.0 if i == 0 or na(upper_hist[-1]) else upper_hist[-1]
        close1 = c[i - 1] if i else math.nan
        lower_band = lower_band if (lower_band > prev_lower or close1 < prev_lower) else prev_lower
        upper_band = upper_band if (upper_band < prev_upper or close1 > prev_upper) else prev_upper
        prev_st = st_hist[-1] if i else math.nan
        if i == 0 or na(atr[i - 1]):
            direction = 1
        elif prev_st == prev_upper:
            direction = -1 if c[i] > upper_band else 1
        else:
            direction = 1 if c[i] < lower_band else -1
        value = lower_band if direction == -1 else upper_band
        lower_hist.append(lower_band)
        upper_hist.append(upper_band)
        st_hist.append(value)
        # The study shows null while the ATR warms up (Pine's bands are 0 / na there).
        out.append((None, None) if na(atr[i]) else (value, direction))
    return out


def reference(study, candles, session, tf):
    """The whole-series batch values of ``study``, as rows without ``time``."""
    h, l, c, v = arrays(candles)
    p = [int(x) if float(x).is_integer() else x for x in study.params]
    name = study.name
    if name == "sma":
        cols = [talib.SMA(c, p[0])]
    elif name == "ema":
        cols = [talib.EMA(c, p[0])]
    elif name == "wma":
        cols = [talib.WMA(c, p[0])]
    elif name == "bb":
        cols = list(talib.BBANDS(c, p[0], float(p[1]), float(p[1]), 0))
    elif name == "rsi":
        cols = [talib.RSI(c, p[0])]
    elif name == "atr":
        cols = [talib.ATR(h, l, c, p[0])]
    elif name == "macd":
        cols = list(talib.MACD(c, p[0], p[1], p[2]))
    elif name == "stoch":
        cols = list(talib.STOCH(h, l, c, p[0], p[1], 0, p[2], 0))
    elif name == "obv":
        cols = [talib.OBV(c, v)]
    elif name == "vwap":
        return [{"value": x} for x in pine_vwap(candles, session, tf)]
    else:
        return [{"value": a, "direction": b} for a, b in pine_supertrend(candles, float(p[1]), p[0])]
    return [dict(zip(study.fields, (None if math.isnan(x) else float(x) for x in row))) for row in zip(*cols)]


def assert_rows_equal(got, want, key):
    """Same nulls, and every value within 1e-6 relative (pytest.approx's rule, vectorised)."""
    assert len(got) == len(want), key
    for field in (want[0] if want else {}):
        g = [r[field] for r in got]
        w = [r[field] for r in want]
        nulls = [i for i, x in enumerate(g) if x is None]
        assert nulls == [i for i, x in enumerate(w) if x is None], (key, field)
        a = np.array([x for x in g if x is not None], dtype=float)
        b = np.array([x for x in w if x is not None], dtype=float)
        bad = np.flatnonzero(np.abs(a - b) > np.maximum(1e-6 * np.abs(b), 1e-12))
        assert bad.size == 0, (key, field, bad[:5].tolist(), a[bad[:5]].tolist(), b[bad[:5]].tolist())


# ------------------------------------------------------------------ keys


@pytest.mark.parametrize("raw, key", [
    ("ema", "ema:20"), ("sma", "sma:20"), ("wma", "wma:20"), ("bb", "bb:20:2"), ("bb:20:2.0", "bb:20:2"),
    ("bb:10", "bb:10:2"), ("bb:20:2.5", "bb:20:2.5"), ("rsi", "rsi:14"), ("atr", "atr:14"),
    ("macd", "macd:12:26:9"), ("macd:5", "macd:5:26:9"), ("stoch", "stoch:14:3:3"), ("obv", "obv"),
    ("vwap", "vwap"), ("supertrend", "supertrend:10:3"), ("supertrend:7:2.5", "supertrend:7:2.5"),
    (" EMA:050 ", "ema:50"),
])
def test_keys_are_normalised_to_carry_every_parameter(raw, key):
    assert parse_study(raw).key == key


@pytest.mark.parametrize("raw, names", [
    ("foo", "foo"), ("ema:x", "ema:x"), ("ema:1", "N"), ("ema:1001", "N"), ("ema:20:3", "ema:20:3"),
    ("bb:20:-1", "K"), ("bb:20:0", "K"), ("ema:", "N"), ("rsi:1.5", "N"), ("macd:26:12", "macd:26:12"),
    ("supertrend:10:abc", "F"), ("obv:3", "obv:3"), ("bb:20:1e3", "K"), ("ema:２０", "N"),
])
def test_bad_keys_raise_naming_the_key_or_parameter(raw, names):
    with pytest.raises(StudyError) as exc:
        parse_study(raw)
    assert names in str(exc.value)


def test_a_request_takes_at_most_eight_and_keeps_repeats_once():
    assert [s.key for s in parse_studies("ema,ema:20,rsi")] == ["ema:20", "rsi:14"]
    assert parse_studies("") == []
    parse_studies(",".join(["ema"] * MAX_STUDIES))
    with pytest.raises(StudyError, match="at most 8"):
        parse_studies(",".join(f"ema:{n}" for n in range(2, 11)))
    with pytest.raises(StudyError, match="empty"):
        parse_studies("ema,,rsi")
    assert [s.key for s in parse_studies(["macd", "vwap"])] == ["macd:12:26:9", "vwap"]


def test_warmups():
    assert parse_study("sma:20").warmup == 19
    assert parse_study("stoch").warmup == 17
    assert parse_study("obv").warmup is None and parse_study("supertrend").warmup is None
    assert parse_study("vwap").warmup == 0 and parse_study("vwap").session
    ema = parse_study("ema:20")
    assert (1 - 2 / 21) ** (ema.warmup - 19) <= st.DECAY < (1 - 2 / 21) ** (ema.warmup - 20)
    assert st.warmup(parse_studies("ema,rsi")) == parse_study("rsi").warmup
    assert st.warmup(parse_studies("ema,obv")) is None


# ------------------------------------------------------------------ golden values


SERIES = {
    "nse_1m": (lambda: nse_minutes(12, seed=1), NSE, TF("1m")),
    "nse_30m_derived": (lambda: list(aggregate(nse_minutes(40, seed=2), TF("30m"), NSE)), NSE, TF("30m")),
    "nse_1d": (lambda: list(aggregate(nse_minutes(60, seed=3, gaps=False), TF("1d"), NSE)), NSE, TF("1d")),
    "demo_5m": (lambda: random_walk(6000, seed=4), RTC, TF("5m")),
    "demo_1h_derived": (lambda: list(aggregate(random_walk(20000, seed=5, step=60), TF("1h"), RTC)),
                        RTC, TF("1h")),
}


_BUILT: dict[str, list[Candle]] = {}
_REFERENCE: dict[tuple[str, str], list[dict]] = {}


def built(series: str) -> list[Candle]:
    if series not in _BUILT:
        _BUILT[series] = SERIES[series][0]()
    return _BUILT[series]


def reference_of(series: str, study) -> list[dict]:
    if (series, study.key) not in _REFERENCE:
        _, session, tf = SERIES[series]
        _REFERENCE[series, study.key] = reference(study, built(series), session, tf)
    return _REFERENCE[series, study.key]


@pytest.mark.parametrize("series", SERIES)
def test_whole_series_equals_the_batch_functions(series):
    _, session, tf = SERIES[series]
    candles = built(series)
    studies = parse_studies(",".join(ALL[:8])) + parse_studies(",".join(ALL[8:16])) + parse_studies(
        ",".join(ALL[16:]))
    got = st.compute(studies, candles, tf=tf, session=session)
    for study in studies:
        rows = got[study.key]
        assert [r["time"] for r in rows] == [c.time for c in candles]
        assert_rows_equal(rows, reference_of(series, study), study.key)


@pytest.mark.parametrize("series", SERIES)
def test_a_late_start_with_its_warm_up_equals_the_whole_series(series):
    """What the API does: a page far from the first candle, computed over the warm-up the
    study asks for (a count, the session start, or everything), matches the whole series."""
    _, session, tf = SERIES[series]
    candles = built(series)
    times = [c.time for c in candles]
    studies = parse_studies(",".join(ALL[:8])) + parse_studies(",".join(ALL[8:16])) + parse_studies(
        ",".join(ALL[16:]))
    for first in (len(candles) - 300, len(candles) // 2 + 7, 40, 3):
        page = candles[first:first + 200]
        for study in studies:
            count = study.warmup
            if count is None:
                warm_from = 0
            else:
                warm_from = max(0, first - count)
                if study.session:
                    since = st.session_start(page[0].time, tf, session)
                    warm_from = min(warm_from, next(i for i, t in enumerate(times) if t >= since))
            got = st.compute([study], candles[warm_from:first + 200], tf=tf, session=session,
                             skip=first - warm_from)[study.key]
            assert [r["time"] for r in got] == [c.time for c in page]
            want = reference_of(series, study)[first:first + 200]
            assert_rows_equal(got, want, (series, first, study.key))


def test_index_symbols_get_null_vwap_and_obv():
    candles = [Candle(c.time, c.open, c.high, c.low, c.close, 0.0, c.ticks) for c in nse_minutes(2, seed=7)]
    got = st.compute(parse_studies("vwap,obv,ema"), candles, tf=TF("1m"), session=NSE, no_volume=True)
    assert all(r["value"] is None for r in got["vwap"] + got["obv"])
    assert got["ema:20"][-1]["value"] is not None
    volumes = nse_minutes(2, seed=7)
    flagged = st.compute(parse_studies("obv"), volumes, tf=TF("1m"), session=NSE, no_volume=True)
    assert all(r["value"] is None for r in flagged["obv"])
    zero = st.compute(parse_studies("obv"), candles, tf=TF("1m"), session=NSE)
    assert all(r["value"] is None for r in zero["obv"])  # volume 0 everywhere: an index


def test_output_shapes():
    candles = random_walk(100, seed=8)
    keys = parse_studies("ema,macd,bb,stoch,supertrend")
    got = st.compute(keys, candles, tf=TF("5m"), session=RTC, skip=90)
    assert set(got) == {"ema:20", "macd:12:26:9", "bb:20:2", "stoch:14:3:3", "supertrend:10:3"}
    assert set(got["ema:20"][0]) == {"time", "value"}
    assert set(got["macd:12:26:9"][0]) == {"time", "macd", "signal", "hist"}
    assert set(got["bb:20:2"][0]) == {"time", "upper", "middle", "lower"}
    assert set(got["stoch:14:3:3"][0]) == {"time", "k", "d"}
    assert set(got["supertrend:10:3"][0]) == {"time", "value", "direction"}
    assert all(len(rows) == 10 for rows in got.values())
    assert got["supertrend:10:3"][0]["direction"] in (-1, 1)
    assert isinstance(got["supertrend:10:3"][0]["direction"], int)
    assert st.compute(parse_studies("ema"), [], tf=TF("5m"), session=RTC) == {"ema:20": []}
    few = st.compute(parse_studies("ema,macd"), candles[:5], tf=TF("5m"), session=RTC)
    assert all(r["value"] is None for r in few["ema:20"])
    assert all(r["macd"] is None and r["hist"] is None for r in few["macd:12:26:9"])


# ------------------------------------------------------------------ by hand


def test_vwap_by_hand_restarts_at_the_nse_open():
    day2 = (2024, 11, 21)
    t = [int(ist(*DAY1, 15, 28)), int(ist(*DAY1, 15, 29)), int(ist(*day2, 9, 15)), int(ist(*day2, 9, 16))]
    candles = [
        Candle(t[0], 10, 12, 9, 11, 100, 1),   # tp 32/3
        Candle(t[1], 11, 13, 11, 12, 300, 1),  # tp 12
        Candle(t[2], 20, 21, 19, 20, 50, 1),   # new session: tp 20
        Candle(t[3], 20, 23, 20, 23, 0, 1),    # no volume: unchanged
    ]
    got = [r["value"] for r in st.compute(parse_studies("vwap"), candles, tf=TF("1m"), session=NSE)["vwap"]]
    assert got[0] == pytest.approx(32 / 3)
    assert got[1] == pytest.approx((32 / 3 * 100 + 12 * 300) / 400)
    assert got[2] == pytest.approx(20) and got[3] == pytest.approx(20)


def test_vwap_round_the_clock_restarts_at_midnight_utc_and_waits_for_volume():
    t = int(utc(2024, 11, 20, 23, 58))
    candles = [
        Candle(t, 1, 1, 1, 1, 0, 1),              # no volume yet: null
        Candle(t + 60, 3, 3, 3, 3, 10, 1),
        Candle(t + 120, 6, 6, 6, 6, 10, 1),       # 00:00 UTC: a new day
        Candle(t + 180, 9, 9, 9, 9, 30, 1),
    ]
    got = [r["value"] for r in st.compute(parse_studies("vwap"), candles, tf=TF("1m"), session=RTC)["vwap"]]
    assert got == [None, pytest.approx(3), pytest.approx(6), pytest.approx((60 + 270) / 40)]


def test_vwap_on_daily_candles_is_each_days_typical_price():
    candles = list(aggregate(nse_minutes(5, seed=9), TF("1d"), NSE))
    got = st.compute(parse_studies("vwap"), candles, tf=TF("1d"), session=NSE)["vwap"]
    assert [r["value"] for r in got] == pytest.approx([(c.high + c.low + c.close) / 3 for c in candles])


def test_supertrend_by_hand():
    # ATR(1) is the true range from the second candle on (TA-Lib: the first has no prior close).
    rows = [(10, 11, 9, 10), (10, 12, 10, 12), (12, 14, 12, 14), (14, 14, 8, 8), (8, 9, 7, 9)]
    candles = [Candle(60 * i, o, h, l, c, 1, 1) for i, (o, h, l, c) in enumerate(rows)]
    got = st.compute(parse_studies("supertrend:1:1"), candles, tf=TF("1m"), session=RTC)["supertrend:1:1"]
    # i=1: tr 2, hl2 11 -> bands 13 / 9; first ATR candle: direction +1 (down), value = upper 13.
    # i=2: tr 2, hl2 13 -> basic 15 / 11; upper: 15 < 13? no, close[1] 12 > 13? no -> keeps 13;
    #      lower 11 > 9 -> 11; was upper, close 14 > 13 -> -1 (up), value = lower 11.
    # i=3: tr 6, hl2 11 -> basic 17 / 5; upper: close[2] 14 > 13 -> 17; lower: 5 > 11? no,
    #      close[2] 14 < 11? no -> 11; was lower, close 8 < 11 -> +1 (down), value = upper 17.
    # i=4: tr 2, hl2 8 -> basic 10 / 6; upper 10 < 17 -> 10; lower: close[3] 8 < 11 -> 6;
    #      was upper, close 9 > 10? no -> +1, value 10.
    assert got[0] == {"time": 0, "value": None, "direction": None}
    assert [(r["value"], r["direction"]) for r in got[1:]] == [(13, 1), (11, -1), (17, 1), (10, 1)]


@pytest.mark.parametrize("seed", range(4))
def test_supertrend_matches_the_pine_script_on_long_series(seed):
    candles = random_walk(5000, seed=100 + seed)
    for key in ("supertrend", "supertrend:3:1", "supertrend:20:4.5"):
        study = parse_study(key)
        got = st.compute([study], candles, tf=TF("5m"), session=RTC)[study.key]
        want = pine_supertrend(candles, float(study.params[1]), int(study.params[0]))
        assert [(r["value"], r["direction"]) for r in got] == want
        assert {r["direction"] for r in got} == {None, -1, 1}
