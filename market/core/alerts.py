"""Alert conditions and their evaluation (issue 13), framework-free.

A condition is ``left op right`` on a symbol and timeframe:

- left: ``price`` (each accepted tick's price), a candle field
  ``close|high|low|open|volume`` of the timeframe, or a study key (``ema:20``,
  ``macd:12:26:9.hist``; a study with several outputs needs ``.field``);
- op: ``crosses_above crosses_below crosses above below`` or ``moves_up_pct`` /
  ``moves_down_pct`` (change of left over the last ``bars`` bars, in percent, against a
  number on the right);
- right: a number, a field/study key (bar conditions only), or ``drawing:<id>``, a line
  drawing of the same user and symbol (``core.drawings.LINE_KINDS``): its price at the
  tick's or bar's exchange time (``core.drawings.line_price``; where the line is not drawn
  nothing is compared). The writer hands the evaluator the drawing's current points
  (``Evaluator.line``), so a moved line is followed;
- trigger: ``once`` (then done), ``once_per_bar`` (at most once per bar of the timeframe),
  ``once_per_bar_close`` (closed bars only; not for ``price``).

Semantics: ``price crosses_above X`` fires on the first accepted tick whose price ≥ X when
the previous accepted tick of the symbol was < X; the first tick after creation only arms
it. Bar conditions compare a bar with the one before it. An event's id is the alert id and
the exchange time that fired it, so re-evaluating the same input fires the same ids.
The evaluator's state is a JSON-able dict (``state``), so it can be checkpointed; its
``t`` is the exchange time last evaluated, where a restart's catch-up (``catch_up``) starts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from market.core import studies as st
from market.core.drawings import line_price
from market.core.sessions import Session
from market.core.timeframes import Timeframe, TimeframeError
from market.core.types import Candle

OPS = ("crosses_above", "crosses_below", "crosses", "above", "below", "moves_up_pct", "moves_down_pct")
TRIGGERS = ("once", "once_per_bar", "once_per_bar_close")
FIELDS = ("close", "high", "low", "open", "volume")
MOVES = ("moves_up_pct", "moves_down_pct")
MAX_BARS = 1000
DRAWING = "drawing:"  # the right side ``drawing:<id>``


class AlertError(ValueError):
    """A bad alert definition; the message names the bad part."""


@dataclass(frozen=True, slots=True)
class Operand:
    """``kind``: number | price | field | study | drawing. ``key`` is the normalised text."""

    kind: str
    key: str
    number: float | None = None
    study: st.Study | None = None
    output: str | None = None
    drawing: int | None = None


def parse_operand(raw: Any, side: str) -> Operand:
    if isinstance(raw, bool):
        raise AlertError(f"{side}: must be a number or a key, not {raw!r}")
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw):
            raise AlertError(f"{side}: must be a finite number")
        return Operand("number", repr(float(raw)), number=float(raw))
    if not isinstance(raw, str) or not raw.strip():
        raise AlertError(f"{side}: must be a number, 'price', a candle field or a study key")
    text = raw.strip().lower()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise AlertError(f"{side}: must be a finite number")
        return Operand("number", repr(value), number=value)
    if text == "price":
        return Operand("price", "price")
    if text in FIELDS:
        return Operand("field", text)
    if text.startswith(DRAWING):
        pk = text[len(DRAWING):]
        if not pk.isdigit() or int(pk) < 1:
            raise AlertError(f"{side}: a drawing is drawing:<its id>, not {raw!r}")
        return Operand("drawing", f"{DRAWING}{int(pk)}", drawing=int(pk))
    name, _, output = text.partition(".")
    try:
        study = st.parse_study(name)
    except st.StudyError as exc:
        raise AlertError(f"{side}: {exc}") from None
    fields = study.fields
    if not output:
        if len(fields) != 1:
            raise AlertError(f"{side}: study {study.key!r} has several outputs; name one of "
                             f"{', '.join(study.key + '.' + f for f in fields)}")
        output = fields[0]
    elif output not in fields:
        raise AlertError(f"{side}: study {study.key!r} has no output {output!r} (has {', '.join(fields)})")
    key = study.key if len(fields) == 1 else f"{study.key}.{output}"
    return Operand("study", key, study=study, output=output)


@dataclass(frozen=True, slots=True)
class Condition:
    alert: str
    symbol: str
    tf: Timeframe
    left: Operand
    op: str
    right: Operand
    trigger: str
    bars: int = 1
    expires: float | None = None

    @property
    def on_ticks(self) -> bool:
        return self.left.kind == "price"

    @property
    def studies(self) -> list[st.Study]:
        return [o.study for o in (self.left, self.right) if o.study is not None]


def parse_condition(*, alert: str | int, symbol: str, tf: str, left: Any, op: Any, right: Any,
                    trigger: Any = "once", bars: Any = 1, expires: Any = None) -> Condition:
    """Validate one alert definition; raises ``AlertError`` naming the bad field."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise AlertError("symbol: required")
    try:
        timeframe = Timeframe.parse(tf)
    except TimeframeError as exc:
        raise AlertError(f"tf: {exc}") from None
    if op not in OPS:
        raise AlertError(f"op: must be one of {', '.join(OPS)}, not {op!r}")
    if trigger not in TRIGGERS:
        raise AlertError(f"trigger: must be one of {', '.join(TRIGGERS)}, not {trigger!r}")
    if isinstance(bars, bool) or not isinstance(bars, int) or not 1 <= bars <= MAX_BARS:
        raise AlertError(f"bars: must be an integer from 1 to {MAX_BARS}")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float))
                                or not math.isfinite(expires)):
        raise AlertError("expires: must be epoch seconds")
    lhs = parse_operand(left, "left")
    rhs = parse_operand(right, "right")
    if lhs.kind == "number":
        raise AlertError("left: must be 'price', a candle field or a study key, not a number")
    if rhs.kind == "price":
        raise AlertError("right: 'price' may only be on the left")
    if lhs.kind == "drawing":
        raise AlertError("left: a drawing may only be on the right")
    if op in MOVES and rhs.kind != "number":
        raise AlertError(f"right: {op} takes a percentage number")
    if op in MOVES and rhs.number is not None and rhs.number <= 0:
        raise AlertError(f"right: {op} takes a positive percentage")
    if lhs.kind == "price":
        if rhs.kind not in ("number", "drawing"):
            raise AlertError("right: a price alert compares with a number or a drawing:<id>")
        if trigger == "once_per_bar_close":
            raise AlertError("trigger: price alerts fire on ticks; use left 'close' for bar closes")
        if op in MOVES:
            raise AlertError(f"op: {op} works on bars; use left 'close'")
    return Condition(str(alert), symbol.strip(), timeframe, lhs, op, rhs, trigger, bars,
                     None if expires is None else float(expires))


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    alert: str
    symbol: str
    tf: str
    time: int | float
    value: float
    other: float
    op: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "alert": self.alert, "symbol": self.symbol, "tf": self.tf,
                "time": self.time, "value": self.value, "other": self.other, "op": self.op}


