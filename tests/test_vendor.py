"""The chart library is served from our own static files, pinned by the npm lock file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENDORED = ROOT / "static" / "vendor" / "lightweight-charts.standalone.production.js"


def test_vendored_chart_library_matches_the_lock_file():
    lock = json.loads((ROOT / "package-lock.json").read_text())
    locked = lock["packages"]["node_modules/lightweight-charts"]["version"]
    versions = json.loads((ROOT / "static" / "vendor" / "VERSIONS.json").read_text())["lightweight-charts"]
    assert versions["version"] == locked
    assert hashlib.sha256(VENDORED.read_bytes()).hexdigest() == versions["sha256"]
    assert f"@license\n * TradingView Lightweight Charts™ v{locked}" in VENDORED.read_text()[:400]


def test_vendored_copy_is_the_installed_package():
    installed = ROOT / "node_modules" / "lightweight-charts" / "dist" / VENDORED.name
    if not installed.exists():
        pytest.skip("node_modules not installed (npm ci)")
    assert installed.read_bytes() == VENDORED.read_bytes()
