"""The production settings: ``check --deploy`` is clean with the documented environment
(deploy/env.example), the security headers arrive behind TLS, and the CSP's one hash is
the vendored chart library's attribution style."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
VENDORED_CHARTS = ROOT / "static" / "vendor" / "lightweight-charts.standalone.production.js"


def production_env(tmp_path: Path) -> dict[str, str]:
    """deploy/env.example as documented, with a real random SECRET_KEY instead of the placeholder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_", "SECURE_", "TICKCHART_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["STATIC_ROOT"] = str(tmp_path / "static")
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    result = check_deploy(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_check_deploy_gives_no_w009_for_the_env_examples_own_placeholder_secret_key(tmp_path):
    """Installed as documented (deploy/env.example copied, not yet edited), the placeholder
    key is long and varied enough for Django's W009 rule: the README's "check --deploy is
    clean with deploy/env.example" holds for the file itself."""
    documented = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                      if line and not line.startswith("#"))
    assert "change-me" in documented["SECRET_KEY"]  # plainly a placeholder
    result = check_deploy({**production_env(tmp_path), "SECRET_KEY": documented["SECRET_KEY"]})
    assert "security.W009" not in result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("change", "warning"), [
    ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
    ({"SECURE_SSL_REDIRECT": "0"}, "security.W008"),
    ({"SECURE_COOKIES": "0"}, "security.W012"),
    ({"SECRET_KEY": "short"}, "security.W009"),
])
def test_check_deploy_fails_when_a_documented_setting_is_weakened(tmp_path, change, warning):
    result = check_deploy({**production_env(tmp_path), **change})
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_the_env_example_keeps_public_access_off_and_documents_tls():
    documented = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                      if line and not line.startswith("#"))
    assert documented["DJANGO_DEBUG"] == "0"
    assert documented["TICKCHART_PUBLIC_ACCESS"] == "0"
    for name in ("SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS"):
        assert name in documented


@pytest.mark.django_db
def test_hsts_and_https_redirect_behind_the_proxy(settings):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()  # a new client builds its middleware from these settings
    plain = client.get("/api/session")
    assert (plain.status_code, plain["Location"]) == (301, "https://testserver/api/session")
    assert "Strict-Transport-Security" not in plain  # never over plain HTTP
    secure = client.get("/api/session", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"
    assert "wss://testserver" in secure["Content-Security-Policy"]
    assert "ws://testserver" not in secure["Content-Security-Policy"]
    # Probes and the scraper reach daphne over loopback HTTP: not redirected.
    assert client.get("/healthz").status_code == 200


def test_the_csp_style_hash_is_the_vendored_chart_librarys_attribution_style(settings):
    source = VENDORED_CHARTS.read_text()
    styles = re.findall(r'createElement\("style"\),this\.\w+\.innerText="([^"]*)"', source)
    assert len(styles) == 1, "lightweight-charts changed how it injects its style: update TICKCHART_CSP"
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in settings.TICKCHART_CSP
