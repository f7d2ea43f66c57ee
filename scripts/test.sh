#!/usr/bin/env bash
# Install everything from nothing, then run the whole test suite twice (side by side):
#   1. embedded   - SQLite and the in-process channel layer (what a laptop has)
#   2. services   - the same suite on real PostgreSQL and Redis (required when CI=true)
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -x -k consumer
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# Every package pinned and hash-checked, pip itself included (scripts/lock.sh makes the
# lock from requirements-dev.txt; docs/supply-chain.md).
.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.lock

# Known vulnerabilities in the locks (fails on a finding; warns when the audit services
# cannot be reached, unless AUDIT_STRICT=1).
bash scripts/audit.sh

# Front-end packages from the lock file, to check the vendored copy against them.
if command -v npm >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --loglevel=error
fi

# The browser tests use Debian's Chromium (never a downloaded browser build).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tickchart}
TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
reachable() {
  .venv/bin/python - "$1" "$2" <<'PY'
import socket, sys
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
try:
    socket.create_connection((u.hostname, u.port or int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}
# Each run spreads its test files over TEST_WORKERS processes (pytest-xdist; 0 = one
# process): most of the suite's time is waiting on real servers, processes and sockets,
# not the CPU. A file's tests stay together on one worker (module fixtures start servers),
# and each worker has its own test database and Redis database (tests/workers.py).
WORKERS=${TEST_WORKERS:-3}
pytest_run() {
  .venv/bin/python -m pytest -p tests.workers -n "$WORKERS" --dist loadfile --durations=15 "$@"
}
embedded() {
  (unset DATABASE_URL REDIS_URL; pytest_run "$@")
}
services() {
  DATABASE_URL=$TEST_DATABASE_URL REDIS_URL=$TEST_REDIS_URL pytest_run -m "not e2e" "$@"
}
with_services=0
if [ "${CI:-}" = "true" ] || { reachable "$TEST_DATABASE_URL" 5432 && reachable "$TEST_REDIS_URL" 6379; }; then
  with_services=1
fi

if [ "$with_services" = 0 ]; then
  echo "== embedded: SQLite + in-process channel layer"
  embedded "$@"
  echo "== services run skipped: PostgreSQL or Redis not reachable (CI=true makes this an error)"
elif [ "${TEST_SERIAL:-}" = 1 ]; then
  echo "== embedded: SQLite + in-process channel layer"
  embedded "$@"
  echo "== services: PostgreSQL + Redis"
  services "$@"
else
  # The two runs share nothing (a temporary SQLite file and the in-process layer against a
  # test database on PostgreSQL and Redis), and much of each is waiting on processes and
  # sockets, so they run side by side; each line says which run it comes from.
  # TEST_SERIAL=1 runs them one after the other.
  echo "== embedded (SQLite + in-process layer) and services (PostgreSQL + Redis), side by side"
  embedded "$@" > >(sed -u 's/^/[embedded] /') 2>&1 &
  embedded_pid=$!
  services_rc=0
  services "$@" > >(sed -u 's/^/[services] /') 2>&1 || services_rc=$?
  embedded_rc=0
  wait "$embedded_pid" || embedded_rc=$?
  sleep 0.2  # let the prefixing finish its last lines
  echo "== embedded: exit $embedded_rc; services: exit $services_rc"
  [ "$embedded_rc" = 0 ] && [ "$services_rc" = 0 ]
fi
