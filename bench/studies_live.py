"""CPU per live candle update on /ws/market/ with 4 studies vs none (issue 11).

What the consumer does per update and stream, without the socket: with no studies the
candle frame (the relay's pre-serialised text is reused, so this is an upper bound); with
studies ``LiveStudies.update`` (once per process per update, market.core.studies_live)
plus the frame with the values. Forming updates of the newest candle and new candles
alternate, on a window seeded like a subscription's (history + warm-up).

    .venv/bin/python bench/studies_live.py [--updates 2000] [--runs 5] [--studies ema:20,rsi,macd,bb]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from market.core.frames import candle_frame  # noqa: E402
from market.core.studies import parse_studies  # noqa: E402
from market.core.studies_live import LiveStudies  # noqa: E402
from tests.core.helpers import RTC, TF  # noqa: E402
from tests.core.test_studies import random_walk  # noqa: E402


def run(keys: str, updates: int, seed_len: int) -> float:
    """CPU microseconds per update."""
    series = random_walk(seed_len + updates, seed=1, step=60)
    studies = parse_studies(keys) if keys else []
    live = LiveStudies(studies, series[:seed_len], tf=TF("1m"), session=RTC) if studies else None
    todo = []
    for c in series[seed_len:]:
        todo.append(dataclasses.replace(c, close=c.open, ticks=1))
        todo.append(c)
    todo = todo[:updates]
    start = time.process_time()
    for c in todo:
        d = c.as_dict()
        if live is None:
            candle_frame("DEMO:ALPHA", "1m", d)
        else:
            candle_frame("DEMO:ALPHA", "1m", d, live.update(c))
    return (time.process_time() - start) / len(todo) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed-len", type=int, default=1000, help="candles a subscription's window starts with")
    ap.add_argument("--studies", default="ema:20,rsi:14,macd,bb")
    args = ap.parse_args()
    for label, keys in (("none", ""), (args.studies, args.studies), ("obv,supertrend", "obv,supertrend")):
        times = [run(keys, args.updates, args.seed_len) for _ in range(args.runs)]
        print(f"{label:>28}: median {statistics.median(times):8.1f} us CPU per update "
              f"(runs: {', '.join(f'{t:.1f}' for t in times)})")


if __name__ == "__main__":
    main()
