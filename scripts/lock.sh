#!/usr/bin/env bash
# Re-pin every dependency with hashes after a change to requirements*.txt:
#   requirements.txt      -> requirements.lock      (what scripts/run.sh installs)
#   requirements-dev.txt  -> requirements-dev.lock  (what scripts/test.sh and CI install)
# pip-tools runs in a throw-away virtualenv, so the project's .venv is left alone.
# Commit the .lock files with the .txt change; tests/security/test_audit.py fails when
# they disagree. docs/supply-chain.md says more.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools"
"$tools/bin/python" -m pip install -q --disable-pip-version-check "pip-tools==7.6.2"
compile() {
  # --allow-unsafe: setuptools (pinned by fyers-apiv3) and pip are locked too, so that
  # `pip install --require-hashes` never needs an unhashed package.
  "$tools/bin/pip-compile" -q --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links --output-file="$2" "$1"
}
compile requirements.txt requirements.lock
compile requirements-dev.txt requirements-dev.lock
echo "locked: requirements.lock requirements-dev.lock"
