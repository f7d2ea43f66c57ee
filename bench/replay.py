"""Replay end to end into SQLite: synthetic Fyers recording -> runfeed --source replay.

Prints ticks/s (target >= 50,000). Uses a throwaway SQLite database.

    python bench/replay.py [--messages 500000] [--symbols 500]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market.core.recording import fyers_session  # noqa: E402

TARGET = 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument("--symbols", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "session.jsonl"
        with open(path, "wb") as f:
            for msg in fyers_session(symbols=args.symbols, messages=args.messages, repeat_every=0):
                f.write(orjson.dumps(msg) + b"\n")
        env = dict(os.environ, TICKCHART_DB_PATH=str(Path(tmp) / "bench.sqlite3"))
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "runfeed", "--source", "replay", "--file", str(path),
             "--speed", "0", "--no-migrate"],
            cwd=ROOT, env=env, check=True,
        )
        elapsed = time.perf_counter() - started
    rate = args.messages / elapsed
    print(f"replay end to end into SQLite: {args.messages} messages, {args.symbols} symbols, "
          f"{elapsed:.2f} s, {rate:,.0f} ticks/s (target {TARGET:,}: {'met' if rate >= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
