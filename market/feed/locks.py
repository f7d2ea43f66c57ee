"""Only one runfeed writes a given source at a time.

On PostgreSQL: a session advisory lock held on a dedicated connection; PostgreSQL drops
it the moment the holder's connection dies (crash, kill -9, lost network). On SQLite (the
embedded default, one machine): an exclusive ``flock`` beside the database file, which
the kernel drops when the process dies. A second runfeed either refuses to start or,
with ``--standby``, waits and takes over when the holder goes away.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from django.db import connections

logger = logging.getLogger("market.feed")


class WriterLockBusy(RuntimeError):
    pass


def _key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class WriterLock:
    def __init__(self, name: str, *, alias: str = "default") -> None:
        self.name = name
        self._alias = alias
        self._vendor = connections[alias].vendor
        self._conn: Any = None
        self._fd: int | None = None

    def held(self) -> bool:
        """Whether the lock is still ours: False once its PostgreSQL connection died (a
        server restart or a dropped network drops the advisory lock with it)."""
        if self._vendor != "postgresql":
            return self._fd is not None  # the kernel keeps a flock while we live
        if self._conn is None or self._conn.closed:
            return False
        key = _key(f"tickchart.writer.{self.name}") & 0xFFFFFFFFFFFFFFFF  # as pg_locks splits it
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND granted AND objsubid = 1 AND classid::bigint = %s AND objid::bigint = %s",
                (key >> 32, key & 0xFFFFFFFF)).fetchone()
        except Exception:  # noqa: BLE001 - the connection is gone, and the lock with it
            self._drop_connection()
            return False
        return bool(row and row[0])

    def _drop_connection(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:  # noqa: BLE001
            pass
        self._conn = None

    def try_acquire(self) -> bool:
        if self._vendor == "postgresql":
            return self._try_postgres()
        return self._try_file()

    def _try_postgres(self) -> bool:
        import psycopg

        if self._conn is None or self._conn.closed:
            params = connections[self._alias].get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self._conn = psycopg.connect(**params, autocommit=True)
        try:
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (_key(f"tickchart.writer.{self.name}"),)).fetchone()
        except Exception:
            self._drop_connection()  # e.g. the server restarted: connect afresh next time
            raise
        return bool(row and row[0])

    def _try_file(self) -> bool:
        name = str(connections[self._alias].settings_dict["NAME"])
        if name == ":memory:" or "mode=memory" in name:  # tests: one process, lock in tmp
            digest = hashlib.sha256(f"{name}.{os.getpid()}".encode()).hexdigest()[:12]
            path = Path(tempfile.gettempdir()) / f"tickchart-{digest}.{self.name}.writer.lock"
        else:
            db = Path(name)
            path = db.with_name(f"{db.name}.{self.name}.writer.lock")
        if self._fd is None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())
        return True

    async def acquire(self, *, standby: bool, poll: float = 1.0, stop: asyncio.Event | None = None) -> bool:
        """Take the lock; without ``standby`` a busy lock raises, with it we wait (False if stopped)."""
        logged = unreachable = False
        while True:
            try:
                acquired = await asyncio.to_thread(self.try_acquire)
            except Exception as exc:
                if not standby:
                    raise
                # A standby outlives a database restart: it is there to take over after one.
                if not unreachable:
                    logger.warning("standby: cannot reach the database for writer lock %s (%s); retrying",
                                   self.name, exc)
                    unreachable = True
                acquired = False
            else:
                unreachable = False
            if acquired:
                if logged:
                    logger.info("writer lock %s acquired: taking over", self.name)
                return True
            if not standby:
                raise WriterLockBusy(
                    f"another runfeed is already writing {self.name!r}; "
                    "stop it, or start this one with --standby to take over when it exits"
                )
            if not logged:
                logger.info("standby: another runfeed holds the writer lock %s; waiting", self.name)
                logged = True
            if stop is not None:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=poll)
                    return False
                except asyncio.TimeoutError:
                    pass
            else:
                await asyncio.sleep(poll)

    def release(self) -> None:
        if self._conn is not None:
            try:
                # Unlock before closing: close() returns before the server's backend has
                # exited and let go, so a runfeed started right after found the lock still held.
                self._conn.execute("SELECT pg_advisory_unlock_all()")
            except Exception:  # noqa: BLE001 - a dead connection holds nothing any more
                pass
            try:
                self._conn.close()
            finally:
                self._conn = None
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            finally:
                self._fd = None
