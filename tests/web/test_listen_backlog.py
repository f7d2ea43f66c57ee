"""daphne's listen backlog (issue 17): the documented command lines queue 4096 connections.

Twisted's default backlog is 50, so a reconnect storm of a thousand browsers saw refused and
timed-out handshakes before daphne even read them. daphne has no flag for it; its ``-e``
endpoint string takes ``backlog=``. Each command line of the Procfile and the systemd unit
is started as written (port and interface made local) and the kernel is asked what its
listening socket's queue is (``ss``: Send-Q of a listener is its backlog).
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from market.management.commands import runfeed
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
BACKLOG = 4096


def command_line(path: str) -> list[str]:
    line = next(ln for ln in (ROOT / path).read_text().splitlines() if "tickchart.asgi:application" in ln)
    return shlex.split(line.split("=", 1)[1] if line.startswith("ExecStart=") else line.split(":", 1)[1])


def listen_queue(port: int) -> int:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    rows = [r.split() for r in out.splitlines() if r.strip()]
    assert rows, f"nothing listens on {port}"
    return int(rows[0][2])  # State Recv-Q Send-Q ...: a listener's Send-Q is its backlog


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
@pytest.mark.parametrize("path", ["Procfile", "deploy/systemd/tickchart-daphne@.service"])
def test_the_documented_daphne_command_line_listens_with_a_4096_backlog(path, tmp_path):
    argv = command_line(path)
    assert any(f"backlog={BACKLOG}" in a for a in argv), argv
    port = free_port()
    argv = [a.replace("$PORT", str(port)).replace("%i", str(port)).replace("0.0.0.0", "127.0.0.1") for a in argv]
    argv[0] = str(Path(sys.executable).parent / "daphne")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith(("PYTEST", "TICKCHART_"))}
    env.update(DJANGO_DEBUG="1", TICKCHART_DB_PATH=str(tmp_path / "db.sqlite3"))
    log = tmp_path / "daphne.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
        assert listen_queue(port) == min(BACKLOG, somaxconn)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_runfeed_serve_asks_for_the_same_backlog():
    assert runfeed.LISTEN_BACKLOG == BACKLOG
