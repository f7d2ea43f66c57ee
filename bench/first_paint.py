"""First paint of the chart page and smoothness with 50,000 candles, in headless Chromium.

    .venv/bin/python bench/first_paint.py

Starts ``manage.py runfeed --serve`` on a temporary SQLite database (simulated feed, 3 h
back-fill, TICKCHART_HISTORY_LIMIT=2000) and opens /?tf=5s, whose HTML carries 2,000
candles. Prints, from the browser's performance timeline (ms since navigation start):
when the HTML had arrived (responseEnd), when the chart had drawn its candles (the first
animation frame after setData), and the difference (target < 300 ms). Then it loads
50,000 candles into the page and measures frame times while panning and zooming.

    .venv/bin/python bench/first_paint.py --layout   # the layout case only

The layout case (issue 12): a saved 4-chart layout (DEMO:ALPHA, BETA, GAMMA, INDEX on 5s,
2,000 candles each, all rendered into the page; target < 500 ms first paint), then the
crosshair moved over one pane for 240 frames with all four linked (target 60 fps).
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


LAYOUT_USER, LAYOUT_PASSWORD = "bench", "a-bench-password-0912"
LAYOUT_CODE = """
from django.contrib.auth import get_user_model
from market import services
user = get_user_model().objects.create_user({user!r}, password={password!r})
charts = [dict(symbol=s, tf="5s", link_group="A") for s in ("DEMO:ALPHA", "DEMO:BETA", "DEMO:GAMMA", "DEMO:INDEX")]
print(services.layout_create(owner=user, name="bench", spec=dict(grid=4, charts=charts)).id)
"""


def layout_case(page, base: str, env: dict[str, str]) -> None:
    """First paint of a saved 4-chart layout and the linked crosshair's frame times."""
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c",
                           LAYOUT_CODE.format(user=LAYOUT_USER, password=LAYOUT_PASSWORD)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    layout_id = int(done.stdout.strip().splitlines()[-1])
    page.goto(base + "/accounts/login/")
    page.fill('input[name="username"]', LAYOUT_USER)
    page.fill('input[name="password"]', LAYOUT_PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()
    figures, singles = [], []
    for _ in range(RUNS):  # interleaved with the chart page, so a loaded machine slows both alike
        page.goto(base + "/?tf=5s")
        page.wait_for_function("() => window.tickchart && window.tickchart.firstPaintMs !== null")
        singles.append(page.evaluate("""() => window.tickchart.firstPaintMs -
            performance.getEntriesByType('navigation')[0].responseEnd"""))
        page.goto(base + f"/layout/{layout_id}/")
        page.wait_for_function("() => window.tickchart && window.tickchart.firstPaintMs !== null")
        figures.append(page.evaluate("""() => {
            const nav = performance.getEntriesByType('navigation')[0];
            return {html: nav.responseEnd, painted: window.tickchart.firstPaintMs, bytes: nav.transferSize,
                    started: window.tickchart.startedMs, built: window.tickchart.builtMs,
                    candles: window.tickchart.panes.map(p => p.candleCount)};
        }"""))
    f = figures[-1]
    deltas = [x["painted"] - x["html"] for x in figures[1:]]
    ratios = [x["painted"] - x["html"] for x in figures[1:]]
    ratios = [a / b for a, b in zip(ratios, singles[1:]) if b > 0]
    print(f"layout: 4 panes with {f['candles']} candles embedded, {f['bytes'] / 1024:.0f} kB HTML")
    print(f"layout first paint after the HTML arrived: median {statistics.median(deltas):.0f} ms, "
          f"max {max(deltas):.0f} ms over {len(deltas)} loads (target < 500 ms)")
    print(f"  the chart page (2,000 candles) in between: median {statistics.median(singles[1:]):.0f} ms; "
          f"layout / chart page: median {statistics.median(ratios):.2f}x")
    parts = [(x["started"] - x["html"], x["built"] - x["started"], x["painted"] - x["built"]) for x in figures[1:]]
    print("  of which: HTML to the module running (parse, scripts, modules) median "
          f"{statistics.median(p[0] for p in parts):.0f} ms, building the 4 panes "
          f"{statistics.median(p[1] for p in parts):.0f} ms, to the next frame {statistics.median(p[2] for p in parts):.0f} ms")
    page.wait_for_function("() => document.body.dataset.status === 'live'")
    box = page.locator('[data-pane="0"] .pane-chart').bounding_box()
    page.mouse.move(box["x"] + 10, box["y"] + box["height"] / 2)
    frames = []
    for i in range(240):
        x = box["x"] + 10 + (box["width"] - 80) * (i % 120) / 120
        start = time.perf_counter()
        page.mouse.move(x, box["y"] + box["height"] * (0.3 + 0.2 * ((i // 7) % 2)))
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        frames.append((time.perf_counter() - start) * 1000)
    linked = page.evaluate("window.tickchart.panes.slice(1).every(p => p.linkedTime !== null)")
    frames.sort()
    print(f"linked crosshair over 4 panes ({'all three followed' if linked else 'NOT followed'}): "
          f"median {statistics.median(frames):.1f} ms per move + frame, p95 {frames[int(len(frames) * 0.95) - 1]:.1f} ms "
          f"(~{1000 / statistics.mean(frames):.0f} moves/s; target 60 fps)")
    in_page = page.evaluate("""async () => {
        const panes = window.tickchart.panes, chart = panes[0].chart, el = chart.chartElement();
        const r = el.getBoundingClientRect(), times = [];
        let last = performance.now();
        for (let i = 0; i < 240; i++) {
            el.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: r.left + 10 + (r.width - 80) * (i % 120) / 120,
                                                            clientY: r.top + r.height * 0.4}));
            await new Promise(res => requestAnimationFrame(() => res()));
            const now = performance.now(); times.push(now - last); last = now;
        }
        times.sort((a, b) => a - b);
        return {median: times[120], p95: times[227]};
    }""")
    print(f"  in-page frame interval while the crosshair moves: median {in_page['median']:.1f} ms, "
          f"p95 {in_page['p95']:.1f} ms")


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
            if "--layout" in sys.argv[1:]:
                layout_case(page, base, env)
                browser.close()
                return
            figures = []
            for _ in range(RUNS):
                page.goto(base + "/?tf=5s")
                page.wait_for_function("() => window.tickchart && window.tickchart.firstPaintMs !== null")
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
            layout_case(browser.new_page(viewport={"width": 1600, "height": 900}), base, env)
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
