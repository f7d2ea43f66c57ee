"""A browser that loads a chart while PostgreSQL is down gets a 503 that says so (and
reloads itself), not Django's error page; the API a JSON 503; both work again after.

A real daphne on a private PostgreSQL server (tests/pgserver.py), which the test stops.
The embedded run runs it; the services run skips it (it uses neither its database nor its
settings).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.pgserver import pg_server  # noqa: F401 - fixture
from tests.servers import daphne

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")),
                                reason="services run: covered by the embedded run (own PostgreSQL)")


def get(port: int, path: str) -> tuple[int, dict, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.mark.timeout(120)
def test_pages_and_api_say_the_database_is_unavailable_during_an_outage(pg_server, tmp_path):  # noqa: F811
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATABASE_URL=pg_server.create_database("outagepage"))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    with daphne(env, tmp_path / "daphne.log") as (port, _):
        assert get(port, "/api/candles?symbol=NSE:NONE-EQ&tf=1m")[0] == 404
        pg_server.stop()
        status, headers, body = get(port, "/chart/DEMO:ALPHA/")
        assert status == 503 and "temporarily unavailable" in body and headers.get("Retry-After") == "10", body[:500]
        assert '<meta http-equiv="refresh" content="10">' in body
        status, headers, body = get(port, "/api/candles?symbol=DEMO:ALPHA&tf=1m")
        assert status == 503 and "database unavailable" in body and headers["Content-Type"] == "application/json"
        pg_server.start()
        status, _, _ = get(port, "/api/candles?symbol=NSE:NONE-EQ&tf=1m")
        if status == 503:  # the first request after a restart may meet the dead pooled connection
            status, _, _ = get(port, "/api/candles?symbol=NSE:NONE-EQ&tf=1m")
        assert status == 404
    assert "database unavailable for /chart/DEMO:ALPHA/" in (tmp_path / "daphne.log").read_text()