def event_id(alert: str, time: float) -> str:
    t = int(time) if float(time).is_integer() else repr(float(time))
    return f"{alert}@{t}"


def crossed(op: str, prev: tuple[float, float], cur: tuple[float, float]) -> bool:
    """Whether ``op`` holds going from ``prev`` (left, right) to ``cur``."""
    (pl, pr), (cl, cr) = prev, cur
    up = pl < pr and cl >= cr
    down = pl > pr and cl <= cr
    if op == "crosses_above":
        return up
    if op == "crosses_below":
        return down
    if op == "crosses":
        return up or down
    if op == "above":
        return cl > cr
    if op == "below":
        return cl < cr
    raise ValueError(op)


@dataclass
class Evaluator:
    """One alert's evaluation; ``state`` is JSON-able (``Evaluator(cond, state)`` resumes).
    ``line``: the ``(kind, points)`` of the drawing a ``drawing:<id>`` right side names,
    kept current by the writer (None: not known yet, nothing is compared)."""

    condition: Condition
    state: dict[str, Any] = field(default_factory=dict)
    line: tuple[str, list[dict[str, float]]] | None = None

    @property
    def done(self) -> bool:
        return bool(self.state.get("done"))

    def level(self, time: float) -> float | None:
        """The right side at exchange time ``time`` for a price alert (None: no line there)."""
        right = self.condition.right
        if right.kind == "number":
            return right.number
        return None if self.line is None else line_price(self.line[0], self.line[1], time)

    def _fire(self, time: float, bar: int | None, value: float, other: float) -> Event:
        c = self.condition
        if c.trigger == "once":
            self.state["done"] = True
        self.state["fired_bar"] = bar
        return Event(event_id(c.alert, time), c.alert, c.symbol, c.tf.code,
                     int(time) if float(time).is_integer() else time, value, other, c.op)

    def _expired(self, time: float) -> bool:
        return self.condition.expires is not None and time >= self.condition.expires

    def tick(self, time: float, price: float, bar: int) -> Event | None:
        """An accepted tick (exchange time, price, start of its bar of the alert's tf)."""
        c = self.condition
        if not c.on_ticks or self.done or self._expired(time):
            return None
        prev, prev_time = self.state.get("prev"), self.state.get("t")
        self.state["prev"], self.state["t"] = price, time
        level = self.level(time)
        if level is None:
            return None
        if c.op in ("above", "below"):
            ok = crossed(c.op, (price, level), (price, level))
        elif prev is None:
            return None  # the first tick after creation only arms it
        else:
            before = level if c.right.kind == "number" or prev_time is None else self.level(prev_time)
            if before is None:
                return None  # the line starts between the two ticks: this one arms it
            ok = crossed(c.op, (prev, before), (price, level))
        if not ok or (c.trigger == "once_per_bar" and self.state.get("fired_bar") == bar):
            return None
        return self._fire(time, bar, price, level)

    def catch_up(self, candle: Candle, bar: int) -> Event | None:
        """A stored 5 s candle whose ticks this evaluator never saw (the writer was down):
        the approximation of ``tick`` on it. A cross is detected only when it surely
        happened inside the candle: ``crosses_above`` when its high reaches the level and
        the previous price was below it, or its low was below and its close is back at or
        above (``crosses_below`` the mirror image); ``above``/``below`` on its high/low.
        The event's time is the candle's, its value the high (low) that reached the level."""
        c = self.condition
        if not c.on_ticks or self.done or self._expired(candle.time):
            return None
        prev = self.state.get("prev")
        self.state["prev"], self.state["t"] = candle.close, candle.time
        level = self.level(candle.time)
        if level is None:
            return None
        ref = candle.open if prev is None else prev
        up = candle.high >= level and (ref < level or (candle.low < level and candle.close >= level))
        down = candle.low <= level and (ref > level or (candle.high > level and candle.close <= level))
        hit = {"crosses_above": up, "crosses_below": down, "crosses": up or down,
               "above": candle.high > level, "below": candle.low < level}[c.op]
        if not hit or (c.trigger == "once_per_bar" and self.state.get("fired_bar") == bar):
            return None
        rising = c.op in ("crosses_above", "above") or (c.op == "crosses" and up)
        return self._fire(candle.time, bar, candle.high if rising else candle.low, level)

    def bar(self, candles: Sequence[Candle], *, session: Session, final: bool = True,
            no_volume: bool = False) -> Event | None:
        """The newest bar of ``candles`` (ascending, with enough warm-up for the studies) was
        updated (``final``: it has closed). Compares it with the bar before it."""
        c = self.condition
        if c.on_ticks or self.done or not candles:
            return None
        if final:
            self.state["t"] = candles[-1].time
        if len(candles) < 2 or (c.trigger == "once_per_bar_close" and not final):
            return None
        now = candles[-1]
        if self._expired(now.time):
            return None
        if c.trigger == "once_per_bar" and self.state.get("fired_bar") == now.time:
            return None
        need = c.bars + 1 if c.op in MOVES else 2
        if len(candles) < need:
            return None
        left = _values(c.left, candles, need, c.tf, session, no_volume)
        if c.op in MOVES:
            assert c.right.number is not None
            past, cur = left[0], left[-1]
            if past is None or cur is None or past == 0:
                return None
            change = (cur - past) / abs(past) * 100.0
            ok = change >= c.right.number if c.op == "moves_up_pct" else -change >= c.right.number
            return self._fire(now.time, now.time, cur, change) if ok else None
        right = _values(c.right, candles, need, c.tf, session, no_volume, self.line)
        if None in left or None in right:
            return None
        pl, cl = left  # type: ignore[misc]
        pr, cr = right  # type: ignore[misc]
        if not crossed(c.op, (pl, pr), (cl, cr)):  # type: ignore[arg-type]
            return None
        return self._fire(now.time, now.time, cl, cr)  # type: ignore[arg-type]


