#!/usr/bin/env bash
# Install from nothing and run TickChart embedded: web server + simulated feed in one
# process, SQLite in var/, the in-process channel layer. Open http://127.0.0.1:8000
# Extra arguments go to runfeed, e.g.  bash scripts/run.sh --port 9000
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# Every package pinned and hash-checked (requirements.lock, made by scripts/lock.sh).
.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
exec .venv/bin/python manage.py runfeed --serve "$@"
