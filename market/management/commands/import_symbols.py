"""``manage.py import_symbols FILE_OR_URL … [--segment NSE_CM …]``: the Fyers symbol master
(CSV without header, 21 columns, or JSON) into the symbol table, so search and the admin
know every real instrument. Rows that do not parse are reported; the rest are imported.
New symbols are inactive until activated (admin, or ``--activate``)."""

from __future__ import annotations

import logging
from pathlib import Path

import requests
from django.core.management.base import BaseCommand, CommandError

from market import selectors, services
from market.conf import fyers_conf
from market.vendors.fyers.symbol_master import Parsed, parse
from market.vendors.fyers.symbols import symbol_import

logger = logging.getLogger("market.fyers")
SEGMENTS = ("NSE_CM", "NSE_FO", "NSE_CD", "NSE_COM", "BSE_CM", "BSE_FO", "MCX_COM")


class Command(BaseCommand):
    help = "Import the Fyers symbol master (CSV or JSON, file or URL) into the symbol table."

    def add_arguments(self, parser) -> None:
        parser.add_argument("sources", nargs="*", metavar="FILE_OR_URL")
        parser.add_argument("--segment", action="append", default=[], choices=SEGMENTS,
                            help="download this segment's master from Fyers' public site (repeatable)")
        parser.add_argument("--activate", action="append", default=[], metavar="TICKER",
                            help="activate these tickers for runfeed --source fyers (repeatable)")

    def handle(self, *args, **opts) -> None:
        sources = list(opts["sources"])
        base = fyers_conf().public_base.rstrip("/")
        sources += [f"{base}/sym_details/{segment}.csv" for segment in opts["segment"]]
        if not sources:
            raise CommandError("give a FILE_OR_URL or --segment (e.g. --segment NSE_CM)")
        total_created = total_updated = total_bad = 0
        for source in sources:
            parsed = parse(self._read(source))
            created, updated = symbol_import(records=parsed.records)
            total_created += created
            total_updated += updated
            total_bad += len(parsed.errors)
            self._report(source, parsed, created, updated)
        if opts["activate"]:
            n = services.symbol_activate_many(tickers=opts["activate"], source="fyers")
            known = selectors.symbol_list_by_tickers(tickers=opts["activate"])
            missing = sorted(set(opts["activate"]) - {s.ticker for s in known})
            unknown = f"; unknown: {', '.join(missing)}" if missing else ""
            self.stdout.write(f"activated {n} symbol(s){unknown}")
        logger.info("import_symbols: %d created, %d updated, %d rows did not parse", total_created,
                    total_updated, total_bad)

    def _read(self, source: str) -> str:
        if source.startswith(("http://", "https://")):
            try:
                response = requests.get(source, timeout=60)
                response.raise_for_status()
            except requests.RequestException as exc:
                raise CommandError(f"cannot download {source}: {exc}") from None
            return response.content.decode("utf-8", errors="replace")
        path = Path(source)
        if not path.exists():
            raise CommandError(f"no such file: {source}")
        return path.read_bytes().decode("utf-8", errors="replace")

    def _report(self, source: str, parsed: Parsed, created: int, updated: int) -> None:
        self.stdout.write(f"{source}: {len(parsed.records)} symbols ({created} new, {updated} updated), "
                          f"{len(parsed.errors)} rows did not parse")
        for line, why in parsed.errors[:20]:
            self.stdout.write(f"  row {line}: {why}")
        if len(parsed.errors) > 20:
            self.stdout.write(f"  … and {len(parsed.errors) - 20} more")
