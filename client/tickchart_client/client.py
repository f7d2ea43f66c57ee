"""The HTTP side: history (paged past the server's per-request limit), symbols, alerts.

Only the standard library is needed; pandas is used when it is installed (or asked for).
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from array import array
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable, Iterator, Sequence

from tickchart_client._time import TimeLike, needs_zone, to_epoch

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from tickchart_client.stream import Update

PAGE = 10_000  # the server's largest page (TICKCHART MAX_LIMIT)
TZ_HEADER = "X-Exchange-Timezone"  # /api/candles: the symbol's exchange time zone
CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "ticks")


class TickChartError(Exception):
    """The server refused a request: ``status`` and its ``{"error"}`` message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def flatten_studies(studies: dict[str, list[dict[str, Any]]], index: int) -> dict[str, Any]:
    """One candle's study values as flat columns: ``ema:20`` for single values,
    ``macd:12:26:9.hist`` for each part of a study with several (the alert key names)."""
    out: dict[str, Any] = {}
    for key, rows in studies.items():
        row = rows[index]
        parts = [k for k in row if k != "time"]
        if parts == ["value"]:
            out[key] = row["value"]
        else:
            for part in parts:
                out[f"{key}.{part}"] = row[part]
    return out


class Client:
    """``Client("http://host:8000", token)``; the token defaults to ``$TICKCHART_TOKEN``."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, page: int = PAGE) -> None:
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("TICKCHART_TOKEN") or None
        self.timeout = timeout
        self.page = page

    def __repr__(self) -> str:  # never the token
        return f"Client({self.url!r})"

    # -- plumbing --------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "tickchart-client/0.1"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None, *, retries: int = 5) -> Any:
        """One API call's JSON; a 429 waits as long as ``Retry-After`` says and tries again."""
        return self.exchange(method, path, params, body, retries=retries)[0]

    def exchange(self, method: str, path: str, params: dict[str, Any] | None = None,
                 body: dict[str, Any] | None = None, *, retries: int = 5) -> tuple[Any, Any]:
        """``request``, with the response's headers."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None
        headers = self._headers()
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(retries + 1):
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as response:
                    raw = response.read()
                    return (json.loads(raw) if raw else None), response.headers
            except urllib.error.HTTPError as exc:
                raw = exc.read()
                if exc.code == 429 and attempt < retries:
                    time.sleep(min(60.0, float(exc.headers.get("Retry-After") or 1)))
                    continue
                try:
                    message = json.loads(raw).get("error") or raw.decode(errors="replace")
                except (ValueError, AttributeError):
                    message = raw.decode(errors="replace")[:500]
                raise TickChartError(exc.code, message) from None
        raise AssertionError("unreachable")

    # -- history ---------------------------------------------------------------------
    def zone(self, symbol: str, tf: str = "1d") -> str:
        """The exchange time zone of ``symbol`` (what the server says)."""
        _, headers = self.exchange("GET", "/api/candles", {"symbol": symbol, "tf": tf, "limit": 1})
        return headers.get(TZ_HEADER) or "UTC"

    def pages(
        self, symbol: str, tf: str, start: TimeLike = None, end: TimeLike = None, *,
        studies: Sequence[str] | str | None = None,
    ) -> Iterator[tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]] | None, str]]:
        """``(candles, study rows or None, tz)`` per page of ``self.page``, from ``start`` to
        ``end`` (inclusive; default: all stored), ascending; a derived timeframe's bucket that
        two pages both hold comes once."""
        tz = self.zone(symbol, tf) if needs_zone(start, end) else "UTC"
        cursor = to_epoch(start, tz) or 0
        last = to_epoch(end, tz, end_of_day=True)
        study_param = ",".join(studies) if isinstance(studies, (list, tuple)) else studies
        newest = -1
        while True:
            body, headers = self.exchange("GET", "/api/candles", {
                "symbol": symbol, "tf": tf, "from": cursor, "to": last, "limit": self.page, "studies": study_param,
            })
            tz = headers.get(TZ_HEADER) or tz
            candles = body["candles"]
            rows = body.get("studies")
            skip = 0  # a derived page starts at the bucket holding ``cursor``
            while skip < len(candles) and candles[skip]["time"] <= newest:
                skip += 1
            if skip < len(candles):
                fresh = candles[skip:]
                yield fresh, ({k: v[skip:] for k, v in rows.items()} if rows is not None else None), tz
                newest = fresh[-1]["time"]
            if len(candles) < self.page or skip == len(candles):
                return
            cursor = newest + 1

    def history_rows(
        self, symbol: str, tf: str, start: TimeLike = None, end: TimeLike = None, *,
        studies: Sequence[str] | str | None = None, progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """``(rows, tz)``: the candles of ``pages``, each a dict of ``time`` (epoch s) and the
        candle's fields plus flat study columns; ``progress(candles, pages)`` after each page."""
        out: list[dict[str, Any]] = []
        tz = "UTC"
        for n, (candles, rows, tz) in enumerate(self.pages(symbol, tf, start, end, studies=studies), start=1):
            for i, candle in enumerate(candles):
                out.append(candle | flatten_studies(rows, i) if rows is not None else candle)
            if progress is not None:
                progress(len(out), n)
        return out, tz

    def history(
        self, symbol: str, tf: str, start: TimeLike = None, end: TimeLike = None, *,
        studies: Sequence[str] | str | None = None, frame: bool | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> "pandas.DataFrame | list[dict[str, Any]]":
        """Candles (and studies) from ``start`` to ``end``: a pandas DataFrame indexed by
        exchange-local time when pandas is installed (``frame=True`` insists, ``False``
        declines), else the plain rows of ``history_rows``. The frame is filled a page at a
        time into typed columns (8 bytes a value), never as a list of dicts."""
        if frame is not False:
            try:
                import pandas as pd
            except ImportError:
                if frame:
                    raise
            else:
                return _frame(self.pages(symbol, tf, start, end, studies=studies), pd, progress)
        return self.history_rows(symbol, tf, start, end, studies=studies, progress=progress)[0]

    # -- live ------------------------------------------------------------------------
    def stream(self, symbols: str | Iterable[str], tf: str, *, since: TimeLike = None,
               studies: Sequence[str] | None = None, **options: Any) -> AsyncIterator["Update"]:
        """Live candles (``tickchart_client.stream.stream``): an async iterator that
        reconnects and resumes without gaps or duplicates."""
        from tickchart_client.stream import stream

        tz = "UTC"
        if needs_zone(since):
            first = symbols if isinstance(symbols, str) else next(iter(symbols))
            tz = self.zone(first, tf)
        return stream(self, [symbols] if isinstance(symbols, str) else list(symbols), tf,
                      since=to_epoch(since, tz), studies=studies, **options)

    # -- symbols and alerts ----------------------------------------------------------
    def symbols(self, query: str = "") -> list[dict[str, Any]]:
        return self.request("GET", "/api/symbols", {"q": query})["symbols"]

    def alerts(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/alerts")["alerts"]

    def alert(self, alert_id: int) -> dict[str, Any]:
        return self.request("GET", f"/api/alerts/{int(alert_id)}")

    def alert_create(self, **fields: Any) -> dict[str, Any]:
        """``alert_create(symbol=..., tf=..., left="price", op="crosses_above", right=123.0,
        trigger="once", message=..., webhook=...)`` (the token needs the ``alerts`` scope)."""
        return self.request("POST", "/api/alerts", body=fields)

    def alert_update(self, alert_id: int, **fields: Any) -> dict[str, Any]:
        return self.request("PATCH", f"/api/alerts/{int(alert_id)}", body=fields)

    def alert_delete(self, alert_id: int) -> None:
        self.request("DELETE", f"/api/alerts/{int(alert_id)}")

    def alert_events(self, alert_id: int) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/alerts/{int(alert_id)}/events")["events"]

    # -- markers ---------------------------------------------------------------------
    def markers(self, symbol: str, start: TimeLike = None, end: TimeLike = None) -> list[dict[str, Any]]:
        tz = self.zone(symbol) if needs_zone(start, end) else "UTC"
        return self.request("GET", "/api/markers", {"symbol": symbol, "from": to_epoch(start, tz),
                                                    "to": to_epoch(end, tz, end_of_day=True)})["markers"]

    def marker_create(self, symbol: str, time: TimeLike, *, price: float | None = None, shape: str = "circle",
                      color: str = "#2962ff", text: str = "", position: str | None = None) -> dict[str, Any]:
        """Put a marker on every open chart of ``symbol`` (the token needs the ``markers``
        scope); ``shape`` arrowUp | arrowDown | circle | square."""
        tz = self.zone(symbol) if needs_zone(time) else "UTC"
        body: dict[str, Any] = {"symbol": symbol, "time": to_epoch(time, tz), "shape": shape, "color": color,
                                "text": text}
        if price is not None:
            body["price"] = price
        if position is not None:
            body["position"] = position
        return self.request("POST", "/api/markers", body=body)

    def marker_delete(self, marker_id: int) -> None:
        self.request("DELETE", f"/api/markers/{int(marker_id)}")


def _frame(pages: Iterable[tuple[list[dict[str, Any]], Any, str]], pd: Any,
           progress: Callable[[int, int], None] | None) -> "pandas.DataFrame":
    """A DataFrame indexed by exchange-local time from ``Client.pages``, built column-wise."""
    import numpy as np

    columns: dict[str, array] = {"time": array("q")}
    for name in CANDLE_FIELDS:
        columns[name] = array("q" if name == "ticks" else "d")
    tz, count, n = "UTC", 0, 0
    for n, (candles, rows, tz) in enumerate(pages, start=1):
        for name, col in columns.items():
            if name in CANDLE_FIELDS or name == "time":
                col.extend(c[name] for c in candles)
        if rows is not None:
            for i in range(len(candles)):
                for name, value in flatten_studies(rows, i).items():
                    col = columns.get(name)
                    if col is None:
                        col = columns[name] = array("d", [math.nan]) * count
                    col.append(math.nan if value is None else value)
        count += len(candles)
        if progress is not None:
            progress(count, n)
    data = {name: np.frombuffer(col, dtype=np.int64 if col.typecode == "q" else np.float64)
            for name, col in columns.items() if name != "time"}
    index = pd.DatetimeIndex(pd.to_datetime(np.frombuffer(columns["time"], dtype=np.int64), unit="s", utc=True),
                             name="time").tz_convert(tz)
    return pd.DataFrame(data, index=index, copy=False)
