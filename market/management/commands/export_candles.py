"""``manage.py export_candles out.csv|out.parquet [--symbol T]… [--tf 5s]… [--from D] [--to D]``.

Streams stored candles to a CSV or Parquet file (market.core.candle_files) in constant
memory: read by keyset chunks, written line by line / one row group per chunk.
"""

from __future__ import annotations

import logging
import sys
import time

from django.core.management.base import BaseCommand
from tqdm import tqdm

from market import selectors
from market.core import candle_files as cf
from market.management.candle_files import add_file_arguments, file_options

log = logging.getLogger("market.candle_files")


class Command(BaseCommand):
    help = "Export stored candles to CSV or Parquet (symbol,timeframe,time,open,high,low,close,volume,ticks)."

    def add_arguments(self, parser) -> None:
        add_file_arguments(parser, path_help="output file; '-' writes CSV to stdout")
        parser.add_argument("--chunk", type=int, default=cf.BATCH, help="rows per read / row group")

    def handle(self, *args, **opts) -> None:
        path = opts["path"]
        fmt, start, end = file_options(opts)
        filters = dict(tickers=opts["symbol"] or None, timeframes=opts["tf"] or None,
                       start=start, end=end)
        total = selectors.candle_export_count(**filters)
        rows = selectors.candle_export_iter(**filters, chunk=opts["chunk"])
        show = not opts["no_progress"] and sys.stderr.isatty()
        bar = tqdm(rows, total=total, unit=" candles", disable=not show, file=sys.stderr)
        began = time.monotonic()
        if fmt == "parquet":
            n = cf.write_parquet(bar, path, batch=opts["chunk"])
        elif path == "-":
            n = cf.write_csv(bar, sys.stdout)
        else:
            with open(path, "w", newline="", encoding="utf-8") as out:
                n = cf.write_csv(bar, out)
        bar.close()
        took = time.monotonic() - began
        msg = f"exported {n} candles to {path} ({fmt}) in {took:.1f} s ({n / took if took else 0:,.0f}/s)"
        log.info(msg)
        if path != "-":
            self.stdout.write(msg)
