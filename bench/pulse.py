"""CPU cost of the Market Pulse for a universe of symbols, per second of live time.

What ``market.pulse.service`` does each second, on one core: every symbol's 1m candle
arrives ``--updates`` times (the feed flushes every 0.5 s: 2 per second) as the candle
messages ``market.live.broadcast`` publishes; then one step recomputes every changed
symbol's metrics and stress events, the correlation card is built for one base, and
the whole frame (every mover) is serialised once with orjson. The engine is warmed
with ``--warm`` minutes of history first, so regimes, spikes and correlations are live.

The figure that matters is CPU seconds per simulated second: under 0.20 means the pulse
keeps 500 symbols updated every second using under 20 % of one core.

The candle messages reach the pulse through the channel layer. ``--layer memory`` also
times the receiving side of Channels' in-process layer (embedded mode) for the same
messages: it scans every group on each ``receive``, which costs more than the pulse
itself. (Redis pub/sub, the production layer, decodes each message once instead.)

    python bench/pulse.py [--symbols 500] [--seconds 180] [--updates 2]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import sys
import time

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from market.core.pulse import PulseConfig, PulseEngine, snapshot  # noqa: E402

CLASSES = ["equity", "equity", "currency", "crypto", "index"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--seconds", type=int, default=180, help="simulated live seconds (timed)")
    ap.add_argument("--updates", type=int, default=2, help="candle messages per symbol per second")
    ap.add_argument("--warm", type=int, default=300, help="minutes of history before timing")
    ap.add_argument("--layer", choices=["none", "memory"], default="memory",
                    help="also time receiving the messages from the in-process channel layer")
    args = ap.parse_args()

    rng = random.Random(1)
    engine = PulseEngine(PulseConfig())
    tickers = [f"SYM{i:04d}" for i in range(args.symbols)]
    prices = {t: 100.0 for t in tickers}
    for i, t in enumerate(tickers):
        engine.watch(t, CLASSES[i % len(CLASSES)])
    t0 = 1_732_000_000 - 1_732_000_000 % 60
    for m in range(args.warm):  # warm-up: one close per minute (as from the candle store)
        for t in tickers:
            prices[t] *= math.exp(rng.gauss(0, 0.002))
            engine.update(t, t0 + 60 * m, prices[t])
    engine.step(t0 + 60 * args.warm, emit=False)
    start = t0 + 60 * args.warm

    # Build the messages outside the timed region: what group_send delivers.
    seconds = []
    for s in range(args.seconds):
        batch = []
        for k in range(args.updates):
            for t in tickers:
                prices[t] *= math.exp(rng.gauss(0, 0.002 / math.sqrt(60 * args.updates)))
                c = prices[t]
                minute = (start + s) // 60 * 60
                batch.append({"type": "candle.update", "symbol": t, "tf": "1m", "final": False,
                              "candle": {"time": minute, "open": c, "high": c, "low": c, "close": c,
                                         "volume": 1.0, "ticks": 1}})
        seconds.append(batch)

    gc.collect()
    update_cpu = step_cpu = corr_cpu = ser_cpu = 0.0
    events = frames = 0
    size = 0
    update = engine.update
    wall = time.perf_counter()
    cpu0 = time.process_time()
    for s, batch in enumerate(seconds):
        now = float(start + s)
        a = time.process_time()
        for msg in batch:  # PulseService.on_message
            if msg["type"] == "candle.update":
                candle = msg["candle"]
                update(msg["symbol"], float(candle["time"]), float(candle["close"]))
        b = time.process_time()
        movers, new_events = engine.step(now)
        c = time.process_time()
        card = engine.correlations(tickers[0])
        d = time.process_time()
        frame = snapshot(engine.movers(), card, now)
        frame["events"] = [e.as_dict() for e in new_events]
        text = orjson.dumps(frame).decode()
        e = time.process_time()
        update_cpu += b - a
        step_cpu += c - b
        corr_cpu += d - c
        ser_cpu += e - d
        events += len(new_events)
        frames += 1
        size = len(text)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall
    n = args.seconds
    print(f"pulse: {args.symbols} symbols, {args.updates} candle messages/symbol/s, {n} simulated seconds")
    print(f"  per simulated second (ms CPU): messages {1000 * update_cpu / n:.2f}  step {1000 * step_cpu / n:.2f}  "
          f"correlation {1000 * corr_cpu / n:.2f}  frame {1000 * ser_cpu / n:.2f}  total {1000 * cpu / n:.2f}")
    print(f"  CPU share of one core at one frame per second: {100 * cpu / n:.1f} % (target < 20 %)")
    print(f"  frames {frames}, frame size {size / 1024:.0f} KiB, stress events {events}, wall {wall:.2f}s")
    total = cpu / n
    if args.layer == "memory":
        per_second = layer_receive_cpu(tickers, seconds[:10]) / 10
        total += per_second
        print(f"  in-process layer, receiving side: {1000 * per_second:.2f} ms CPU per second "
              f"({1e6 * per_second / len(seconds[0]):.0f} us per message)")
        print(f"  pulse + in-process layer: {100 * total:.1f} % of one core")
    if total >= 0.20:
        sys.exit(1)


def layer_receive_cpu(tickers: list[str], batches: list[list[dict]]) -> float:
    """CPU seconds the pulse's channel spends in InMemoryChannelLayer.receive for ``batches``."""
    import asyncio

    from channels.layers import InMemoryChannelLayer

    async def run() -> float:
        layer = InMemoryChannelLayer(capacity=10**6, group_expiry=10**9)
        channel = await layer.new_channel("pulse.")
        for t in tickers:
            await layer.group_add(f"c.1m.{t}", channel)
        spent = 0.0
        for batch in batches:
            for msg in batch:  # the sender's cost is runfeed's, not timed
                await layer.group_send(f"c.1m.{msg['symbol']}", msg)
            a = time.process_time()
            for _ in batch:
                await layer.receive(channel)
            spent += time.process_time() - a
        return spent

    return asyncio.run(run())


if __name__ == "__main__":
    main()
