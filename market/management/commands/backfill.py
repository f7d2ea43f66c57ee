"""``manage.py backfill [--symbol …] [--tf …] [--from …] [--to …]``: fetch missing candles from
Fyers history (``/data/history``) into the database.

Every request goes through the process's one rate limiter (10/s, 200/min; a 429 backs
off), in chunks within Fyers' per-request spans; writes are idempotent upserts of what
differs, so running it twice changes nothing the second time. By default each
timeframe continues from its newest stored candle (or ``FYERS_BACKFILL_DAYS`` back).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand, CommandError

from market import selectors
from market.live.broadcast import candles_publish
from market.conf import market
from market.core.timeframes import Timeframe, TimeframeError
from market.vendors.fyers import sync
from market.vendors.fyers.auth import TokenStore
from market.conf import fyers_conf
from market.vendors.fyers.history import BudgetExhausted, HistoryClient, HistoryError, TokenRejected
from market.vendors.fyers.ratelimit import shared_limiter

logger = logging.getLogger("market.fyers")


def parse_time(value: str, *, end: bool = False) -> int:
    """Epoch seconds, or an ISO date (UTC midnight; an end date includes that whole day)
    or datetime (UTC unless it carries an offset)."""
    if value.isdigit():
        return int(value)
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value) + dt.timedelta(days=1 if end else 0)
            return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date, datetime or epoch: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp())


class Command(BaseCommand):
    help = "Back-fill candles from Fyers history, rate-limited and idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--symbol", action="append", default=[],
                            help="ticker (repeatable); default: active Fyers symbols")
        parser.add_argument("--tf", action="append", default=[],
                            help="stored timeframe (repeatable); default: all stored")
        parser.add_argument("--from", dest="start",
                            help="epoch, YYYY-MM-DD or ISO datetime (default: newest stored)")
        parser.add_argument("--to", dest="end",
                            help="epoch, YYYY-MM-DD (inclusive) or ISO datetime (default: now)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts) -> None:
        conf = fyers_conf()
        stored_token = TokenStore(conf.token_file).load()
        if stored_token is None or not stored_token.valid(time.time()):
            raise CommandError("no valid Fyers access token: run `manage.py fyers_login` first")
        plan = market().plan
        try:
            tfs = [Timeframe.parse(code) for code in opts["tf"]] or list(plan.stored)
        except TimeframeError as exc:
            raise CommandError(str(exc)) from None
        not_stored = [tf.code for tf in tfs if not plan.is_stored(tf)]
        if not_stored:
            raise CommandError(f"not stored timeframes: {' '.join(not_stored)} "
                               f"(stored: {' '.join(tf.code for tf in plan.stored)})")
        if opts["symbol"]:
            symbols = selectors.symbol_list_by_tickers(tickers=opts["symbol"])
            unknown = sorted(set(opts["symbol"]) - {s.ticker for s in symbols})
            if unknown:
                raise CommandError(f"unknown symbols: {', '.join(unknown)} (import_symbols first)")
        else:
            symbols = selectors.symbol_list(active=True, source="fyers")
        now = time.time()
        start = parse_time(opts["start"]) if opts["start"] else None
        end = min(parse_time(opts["end"], end=True), int(now)) if opts["end"] else int(now)
        client = HistoryClient(client_id=conf.client_id, access_token=stored_token.access_token,
                               limiter=shared_limiter(conf),
                               api_base=conf.api_base)
        layer = get_channel_layer()
        total = sync.SyncResult()
        failed: list[str] = []
        bar = None
        if sys.stderr.isatty() and not opts["no_progress"]:
            from tqdm import tqdm

            bar = tqdm(total=len(symbols) * len(tfs), unit="series", desc="backfill")
        started = time.monotonic()
        try:
            for symbol in symbols:
                for tf in tfs:
                    try:
                        result = sync.backfill(client, symbol, [tf], start, end, now=now,
                                               default_days=conf.backfill_days)
                    except TokenRejected as exc:
                        raise CommandError(f"{exc}: run `manage.py fyers_login`") from None
                    except BudgetExhausted as exc:  # every process of the app together: stop, resume tomorrow
                        raise CommandError(f"{exc}; what was fetched is stored, run backfill again after "
                                           f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(exc.resumes))}") from None
                    except HistoryError as exc:
                        failed.append(f"{symbol.ticker} {tf.code}: {exc}")
                        logger.warning("backfill %s %s failed: %s", symbol.ticker, tf.code, exc)
                        result = sync.SyncResult()
                    if result.updates and layer is not None:
                        try:
                            async_to_sync(candles_publish)(layer, result.updates, revised=True)
                        except Exception as exc:  # noqa: BLE001 - stored anyway
                            logger.warning("publishing back-filled candles failed: %s", exc)
                    total.add(result)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(requests=client.requests, candles=len(total.updates))
        finally:
            if bar is not None:
                bar.close()
        elapsed = time.monotonic() - started
        skipped = " ".join(f"{k}={v}" for k, v in sorted(total.skipped.items())) or "none"
        logger.info("backfill: %d symbols x %d timeframes, %d requests, %d candles written, skipped (%s), "
                    "%d failed, %.1fs, rate-limit waits %.1fs, 429s %d", len(symbols), len(tfs),
                    client.requests, len(total.updates), skipped, len(failed), elapsed,
                    client.limiter.waited, client.limiter.throttled)
        self.stdout.write(f"backfill: {len(total.updates)} candles written from {client.requests} requests "
                          f"in {elapsed:.1f}s; {len(failed)} failed")
        for line in failed[:20]:
            self.stdout.write(f"  {line}")
