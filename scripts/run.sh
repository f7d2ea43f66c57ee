#!/usr/bin/env bash
# Install from nothing and run TickChart embedded: web server + simulated feed in one
# process, SQLite in var/, the in-process channel layer. Open http://127.0.0.1:8000
# Extra arguments go to runfeed, e.g.  bash scripts/run.sh --port 9000
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
exec .venv/bin/python manage.py runfeed --serve "$@"
