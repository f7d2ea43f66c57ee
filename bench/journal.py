"""Tick journal size per hour of a 500-symbol live feed (market/feed/journal.py).

Writes a shortened run: Fyers-shaped ``sf`` messages for ``--symbols`` NSE equities
(``market.vendors.fyers.recording.fyers_session``: prices to 0.05, cumulative day volume,
exchange times), parsed by the live feed's own parser, every accepted tick appended to a
real ``TickJournal`` in a temporary directory and synced (one write + fsync) every
``SYNC_INTERVAL`` of simulated time, as the runner does. The bytes per tick it measures are
scaled to an hour at each assumed rate. The assumed rates: 4 ticks/s per symbol is the
simulated feed's (``SIM_RATE``); 1–2 is an NSE cash symbol in Fyers full mode on a normal
day (a message per change of last price or volume, repeats dropped).

What stays on disk is far less: segments a committed checkpoint covers (every flush,
0.5 s) are deleted, so the journal holds one to two segments (``SEGMENT_SECONDS``, 60 s)
of ticks; it grows at the hourly rate only while the database cannot be written.

    python bench/journal.py [--symbols 500] [--ticks 400000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from market.core.types import Tick  # noqa: E402
from market.feed.journal import SEGMENT_SECONDS, SYNC_INTERVAL, TickJournal  # noqa: E402
from market.vendors.fyers import messages as fyers_messages  # noqa: E402
from market.vendors.fyers.recording import fyers_session  # noqa: E402

RATES = (1.0, 2.0, 4.0)  # ticks per second per symbol


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--ticks", type=int, default=400_000)
    args = ap.parse_args()
    ticks = [t for t in map(fyers_messages.parse, fyers_session(symbols=args.symbols, indices=0, messages=args.ticks,
                                                                  repeat_every=0, seed=3, rate=4.0))
             if type(t) is Tick]
    batch = max(1, int(args.symbols * RATES[-1] * SYNC_INTERVAL))  # ticks per sync at the highest rate
    with tempfile.TemporaryDirectory(prefix="tickchart-journal-") as tmp:
        journal = TickJournal(tmp, max_bytes=1 << 40, segment_seconds=1e9)
        journal.open()
        started = time.perf_counter()
        for i, tick in enumerate(ticks, 1):
            journal.append(tick)
            if i % batch == 0:
                journal.sync()
        journal.sync()
        elapsed = time.perf_counter() - started
        size = journal.bytes
    per_tick = size / len(ticks)
    print(f"{len(ticks)} ticks of {args.symbols} symbols journaled: {size / 1e6:.1f} MB, {per_tick:.1f} bytes a tick; "
          f"append + sync {len(ticks) / elapsed:,.0f} ticks/s ({journal.batches} fsynced batches of {batch})")
    print()
    print(f"| ticks/s per symbol | ticks/s ({args.symbols} symbols) | journal per hour | per 6 h 15 min session "
          f"| on disk normally (≤ 2 × {SEGMENT_SECONDS:.0f} s) |")
    print("|---|---|---|---|---|")
    for rate in RATES:
        per_second = rate * args.symbols
        hour = per_tick * per_second * 3600
        print(f"| {rate:g} | {per_second:,.0f} | {hour / 1e6:,.0f} MB | {hour * 6.25 / 1e9:.2f} GB "
              f"| {per_tick * per_second * 2 * SEGMENT_SECONDS / 1e6:.1f} MB |")


if __name__ == "__main__":
    main()
