"""``tickchart``: history to CSV/JSON/Parquet, live candles as JSON lines, alerts.

    tickchart history NSE:SBIN-EQ 1m --from 2026-11-01 --csv > sbin.csv
    tickchart stream NSE:SBIN-EQ NSE:TCS-EQ --tf 5s
    tickchart alerts list

The server is ``--url`` or ``$TICKCHART_URL``; the token is ``$TICKCHART_TOKEN`` or the
first line of ``--token-file`` (never an argument: those show in ``ps``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from tickchart_client.client import Client, TickChartError
from tickchart_client.stream import StreamError


def _client(args: argparse.Namespace) -> Client:
    token = None
    if args.token_file:
        token = Path(args.token_file).expanduser().read_text().strip().splitlines()[0]
    return Client(args.url, token)


def _progress(stream: Any) -> Any:
    """A progress line on a terminal (rewritten in place); nothing otherwise."""
    if not stream.isatty():
        return None

    def show(candles: int, pages: int) -> None:
        stream.write(f"\r{candles:,} candles, {pages} pages")
        stream.flush()

    return show


def _history(args: argparse.Namespace) -> int:
    client = _client(args)
    started = time.monotonic()
    rows, tz = client.history_rows(args.symbol, args.tf, args.start, args.end,
                                   studies=args.studies.split(",") if args.studies else None,
                                   progress=_progress(sys.stderr))
    zone = ZoneInfo(tz)
    for row in rows:
        row["local"] = dt.datetime.fromtimestamp(row["time"], zone).isoformat()
    columns = ["local", *[k for k in (rows[0] if rows else {"time": 0}) if k != "local"]]
    if args.parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [r.get(c) for r in rows] for c in columns})
        pq.write_table(table, args.parquet)
    elif args.json:
        for row in rows:
            sys.stdout.write(json.dumps({c: row.get(c) for c in columns}) + "\n")
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["time" if c == "local" else ("epoch" if c == "time" else c) for c in columns])
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    sys.stdout.flush()
    prefix = "\r" if sys.stderr.isatty() else ""  # ends the progress line
    sys.stderr.write(f"{prefix}{len(rows):,} candles of {args.symbol} {args.tf} in {time.monotonic() - started:.1f} s\n")
    return 0


def _stream(args: argparse.Namespace) -> int:
    client = _client(args)

    async def run() -> None:
        async for update in client.stream(args.symbols, args.tf, since=args.since,
                                          studies=args.studies.split(",") if args.studies else None):
            line = {"symbol": update.symbol, "tf": update.tf, **update.candle}
            if update.studies:
                line["studies"] = update.studies
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    return 0


def _alerts(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "list":
        out: Any = client.alerts()
    elif args.action == "events":
        out = client.alert_events(args.id)
    elif args.action == "delete":
        client.alert_delete(args.id)
        out = {"deleted": args.id}
    else:
        fields = {k: getattr(args, k) for k in ("symbol", "tf", "left", "op", "right", "trigger", "message", "webhook")
                  if getattr(args, k) is not None}
        out = client.alert_create(**fields)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tickchart", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("TICKCHART_URL", "http://127.0.0.1:8000"),
                   help="server (default $TICKCHART_URL or http://127.0.0.1:8000)")
    p.add_argument("--token-file", help="file whose first line is the token (default: $TICKCHART_TOKEN)")
    sub = p.add_subparsers(dest="command", required=True)

    h = sub.add_parser("history", help="candles (and studies) to CSV, JSON lines or Parquet")
    h.add_argument("symbol")
    h.add_argument("tf")
    h.add_argument("--from", dest="start", help="epoch seconds, YYYY-MM-DD or ISO time (exchange time)")
    h.add_argument("--to", dest="end", help="inclusive; a date means the whole day")
    h.add_argument("--studies", help="e.g. ema:20,rsi:14,macd")
    fmt = h.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout (the default)")
    fmt.add_argument("--json", action="store_true", help="JSON lines on stdout")
    fmt.add_argument("--parquet", metavar="FILE", help="a Parquet file (needs pyarrow)")
    h.set_defaults(run=_history)

    s = sub.add_parser("stream", help="live candles as JSON lines (reconnects and resumes)")
    s.add_argument("symbols", nargs="+")
    s.add_argument("--tf", default="1m")
    s.add_argument("--since", help="start from this time (epoch or ISO); default: the server's recent page")
    s.add_argument("--studies")
    s.set_defaults(run=_stream)

    a = sub.add_parser("alerts", help="list, create or delete alerts, or show one's events")
    a.add_argument("action", choices=["list", "create", "delete", "events"])
    a.add_argument("id", nargs="?", type=int)
    for name in ("symbol", "tf", "left", "op", "trigger", "message", "webhook"):
        a.add_argument(f"--{name}")
    a.add_argument("--right", type=_number_or_key)
    a.set_defaults(run=_alerts)
    return p


def _number_or_key(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "action", None) in ("delete", "events") and args.id is None:
        parser().error(f"alerts {args.action} needs an alert id")
    try:
        return args.run(args)
    except (TickChartError, StreamError) as exc:
        sys.stderr.write(f"tickchart: {exc}\n")
        return 1
    except BrokenPipeError:  # | head
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
