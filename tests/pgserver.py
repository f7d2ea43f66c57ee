"""A private PostgreSQL server for one test, which the test may stop, start and restart
(outage tests; the machine's own server on 5432 is never touched).

``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/*/bin/`` into a fresh directory under
the system temp dir, on a free port, listening on 127.0.0.1 only (and a Unix socket in
the data directory), trust authentication. initdb and postgres refuse to run as root, so
as root they run as the ``postgres`` user (``runuser``), the directory chowned to it.

The ``pg_server`` fixture skips when the binaries are missing, and fails instead when
``CI=true`` (the project rule: CI must test what it can). The server is always stopped,
and its directory removed, at teardown.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import IN_CI
from tests.servers import free_port


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if (Path(p) / "pg_ctl").exists()]
    if not found:
        return None
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


class PgServer:
    """One private cluster: ``url(db)``, ``stop()``, ``start()``, ``restart()``, ``close()``."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tickchart-pg-"))  # not under pytest's 0700 dirs
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            pw = pwd.getpwnam(self._user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-instructions")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.data}'\nfsync = off\nmax_connections = 50\n")
        self.running = False

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / tool), *args]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}\n{log}")
        return done

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start (again) on the same port and data directory; returns once it accepts connections."""
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.logfile))
        self.running = True

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: every backend killed at once, as in a crash (recovery on start);
        ``fast``: connections terminated, clean shutdown."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data))
        self.running = False

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        try:
            if self.running or (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def pg_server() -> Iterator[PgServer]:
    bin_dir = pg_bin()
    if bin_dir is None or shutil.which("runuser") is None and os.geteuid() == 0:
        message = "PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: the outage tests must run)")
        pytest.skip(message)
    server = PgServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.close()
