"""Drawing 4 studies over 2,000 candles on the chart page, in headless Chromium (issue 11).

    .venv/bin/python bench/chart_studies.py

Starts ``manage.py runfeed --serve`` on a temporary SQLite database (simulated feed,
TICKCHART_HISTORY_LIMIT=2000, embedded mode) and opens /?tf=5s, whose HTML carries 2,000
candles. The studies' values (ema:20, bb:20:2, rsi:14, macd:12:26:9) are fetched once from
/api/candles?studies=... for the shown candles; then each run, in the page, adds the four
studies (their series and panes) with those values and waits for the next animation
frame: the time from the call to that frame is what is printed (median of RUNS, target
< 100 ms). The network is left out: it is the render, not the request, that is measured.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from first_paint import ARGS, CHROMIUM, free_port  # noqa: E402

RUNS = 7
KEYS = ["ema:20", "bb:20:2", "rsi:14", "macd:12:26:9"]

MEASURE = """async ([keys, values]) => {
    const api = window.tickchart;
    api.drawStudies([], {});
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    const t0 = performance.now();
    api.drawStudies(keys, values);
    await new Promise(r => requestAnimationFrame(r));
    const ms = performance.now() - t0;
    return {ms, panes: api.chart.panes().length, candles: api.candleCount};
}"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="tickchart-studies-"))
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
            page.goto(base + "/?tf=5s")
            page.wait_for_function("window.tickchart && window.tickchart.candleCount > 0")
            state = page.evaluate("({symbol: window.tickchart.symbol, first: window.tickchart.firstTime,"
                                  " n: window.tickchart.candleCount})")
            url = (f"{base}/api/candles?symbol={state['symbol']}&tf=5s&from={state['first']}"
                   f"&limit={state['n'] + 50}&studies={','.join(KEYS)}")
            with urllib.request.urlopen(url, timeout=30) as response:
                values = json.loads(response.read())["studies"]
            results = [page.evaluate(MEASURE, [KEYS, values]) for _ in range(RUNS + 1)][1:]  # first warms up
            times = [r["ms"] for r in results]
            r = results[-1]
            print(f"{r['candles']} candles, {len(KEYS)} studies ({', '.join(KEYS)}), {r['panes']} panes")
            print(f"add the studies and draw: median {statistics.median(times):.1f} ms, "
                  f"min {min(times):.1f}, max {max(times):.1f} over {len(times)} runs (target < 100 ms)")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


if __name__ == "__main__":
    main()
