"""Throughput of the tick path: decoded Fyers messages -> fyers_messages.parse -> CandleEngine.add.

Messages are ``sf`` dicts shaped like fyers-apiv3 3.2.0 hands them to ``on_message``
(full mode), for ``--symbols`` NSE equities inside the session, with the default stored
timeframes. ``--per-second`` ticks make one second of simulated exchange time, and the
engine is ``collect()``-ed once per simulated second, as the live feed does.

Message construction happens outside the timed region (in chunks, to bound memory);
only parse + add + collect are timed, on one core.

``--collect wall`` instead collects every ``--flush`` seconds of wall time, which is what
runfeed's flusher does (TICKCHART_FLUSH_INTERVAL, 0.5 s): at full speed that is far fewer
collects than one per simulated second. Both figures are printed by ``--collect both``.

    python bench/engine.py [--ticks 2000000] [--symbols 500] [--collect simulated|wall|both]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from market.vendors.fyers import messages as fyers_messages  # noqa: E402
from market.core.engine import CandleEngine  # noqa: E402
from market.core.sessions import DEFAULT_SESSIONS, SessionBook  # noqa: E402
from market.core.timeframes import DEFAULT_STORED, Timeframe  # noqa: E402

TARGET = 700_000  # issue 17: parse + engine on one core, both collect modes
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def make_messages(symbols, state, t0, first_tick, count, per_second, rng):
    """``count`` sf messages; ``state`` holds per-symbol (ltp, cumulative volume)."""
    out = []
    n_sym = len(symbols)
    for i in range(first_tick, first_tick + count):
        k = rng.randrange(n_sym)
        sym = symbols[k]
        ltp, vol = state[k]
        ltp = max(1.0, round(ltp + rng.choice((-0.05, 0.0, 0.05, 0.1, -0.1)), 2))
        vol += rng.randrange(1, 500)
        state[k] = (ltp, vol)
        t = t0 + i // per_second  # exchange time, 1 s resolution like Fyers
        out.append({
            "ltp": ltp,
            "vol_traded_today": vol,
            "last_traded_time": t,
            "exch_feed_time": t,
            "bid_size": 120,
            "ask_size": 75,
            "bid_price": round(ltp - 0.05, 2),
            "ask_price": round(ltp + 0.05, 2),
            "last_traded_qty": 10,
            "tot_buy_qty": 251234,
            "tot_sell_qty": 198765,
            "avg_trade_price": ltp,
            "low_price": round(ltp * 0.99, 2),
            "high_price": round(ltp * 1.01, 2),
            "open_price": ltp,
            "prev_close_price": ltp,
            "type": "sf",
            "symbol": sym,
            "lower_ckt": 0,
            "upper_ckt": 0,
            "ch": 0.0,
            "chp": 0.0,
        })
    return out


def run(ticks: int, n_symbols: int, per_second: int, chunk: int, seed: int, flush: float | None = None) -> float:
    """ticks/s; ``flush`` None collects once per simulated second, else every ``flush`` s of wall time."""
    rng = random.Random(seed)
    symbols = [f"NSE:SYM{i:04d}-EQ" for i in range(n_symbols)]
    state = [(100.0 + rng.random() * 1000, rng.randrange(0, 100_000)) for _ in symbols]
    # 09:15:00 IST on a weekday, so the whole run is inside the NSE session.
    t0 = int(dt.datetime(2024, 11, 20, 9, 15, tzinfo=IST).timestamp())
    last_time = t0 + (ticks - 1) // per_second

    engine = CandleEngine(
        [Timeframe.parse(c) for c in DEFAULT_STORED],
        SessionBook.from_config(DEFAULT_SESSIONS),
        max_ahead=300.0,
        clock=lambda: float(last_time),
    )
    for s in symbols:
        engine.register(s, fyers_messages.exchange_of(s))

    parse = fyers_messages.parse
    add = engine.add
    collect = engine.collect
    Tick = fyers_messages.Tick
    elapsed = 0.0
    perf = time.perf_counter
    next_flush = perf() + (flush or 0.0)
    done = 0
    updates = 0
    rejected = 0
    while done < ticks:
        n = min(chunk, ticks - done)
        msgs = make_messages(symbols, state, t0, done, n, per_second, rng)
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        # one simulated second of messages, then the periodic collect()
        for k in range(0, n, per_second):
            for m in msgs[k:k + per_second]:
                tick = parse(m)
                if tick.__class__ is Tick:
                    if add(tick) is not None:
                        rejected += 1
                else:
                    rejected += 1
            if flush is None:
                updates += len(collect())
            elif perf() >= next_flush:
                updates += len(collect())
                next_flush = perf() + flush
        elapsed += time.perf_counter() - start
        gc.enable()
        done += n
        del msgs
        next_flush = perf() + (flush or 0.0)  # untimed message building does not count
    if flush is not None:
        start = time.perf_counter()
        updates += len(collect())
        elapsed += time.perf_counter() - start

    rate = ticks / elapsed
    mode = "once per simulated second" if flush is None else f"every {flush:g} s of wall time (as runfeed)"
    print(f"ticks:            {ticks:,} ({n_symbols} symbols, {per_second:,} ticks per simulated second)")
    print(f"collect():        {mode}")
    print(f"timeframes:       {' '.join(DEFAULT_STORED)}")
    print(f"accepted:         {engine.accepted:,}  rejected: {rejected:,} {engine.rejected}")
    print(f"candle updates:   {updates:,}")
    print(f"time (timed):     {elapsed:.3f} s")
    print(f"throughput:       {rate:,.0f} ticks/s")
    verdict = "MEETS" if rate >= TARGET else "BELOW"
    print(f"target:           {TARGET:,} ticks/s -> {verdict} target")
    return rate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks", type=int, default=2_000_000)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--per-second", type=int, default=5000,
                    help="ticks per simulated second; collect() runs once per simulated second")
    ap.add_argument("--chunk", type=int, default=200_000,
                    help="messages built per untimed batch (rounded to whole simulated seconds)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--collect", choices=("simulated", "wall", "both"), default="both")
    ap.add_argument("--flush", type=float, default=0.5, help="seconds between collects with --collect wall")
    args = ap.parse_args(argv)
    chunk = max(args.per_second, args.chunk // args.per_second * args.per_second)
    rates = []
    if args.collect in ("simulated", "both"):
        rates.append(run(args.ticks, args.symbols, args.per_second, chunk, args.seed))
    if args.collect in ("wall", "both"):
        if rates:
            print()
        rates.append(run(args.ticks, args.symbols, args.per_second, chunk, args.seed, flush=args.flush))
    return 0 if min(rates) >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