def _values(o: Operand, candles: Sequence[Candle], n: int, tf: Timeframe, session: Session,
            no_volume: bool, line: tuple[str, list[dict[str, float]]] | None = None) -> list[float | None]:
    """The operand on the last ``n`` candles (a drawing: its line at each bar's time)."""
    if o.kind == "number":
        return [o.number] * n
    if o.kind == "drawing":
        if line is None:
            return [None] * n
        return [line_price(line[0], line[1], x.time) for x in candles[-n:]]
    if o.kind == "field":
        return [float(getattr(x, o.key)) for x in candles[-n:]]
    assert o.study is not None and o.output is not None
    rows = st.compute([o.study], candles, tf=tf, session=session, skip=len(candles) - n,
                      no_volume=no_volume)[o.study.key]
    return [r[o.output] for r in rows]


def history_needed(c: Condition) -> int | None:
    """Candles a bar evaluation needs (None: the whole stored series)."""
    need = c.bars + 1 if c.op in MOVES else 2
    w = st.warmup(c.studies)
    return None if w is None else need + w


# ---------------------------------------------------------------- webhook delivery

#: Seconds to wait after the n-th failed attempt; they add up to 31.5 min (≥ 10 min).
BACKOFF = (15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 945.0)


def webhook_body(*, event_id: str, alert: int | str, symbol: str, tf: str, time: float, value: float,
                 message: str, fired_at: float) -> bytes:
    """The JSON body POSTed for an event (keys in a fixed order, so the signature is stable)."""
    return json.dumps({"id": event_id, "alert": alert, "symbol": symbol, "tf": tf, "time": time,
                       "value": value, "message": message, "fired_at": fired_at},
                      separators=(",", ":")).encode()


def webhook_signature(body: bytes, secret: str) -> str:
    """``X-TickChart-Signature``: ``sha256=<hex HMAC-SHA256 of the body with the alert's secret>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def next_attempt(attempts: int, now: float, backoff: Sequence[float] = BACKOFF) -> float | None:
    """When to retry after ``attempts`` failed ones (None: give up); ``backoff`` is
    ``TICKCHART_WEBHOOK_BACKOFF`` when set."""
    return None if attempts > len(backoff) else now + backoff[attempts - 1]
