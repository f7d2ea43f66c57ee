"""Candle files (CSV and Parquet) for ``manage.py export_candles`` / ``import_candles``.

Framework-free: rows in, rows out. A row is ``(symbol, timeframe, time, open, high, low,
close, volume, ticks)``, ``time`` the bucket start in epoch seconds UTC. Readers and
writers stream: CSV line by line, Parquet one row group (``BATCH`` rows) at a time, so
memory stays constant whatever the file's size. ``pyarrow`` is imported only when a
Parquet file is opened.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Sequence

from market.core.timeframes import Timeframe, TimeframeError

COLUMNS: tuple[str, ...] = ("symbol", "timeframe", "time", "open", "high", "low", "close", "volume", "ticks")
FORMATS: tuple[str, ...] = ("csv", "parquet")
BATCH = 10_000

Row = tuple[str, str, int, float, float, float, float, float, int]


class CandleFileError(ValueError):
    """A malformed file or row; ``row`` is the 1-based data row (CSV: file line ``row + 1``)."""

    def __init__(self, message: str, *, row: int | None = None, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else (f"row {row}: " if row is not None else "")
        super().__init__(where + message)
        self.row = row
        self.line = line


def format_of(path: str | Path, given: str | None = None) -> str:
    """``csv`` or ``parquet``: ``given``, else from the file name's suffix."""
    fmt = (given or Path(path).suffix.lstrip(".")).lower()
    if fmt == "pq":
        fmt = "parquet"
    if fmt not in FORMATS:
        raise CandleFileError(f"unknown format {fmt or '(none)'!r} of {path}; use --format csv or parquet")
    return fmt


def validate(raw: Sequence[Any]) -> Row:
    """One row checked and typed; raises ``CandleFileError`` (without a position)."""
    if len(raw) != len(COLUMNS):
        raise CandleFileError(f"expected {len(COLUMNS)} fields ({','.join(COLUMNS)}), got {len(raw)}")
    symbol, tf = str(raw[0] or "").strip(), str(raw[1] or "").strip()
    if not symbol:
        raise CandleFileError("empty symbol")
    try:
        Timeframe.parse(tf)
    except TimeframeError as e:
        raise CandleFileError(str(e)) from None
    try:
        t = int(raw[2])
        o, h, lo, c, v = (float(x) for x in raw[3:8])
        ticks = int(raw[8])
    except (TypeError, ValueError) as e:
        raise CandleFileError(f"not a number: {e}") from None
    if not all(math.isfinite(x) for x in (o, h, lo, c, v)):
        raise CandleFileError("open/high/low/close/volume must be finite")
    if t < 0 or ticks < 0 or v < 0:
        raise CandleFileError("time, volume and ticks must not be negative")
    if not (lo <= min(o, c) and h >= max(o, c)):
        raise CandleFileError(f"low {lo} / high {h} do not bound open {o} and close {c}")
    return (symbol, tf, t, o, h, lo, c, v, ticks)


# -- CSV ------------------------------------------------------------------------------------

def write_csv(rows: Iterable[Sequence[Any]], out: IO[str]) -> int:
    """A header line, then one line per row; returns the number of rows."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    n = 0
    for row in rows:
        w.writerow([repr(x) if isinstance(x, float) else x for x in row])
        n += 1
    return n


def read_csv(src: IO[str]) -> Iterator[tuple[int, Row]]:
    """``(line number, row)`` of each data line, validated; raises ``CandleFileError`` naming
    the line of the first malformed one (rows before it have been yielded)."""
    reader = csv.reader(src)
    header = next(reader, None)
    if header is None:
        return
    if tuple(h.strip() for h in header) != COLUMNS:
        raise CandleFileError(f"header must be {','.join(COLUMNS)}", line=1)
    for raw in reader:
        line = reader.line_num
        if not raw:
            continue
        try:
            yield line, validate(raw)
        except CandleFileError as e:
            raise CandleFileError(str(e), line=line) from None


# -- Parquet ----------------------------------------------------------------------------------

def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("symbol", pa.string()), ("timeframe", pa.string()), ("time", pa.int64()),
        ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
        ("volume", pa.float64()), ("ticks", pa.int64()),
    ])


def write_parquet(rows: Iterable[Sequence[Any]], path: str | Path, *, batch: int = BATCH) -> int:
    """One row group per ``batch`` rows (zstd); returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema()
    n = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        cols: list[list[Any]] = [[] for _ in COLUMNS]
        for row in rows:
            for col, x in zip(cols, row, strict=True):
                col.append(x)
            n += 1
            if len(cols[0]) >= batch:
                writer.write_table(pa.Table.from_arrays(cols, schema=schema))
                cols = [[] for _ in COLUMNS]
        if cols[0] or n == 0:
            writer.write_table(pa.Table.from_arrays(cols, schema=schema))
    return n


