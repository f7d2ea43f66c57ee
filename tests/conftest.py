"""Shared fixtures. The suite runs twice in CI: embedded (SQLite, in-process layer) and
with DATABASE_URL/REDIS_URL pointing at the real PostgreSQL and Redis."""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
# The run's Redis; under xdist each worker has its own database of it (tests/workers.py).
REDIS_URL = (os.environ.get("REDIS_URL") or os.environ.get("TICKCHART_TEST_REDIS_URL")
             or "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL") or "postgres://postgres@127.0.0.1:5432/postgres"


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, url: str, default_port: int) -> None:
    """Skip on a laptop without the service; fail under CI, where it must be tested."""
    if reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: the real service must be tested)")
    pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    need_service("Redis", REDIS_URL, 6379)
    return REDIS_URL


def pytest_sessionstart(session: pytest.Session) -> None:
    for var, port in (("DATABASE_URL", 5432), ("REDIS_URL", 6379)):
        url = os.environ.get(var)
        if url and not reachable(url, port):
            pytest.exit(f"{var} is set but {url} is not reachable", returncode=3)


@pytest.fixture(autouse=True)
def _private_journal(tmp_path, settings):
    """Each test's live feeds journal into its own directory, never the shared var/journal."""
    settings.MARKET = {**(getattr(settings, "MARKET", None) or {}), "JOURNAL_DIR": str(tmp_path / "journal")}


@pytest.fixture(autouse=True)
def _fresh_market_conf():
    from market import conf

    conf.forget()
    yield
    conf.forget()


@pytest.fixture
def make_symbol(db):
    from market.models import Symbol

    def make(ticker: str = "NSE:SBIN-EQ", exchange: str = "NSE", **extra) -> Symbol:
        extra.setdefault("name", ticker)
        return Symbol.objects.create(ticker=ticker, exchange=exchange, **extra)

    return make


@pytest.fixture(autouse=True)
def _close_worker_thread_connections():
    """Async code reads the database on asgiref's worker thread; close that thread's
    connection after each test so PostgreSQL can drop the test database at the end."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counts():
    """Each test starts with no HTTP rate-limit counts (market.web.ratelimit): the
    suite makes many API requests from one address, and counts outlive a test otherwise."""
    from market.web.ratelimit import reset_counts

    reset_counts()
    yield


def record_listeners(monkeypatch: pytest.MonkeyPatch, feed_module: Any) -> list:
    """Every market.live.demand.DemandListener ``feed_module`` creates, so that a test can wait
    until the feed listens for symbols on demand."""
    from market.live.demand import DemandListener

    made: list[DemandListener] = []

    class Recorded(DemandListener):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            made.append(self)

    monkeypatch.setattr(feed_module, "DemandListener", Recorded)
    return made


# The files that take longest (real processes killed and restarted, outages waited out,
# daphne and Chromium started): collected first, so that under pytest-xdist the workers
# start them first and the many short files fill in around them (longest first keeps the
# run from ending on one worker still busy with a slow file started last).
SLOW_FIRST = (
    "tests/feed/test_crash_alerts.py",
    "tests/feed/test_crash_exact.py",
    "tests/feed/test_journal_crash.py",
    "tests/e2e/test_layouts_browser.py",
    "tests/feed/test_journal_outage.py",
    "tests/feed/test_database_outage.py",
    "tests/feed/test_webhook_outage.py",
    "tests/e2e/test_chart_browser.py",
    "tests/test_production.py",
    "tests/live/test_redis_restart.py",
    "tests/feed/test_writer_lock_outage.py",
    "tests/web/test_openapi.py",
    "tests/security/test_frame_limit_daphne.py",
    "tests/security/test_access_daphne.py",
    "tests/web/test_slow_client.py",
    "tests/client/test_client.py",
    "tests/vendors/fyers/test_budget.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    root = config.rootpath

    def key(item: pytest.Item) -> int:
        try:
            return rank.get(item.path.relative_to(root).as_posix(), len(rank))
        except ValueError:
            return len(rank)

    items.sort(key=key)  # stable: the rest keep their order
