"""``manage.py import_candles in.csv|in.parquet [--symbol T]… [--tf 5s]… [--from D] [--to D]``.

Streams a file written by ``export_candles`` (or by hand: the header
``symbol,timeframe,time,open,high,low,close,volume,ticks``) into the candle table in
batches, each one transaction through ``services.candle_import_batch`` (the feed's
``INSERT … ON CONFLICT`` on symbol + timeframe + time), so a re-import changes nothing and
a failure keeps every batch written before it.

Unknown symbols stop the import with their names unless ``--create-symbols`` is given,
which creates them inactive (exchange: the ticker's prefix before ``:``, else ``IMPORT``).
A malformed row stops it with the file line (CSV) or row number (Parquet); the rows before
it are stored.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Iterator

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from market import services
from market.core import candle_files as cf
from market.management.candle_files import add_file_arguments, file_options

log = logging.getLogger("market.candle_files")


class Command(BaseCommand):
    help = "Import candles from CSV or Parquet (idempotent upsert on symbol + timeframe + time)."

    def add_arguments(self, parser) -> None:
        add_file_arguments(parser, path_help="input file; '-' reads CSV from stdin")
        parser.add_argument("--create-symbols", action="store_true",
                            help="create unknown tickers (inactive) instead of stopping")
        parser.add_argument("--batch", type=int, default=cf.BATCH, help="rows per transaction")

    def handle(self, *args, **opts) -> None:
        path = opts["path"]
        fmt, start, end = file_options(opts)
        symbols, tfs = set(opts["symbol"]), set(opts["tf"])
        show = not opts["no_progress"] and sys.stderr.isatty()
        began = time.monotonic()
        written = skipped = 0
        created: list[str] = []
        where = "line" if fmt == "csv" else "row"
        src = None
        try:
            if fmt == "parquet":
                numbered = cf.read_parquet(path, batch=opts["batch"])
            else:
                src = sys.stdin if path == "-" else open(path, newline="", encoding="utf-8")  # noqa: SIM115
                numbered = cf.read_csv(src)
            bar = tqdm(total=cf.count_rows(path, fmt), unit=" rows", disable=not show, file=sys.stderr)
            while True:
                chunk, error = _take(numbered, opts["batch"])
                if not chunk and error is None:
                    break
                keep = [r for _, r in chunk
                        if (not symbols or r[0] in symbols) and (not tfs or r[1] in tfs)
                        and (start is None or r[2] >= start) and (end is None or r[2] < end)]
                skipped += len(chunk) - len(keep)
                if keep:
                    try:
                        n, new = services.candle_import_batch(rows=keep, create_symbols=opts["create_symbols"])
                    except LookupError as e:
                        first = chunk[0][0]
                        raise CommandError(
                            f"{e} (batch from {where} {first}; {written} candles already imported, "
                            "use --create-symbols to create them)") from None
                    written += n
                    created += new
                bar.update(len(chunk))
                if error is not None:
                    raise error
            bar.close()
        except cf.CandleFileError as e:
            raise CommandError(f"{path}: {e}; {written} candles before it were imported") from None
        finally:
            if src is not None and src is not sys.stdin:
                src.close()
        took = time.monotonic() - began
        msg = (f"imported {written} candles from {path} ({fmt}) in {took:.1f} s "
               f"({written / took if took else 0:,.0f}/s); {skipped} filtered out; "
               f"{len(created)} symbols created{': ' + ', '.join(created[:10]) if created else ''}")
        log.info(msg)
        self.stdout.write(msg)


def _take(rows: Iterator, n: int) -> tuple[list, cf.CandleFileError | None]:
    """Up to ``n`` rows, and the error that stopped the reader (the rows before it kept)."""
    chunk: list = []
    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) >= n:
                break
    except cf.CandleFileError as e:
        return chunk, e
    return chunk, None
