#!/usr/bin/env bash
# Vulnerability audit of the pinned dependencies (docs/supply-chain.md):
#   pip-audit on requirements-dev.lock (a superset of requirements.lock) and
#   npm audit on package-lock.json, judged against audit-allowlist.txt.
# Exit 0: clean, or an audit service was unreachable (a loud warning; AUDIT_STRICT=1
# makes that exit 2). Exit 1: a known vulnerability not in the allow-list. Exit 3: the
# allow-list or a tool is broken. Needs .venv with the dev requirements (pip-audit).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${AUDIT_PYTHON:-.venv/bin/python}
LOCK=${AUDIT_LOCK:-requirements-dev.lock}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --disable-pip: the lock is fully pinned and hashed, so pip-audit neither resolves nor
# builds a virtualenv; it only asks the vulnerability service about each pin.
timeout "${AUDIT_TIMEOUT:-120}" "$PY" -m pip_audit -r "$LOCK" --require-hashes --disable-pip \
  --format json --progress-spinner off --timeout 15 --output "$tmp/pip.json" 2>"$tmp/pip.err"
pip_rc=$?
args=(--pip-json "$tmp/pip.json" --pip-stderr "$tmp/pip.err" --pip-rc "$pip_rc")

if command -v npm >/dev/null 2>&1 && [ -f package-lock.json ]; then
  timeout "${AUDIT_TIMEOUT:-120}" npm audit --json --package-lock-only --audit-level=none \
    >"$tmp/npm.json" 2>"$tmp/npm.err"
  args+=(--npm-json "$tmp/npm.json" --npm-stderr "$tmp/npm.err" --npm-rc "$?")
else
  echo "audit: npm not installed: package-lock.json not audited"
fi

exec "$PY" scripts/audit_report.py --allowlist audit-allowlist.txt "${args[@]}"