def read_parquet(path: str | Path, *, batch: int = BATCH) -> Iterator[tuple[int, Row]]:
    """``(row number, row)``, 1-based, validated, read ``batch`` rows at a time."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(str(path))
    names = tuple(f.schema_arrow.names)
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise CandleFileError(f"{path} lacks column(s) {', '.join(missing)}")
    n = 0
    for rb in f.iter_batches(batch_size=batch, columns=list(COLUMNS)):
        cols = [rb.column(i).to_pylist() for i in range(len(COLUMNS))]
        for raw in zip(*cols):
            n += 1
            try:
                yield n, validate(raw)
            except CandleFileError as e:
                raise CandleFileError(str(e), row=n) from None


def count_rows(path: str | Path, fmt: str) -> int | None:
    """Rows in the file when cheap to know (Parquet metadata), else None."""
    if fmt != "parquet":
        return None
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(str(path)).metadata.num_rows)


def parse_when(text: str | None) -> int | None:
    """Epoch seconds from ``1717200000`` or an ISO date/time (``2024-06-01``, ``…T09:15``,
    UTC unless it names an offset); None stays None."""
    if text is None or text == "":
        return None
    from datetime import datetime, timezone

    try:
        return int(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise CandleFileError(f"not a time: {text!r} (epoch seconds or ISO date/time)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


# -- chart exports (GET /api/candles.csv / .parquet) ------------------------------------------
# One symbol and timeframe, as the chart shows it: exchange-local time, the candle, and any
# study columns (``ema:20``, ``macd:12:26:9.hist``: the alert keys). Encoded page by page,
# so the server streams any length in constant memory.

CANDLE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "ticks")


def study_columns(rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Flat column names of a page's study rows (``key`` or ``key.part``)."""
    out = []
    for key, values in rows.items():
        parts = [k for k in (values[0] if values else {"value": None}) if k != "time"]
        out += [key] if parts == ["value"] else [f"{key}.{p}" for p in parts]
    return out


def study_values(rows: dict[str, list[dict[str, Any]]], i: int) -> list[Any]:
    """The ``i``-th candle's study values, in ``study_columns`` order."""
    out: list[Any] = []
    for values in rows.values():
        row = values[i]
        out += [v for k, v in row.items() if k != "time"]
    return out


class ChartCsv:
    """CSV text: ``time`` (ISO 8601, exchange-local, with offset), ``epoch``, the candle,
    then study columns."""

    def __init__(self, tz: str, studies: Sequence[str] = ()) -> None:
        from zoneinfo import ZoneInfo

        self.zone = ZoneInfo(tz)
        self.studies = list(studies)

    def header(self) -> str:
        return ",".join(("time", "epoch", *CANDLE_FIELDS, *self.studies)) + "\n"

    def page(self, candles: Sequence[Any], study_rows: dict[str, list[dict[str, Any]]] | None = None) -> str:
        from datetime import datetime

        lines = []
        zone = self.zone
        for i, c in enumerate(candles):
            values = [datetime.fromtimestamp(c.time, zone).isoformat(), c.time, c.open, c.high, c.low, c.close,
                      c.volume, c.ticks]
            if study_rows:
                values += study_values(study_rows, i)
            lines.append(",".join("" if v is None else str(v) for v in values))
        return "\n".join(lines) + "\n" if lines else ""


class ChartParquet:
    """Parquet bytes, one row group per page: ``time`` as a timestamp in the exchange's
    zone, the candle, then study columns (float64). ``page`` returns what is ready to send;
    ``close`` the rest (the footer)."""

    def __init__(self, tz: str, studies: Sequence[str] = ()) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.studies = list(studies)
        self.schema = pa.schema([
            ("time", pa.timestamp("s", tz=tz)), ("open", pa.float64()), ("high", pa.float64()),
            ("low", pa.float64()), ("close", pa.float64()), ("volume", pa.float64()), ("ticks", pa.int64()),
            *[(name, pa.float64()) for name in self.studies],
        ])
        self.sink = _Drain()
        self.writer = pq.ParquetWriter(pa.PythonFile(self.sink, mode="w"), self.schema, compression="zstd")

    def _ready(self) -> bytes:
        return self.sink.drain()

    def page(self, candles: Sequence[Any], study_rows: dict[str, list[dict[str, Any]]] | None = None) -> bytes:
        if not candles:
            return b""
        cols: list[list[Any]] = [[c.time for c in candles], [c.open for c in candles], [c.high for c in candles],
                                 [c.low for c in candles], [c.close for c in candles], [c.volume for c in candles],
                                 [c.ticks for c in candles]]
        if study_rows:
            per = [study_values(study_rows, i) for i in range(len(candles))]
            cols += [[row[j] for row in per] for j in range(len(self.studies))]
        self.writer.write_table(self.pa.Table.from_arrays(cols, schema=self.schema))
        return self._ready()

    def close(self) -> bytes:
        self.writer.close()
        return self._ready()


class _Drain:
    """A write-only file that hands over what was written since the last ``drain`` (so a
    streamed Parquet file never sits in memory whole)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts = []
        return out
