"""What ``export_candles`` and ``import_candles`` share: the file and filter options, and
their checks (one set of words and errors for both)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from market.conf import market
from market.core import candle_files as cf


def add_file_arguments(parser: CommandParser, *, path_help: str) -> None:
    parser.add_argument("path", help=path_help)
    parser.add_argument("--format", choices=cf.FORMATS, help="default: from the file's suffix")
    parser.add_argument("--symbol", action="append", default=[], help="only this ticker (repeatable; default all)")
    parser.add_argument("--tf", action="append", default=[], help="only this stored timeframe (repeatable; default all)")
    parser.add_argument("--from", dest="start", help="bucket start >= this (epoch seconds or ISO date/time, UTC)")
    parser.add_argument("--to", dest="end", help="bucket start < this (epoch seconds or ISO date/time, UTC)")
    parser.add_argument("--no-progress", action="store_true")


def file_options(opts: dict[str, Any]) -> tuple[str, int | None, int | None]:
    """``(format, start, end)`` from the options; a ``CommandError`` names what is wrong."""
    stored = {tf.code for tf in market().plan.stored}
    bad = [t for t in opts["tf"] if t not in stored]
    if bad:
        raise CommandError(f"not a stored timeframe: {', '.join(bad)} (stored: {' '.join(sorted(stored))})")
    path = opts["path"]
    try:
        fmt = "csv" if path == "-" else cf.format_of(path, opts["format"])
        return fmt, cf.parse_when(opts["start"]), cf.parse_when(opts["end"])
    except cf.CandleFileError as e:
        raise CommandError(str(e)) from None
