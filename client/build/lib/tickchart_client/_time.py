"""Times as the server speaks them (epoch seconds UTC) from what people type."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

TimeLike = int | float | str | dt.datetime | dt.date | None

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def to_epoch(value: object, tz: str, *, end_of_day: bool = False) -> int | None:
    """Epoch seconds for ``value``: an epoch number, an aware datetime, or a naive datetime,
    date or ISO string read in the exchange's time zone ``tz``. A bare date as an end bound
    (``end_of_day``) means the whole day: its last second."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a time cannot be a bool")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        if _DATE.match(text):
            value = dt.date.fromisoformat(text)
        else:
            try:
                value = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"not a time: {value!r} (use epoch seconds, YYYY-MM-DD or ISO 8601)") from None
    zone = ZoneInfo(tz)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return int(value.timestamp())
    if isinstance(value, dt.date):
        day = value + dt.timedelta(days=1) if end_of_day else value
        midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
        return midnight - 1 if end_of_day else midnight
    raise TypeError(f"not a time: {value!r}")


def needs_zone(*values: object) -> bool:
    """Whether reading any of ``values`` depends on the exchange's time zone."""
    for v in values:
        if isinstance(v, dt.datetime):
            if v.tzinfo is None:
                return True
        elif isinstance(v, dt.date):
            return True
        elif isinstance(v, str) and not v.strip().lstrip("-").isdigit():
            return True
    return False
