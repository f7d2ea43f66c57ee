"""First paint of the chart page and smoothness with 50,000 candles, in headless Chromium.

    .venv/bin/python bench/first_paint.py

Starts ``manage.py runfeed --serve`` on a temporary SQLite database (simulated feed, 3 h
back-fill, TICKCHART_HISTORY_LIMIT=2000) and opens /?tf=5s, whose HTML carries 2,000
candles. Prints, from the browser's performance timeline (ms since navigation start):
when the HTML had arrived (responseEnd), when the chart had drawn its candles (the first
animation frame after setData), and the difference (target < 300 ms). Then it loads
50,000 candles into the page and measures frame times while panning and zooming.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("TICKCHART_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RUNS = 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="tickchart-paint-"))
    port = free_port()
    env = dict(os.environ, TICKCHART_DB_PATH=str(tmp / "db.sqlite3"), TICKCHART_HISTORY_LIMIT="2000",
               DJANGO_DEBUG="1")
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "manage.py", "runfeed", "--serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            figures = []
            for _ in range(RUNS):
                page.goto(base + "/?tf=5s")
                page.wait_for_function("window.tickchart && window.tickchart.firstPaintMs !== null")
                f = page.evaluate("""() => {
                    const nav = performance.getEntriesByType('navigation')[0];
                    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                    return {html: nav.responseEnd, painted: window.tickchart.firstPaintMs,
                            fcp: fcp ? fcp.startTime : null, candles: window.tickchart.candleCount,
                            bytes: nav.transferSize};
                }""")
                figures.append(f)
            f = figures[-1]
            deltas = [x["painted"] - x["html"] for x in figures[1:]]  # the first run warms caches
            print(f"page: {f['candles']} candles embedded, {f['bytes'] / 1024:.0f} kB HTML")
            print(f"first paint after the HTML arrived: median {statistics.median(deltas):.0f} ms, "
                  f"max {max(deltas):.0f} ms over {len(deltas)} loads (target < 300 ms)")
            fcp = [x["fcp"] - x["html"] for x in figures[1:] if x["fcp"] is not None]
            if fcp:
                print(f"first contentful paint after the HTML arrived: median {statistics.median(fcp):.0f} ms, "
                      f"max {max(fcp):.0f} ms")
            print(f"  last load: HTML at {f['html']:.0f} ms, chart drawn at {f['painted']:.0f} ms, "
                  f"first contentful paint at {f['fcp'] or 0:.0f} ms")

            result = page.evaluate("""async () => {
                const n = 50000, t0 = 1700000000, bars = [];
                let p = 100;
                for (let i = 0; i < n; i++) {
                    const o = p; p = Math.max(1, p * (1 + (Math.random() - 0.5) * 0.004));
                    bars.push({time: t0 + 5 * i, open: o, high: Math.max(o, p) + 0.1, low: Math.min(o, p) - 0.1,
                               close: p, volume: Math.round(Math.random() * 1000)});
                }
                const s = performance.now();
                window.tickchart.setCandles(bars);
                await new Promise(r => requestAnimationFrame(() => r()));
                const load = performance.now() - s;
                const ts = window.tickchart.chart.timeScale();
                const frames = [];
                let last = performance.now();
                const frame = () => new Promise(r => requestAnimationFrame(now => { frames.push(now - last); last = now; r(); }));
                // pan 240 frames at the default zoom, then zoom out to the whole series and pan again
                for (let i = 0; i < 240; i++) { ts.scrollToPosition(-i * 20, false); await frame(); }
                ts.fitContent(); await frame(); frames.length = frames.length;
                const zoomedFrames = [];
                for (let i = 0; i < 120; i++) {
                    const r = ts.getVisibleLogicalRange();
                    ts.setVisibleLogicalRange({from: r.from - 50, to: r.to - 50});
                    const a = performance.now(); await frame(); zoomedFrames.push(performance.now() - a);
                }
                return {count: window.tickchart.candleCount, load, frames, zoomedFrames};
            }""")
            frames = sorted(result["frames"][1:])
            zoomed = sorted(result["zoomedFrames"])

            def p95(v):
                return v[int(len(v) * 0.95) - 1]

            print(f"50,000 candles: setData + first frame {result['load']:.0f} ms")
            print(f"  panning at default zoom: median frame {statistics.median(frames):.1f} ms, "
                  f"p95 {p95(frames):.1f} ms, ~{1000 / statistics.mean(frames):.0f} fps")
            print(f"  panning with all 50,000 in view: median frame {statistics.median(zoomed):.1f} ms, "
                  f"p95 {p95(zoomed):.1f} ms, ~{1000 / statistics.mean(zoomed):.0f} fps")
            browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


if __name__ == "__main__":
    main()
