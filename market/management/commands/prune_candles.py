"""``manage.py prune_candles [--tf 5s]… [--dry-run]``: retention per stored timeframe.

``MARKET["RETENTION_DAYS"]`` (default ``{"5s": 30, "1m": 730}``; a timeframe not listed is
kept forever) says how long each timeframe is kept. On PostgreSQL, where candles are
partitioned by time (migration 0012), the partitions wholly older than ``now - days`` are
detached and dropped, never deleted row by row; the partition holding the cutoff stays
until it expires wholly (a day for 5 s, a month for 1 m), and the partitions ahead are made.
On SQLite (or a timeframe kept whole) candles whose bucket starts before ``now - days`` are
deleted in batches, one short transaction each (``--batch``).

Then, on PostgreSQL, every range partition that has ended (yesterday's 5 s day, last
month's 1 m) and was not yet compacted is rewritten in (symbol, timeframe, time) order
(``CLUSTER``; ``--no-compact`` skips it): candles arrive time-major, so a symbol's newest
5,000 5 s candles were on ~5,000 pages and are then on ~70. It locks only the partition
being rewritten, for seconds; run the command after the session closes.
"""

from __future__ import annotations

import argparse
import logging
import time

from django.core.management.base import BaseCommand, CommandError

from market import selectors, services
from market.conf import market

log = logging.getLogger("market.retention")


class Command(BaseCommand):
    help = "Delete candles older than their timeframe's retention (MARKET RETENTION_DAYS)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tf", action="append", default=[], help="only this timeframe (repeatable)")
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
        parser.add_argument("--batch", type=int, default=10_000, help="rows per delete transaction")
        parser.add_argument("--no-compact", action="store_true",
                            help="do not rewrite ended partitions in key order (PostgreSQL)")
        parser.add_argument("--now", type=float, default=None, help=argparse.SUPPRESS)

    def handle(self, *args, **opts) -> None:
        retention = dict(market().retention_days)
        unknown = [t for t in opts["tf"] if t not in retention]
        if unknown:
            raise CommandError(f"no retention set for {', '.join(unknown)} (set: {retention or 'none'})")
        now = opts["now"] if opts["now"] is not None else time.time()
        total = 0
        for code, days in retention.items():
            if opts["tf"] and code not in opts["tf"]:
                continue
            before = int(now - days * 86400)
            dropped = services.candle_partition_drop(timeframe=code, before=before, dry_run=opts["dry_run"])
            if dropped is not None:
                for name, count in dropped:
                    self.stdout.write(f"{code}: {'would drop' if opts['dry_run'] else 'dropped'} "
                                      f"partition {name} ({count} candles)")
                n = sum(count for _, count in dropped)
            elif opts["dry_run"]:
                n = selectors.candle_count_older(timeframe=code, before=before)
            else:
                n = services.candle_prune(timeframe=code, before=before, batch=opts["batch"])
            total += n
            line = f"{code}: {'would delete' if opts['dry_run'] else 'deleted'} {n} candles older than {days:g} days"
            log.info(line)
            self.stdout.write(line)
        self.stdout.write(f"{'would delete' if opts['dry_run'] else 'deleted'} {total} candles in all")
        if not opts["dry_run"]:
            made = services.candle_partition_ensure_ahead(now=now)
            if made:
                self.stdout.write(f"made partitions ahead: {', '.join(made)}")
        if not opts["no_compact"]:
            self._compact(int(now), dry_run=opts["dry_run"], only=opts["tf"])

    def _compact(self, now: int, *, dry_run: bool, only: list[str]) -> None:
        def done(name: str, candles: int, seconds: float) -> None:
            line = f"compacted partition {name} ({candles} candles) in {seconds:.1f} s"
            log.info(line)
            self.stdout.write(line)

        for tf in market().plan.stored:
            if only and tf.code not in only:
                continue
            todo = services.candle_partition_compact(timeframe=tf.code, now=now, dry_run=dry_run, done=done)
            if dry_run:
                for name, candles in todo or []:
                    self.stdout.write(f"{tf.code}: would compact partition {name} ({candles} candles)")

