"""Supply chain: the audit's judgement (scripts/audit_report.py, fed fixtures: no network)
and the lock files (pinned, hashed, in step with requirements*.txt and the Fyers SDK's
exact pins)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 6, 1)

_spec = importlib.util.spec_from_file_location("audit_report", ROOT / "scripts" / "audit_report.py")
audit = importlib.util.module_from_spec(_spec)
sys.modules["audit_report"] = audit  # dataclasses look their module up
_spec.loader.exec_module(audit)


# -- fixtures: what the tools print --------------------------------------------------------------
def pip_json(*deps: dict) -> str:
    return json.dumps({"dependencies": list(deps), "fixes": []})


def dep(name: str, version: str, *vulns: dict) -> dict:
    return {"name": name, "version": version, "vulns": list(vulns)}


def vuln(id_: str, *aliases: str, fix: tuple[str, ...] = ("9.9.9",)) -> dict:
    return {"id": id_, "fix_versions": list(fix), "aliases": list(aliases), "description": "..."}


def skipped(name: str, version: str) -> dict:
    return {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} ({version})"}


AIOHTTP_VULN = dep("aiohttp", "3.9.3", vuln("GHSA-5m98-qgg9-wh84", "CVE-2024-30251", fix=("3.9.4",)))
CLEAN = pip_json(dep("django", "5.2.19"), dep("orjson", "3.13.0"))
NPM_405 = json.dumps({"message": "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/"
                      "advisories/bulk", "statusCode": 405, "body": "", "error": {"summary": "", "detail": ""}})


def npm_json(severity: str, ghsa: str = "GHSA-aaaa-bbbb-cccc") -> str:
    return json.dumps({"auditReportVersion": 2, "vulnerabilities": {"lightweight-charts": {
        "name": "lightweight-charts", "severity": severity, "range": "<5.0.1",
        "via": [{"source": 1, "name": "lightweight-charts", "title": "t", "severity": severity,
                 "url": f"https://github.com/advisories/{ghsa}"}, "fancy-canvas"]}},
        "metadata": {"vulnerabilities": {severity: 1}}})


def run(*verdicts, allow: str = "", strict: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = audit.decide(list(verdicts), audit.parse_allowlist(allow), TODAY, strict, out=out)
    return code, out.getvalue()


# -- pip-audit ------------------------------------------------------------------------------------
def test_clean_audit_passes():
    code, out = run(audit.judge_pip(CLEAN, 0))
    assert code == 0 and "no known vulnerabilities" in out


def test_a_known_vulnerability_fails():
    code, out = run(audit.judge_pip(pip_json(AIOHTTP_VULN, dep("django", "5.2.19")), 1))
    assert code == 1
    assert "VULNERABLE pip-audit: aiohttp 3.9.3: GHSA-5m98-qgg9-wh84 (also CVE-2024-30251); fixed in 3.9.4" in out


def test_an_allow_listed_vulnerability_passes_and_says_why():
    allow = "GHSA-5m98-qgg9-wh84 2026-09-01 aiohttp web server only; TickChart uses the client\n"
    code, out = run(audit.judge_pip(pip_json(AIOHTTP_VULN), 1), allow=allow)
    assert code == 0
    assert "allowed pip-audit: aiohttp 3.9.3: GHSA-5m98-qgg9-wh84" in out and "uses the client" in out


def test_an_alias_in_the_allow_list_matches():
    code, _ = run(audit.judge_pip(pip_json(AIOHTTP_VULN), 1), allow="CVE-2024-30251 2026-09-01 reviewed\n")
    assert code == 0


def test_an_entry_past_its_review_date_allows_nothing():
    code, out = run(audit.judge_pip(pip_json(AIOHTTP_VULN), 1), allow="GHSA-5m98-qgg9-wh84 2026-05-31 old review\n")
    assert code == 1 and "due for review on 2026-05-31" in out


def test_one_allowed_vulnerability_does_not_hide_another():
    deps = pip_json(AIOHTTP_VULN, dep("requests", "2.31.0", vuln("GHSA-9wx4-h78v-vm56", "CVE-2024-35195")))
    code, out = run(audit.judge_pip(deps, 1), allow="CVE-2024-30251 2026-09-01 reviewed\n")
    assert code == 1 and "requests 2.31.0: GHSA-9wx4-h78v-vm56" in out and "VULNERABLE pip-audit: aiohttp" not in out


def test_every_package_skipped_is_unreachable_not_clean():
    """What pip-audit prints here: per-version JSON 404s, every package skipped, exit 0."""
    output = pip_json(skipped("aiohttp", "3.9.3"), skipped("django", "5.2.19"))
    verdict = audit.judge_pip(output, 0)
    assert verdict.unreachable and not verdict.findings
    code, out = run(verdict)
    assert code == 0 and "WARNING: pip-audit: no package could be audited" in out
    assert "no known vulnerabilities" not in out
    assert run(verdict, strict=True)[0] == 2


def test_findings_win_over_unreachable():
    output = pip_json(AIOHTTP_VULN, skipped("django", "5.2.19"))
    code, out = run(audit.judge_pip(output, 1))
    assert code == 1 and "1 package(s) could not be audited" in out


@pytest.mark.parametrize("stderr", [
    "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.osv.dev', port=443): Max retries exceeded",
    "pip_audit._service.interface.ServiceError: ...",
    "socket.gaierror: [Errno -3] Temporary failure in name resolution",
])
def test_pip_audit_crashing_on_the_network_is_unreachable(stderr):
    verdict = audit.judge_pip("", 1, stderr)
    assert verdict.unreachable and not verdict.error
    assert run(verdict)[0] == 0 and run(verdict, strict=True)[0] == 2


def test_pip_audit_failing_for_another_reason_is_an_error():
    verdict = audit.judge_pip("", 1, "ERROR: requirement 'x' is not hashed (--require-hashes)")
    assert verdict.error and not verdict.unreachable
    assert run(verdict)[0] == 3


# -- npm audit -------------------------------------------------------------------------------------
def test_npm_405_from_the_registry_is_unreachable():
    verdict = audit.judge_npm(NPM_405, 1, "npm error audit endpoint returned an error")
    assert "405 Method Not Allowed" in verdict.unreachable
    assert run(verdict)[0] == 0 and run(verdict, strict=True)[0] == 2


def test_npm_critical_fails_and_below_the_level_passes():
    assert run(audit.judge_npm(npm_json("critical"), 1))[0] == 1
    assert run(audit.judge_npm(npm_json("high"), 1))[0] == 0
    assert run(audit.judge_npm(npm_json("high"), 1, level="high"))[0] == 1


def test_npm_advisory_can_be_allow_listed_by_ghsa():
    code, out = run(audit.judge_npm(npm_json("critical"), 1), allow="GHSA-aaaa-bbbb-cccc 2026-12-31 not reachable\n")
    assert code == 0 and "allowed npm audit: lightweight-charts" in out


def test_npm_clean_report_passes():
    clean = json.dumps({"auditReportVersion": 2, "vulnerabilities": {}, "metadata": {}})
    assert run(audit.judge_npm(clean, 0))[0] == 0


# -- the allow-list file -------------------------------------------------------------------------------
def test_allowlist_comments_blank_lines_and_trailing_comments():
    entries = audit.parse_allowlist("# header\n\nPYSEC-2024-1  2026-07-01  reason here  # by Ann\n")
    assert entries["PYSEC-2024-1"].reason == "reason here"
    assert entries["PYSEC-2024-1"].review_by == dt.date(2026, 7, 1)


@pytest.mark.parametrize("line", ["PYSEC-1", "PYSEC-1 2026-07-01", "PYSEC-1 soon reason", "PYSEC-1 2026-13-01 r"])
def test_allowlist_lines_without_id_date_and_reason_are_refused(line):
    with pytest.raises(audit.AllowListError):
        audit.parse_allowlist(line)


def test_allowlist_duplicate_is_refused():
    with pytest.raises(audit.AllowListError, match="twice"):
        audit.parse_allowlist("X 2026-07-01 a\nX 2026-08-01 b\n")


def test_the_committed_allowlist_parses_and_every_entry_has_a_reason():
    entries = audit.parse_allowlist((ROOT / "audit-allowlist.txt").read_text())
    assert all(e.reason for e in entries.values())


def test_the_script_exit_codes_end_to_end(tmp_path):
    (tmp_path / "pip.json").write_text(pip_json(AIOHTTP_VULN))
    (tmp_path / "npm.json").write_text(NPM_405)
    (tmp_path / "allow.txt").write_text("")
    cmd = [sys.executable, str(ROOT / "scripts" / "audit_report.py"), "--allowlist", str(tmp_path / "allow.txt"),
           "--pip-json", str(tmp_path / "pip.json"), "--pip-rc", "1", "--npm-json", str(tmp_path / "npm.json"),
           "--npm-rc", "1", "--today", "2026-06-01"]
    env = {"PATH": "/usr/bin:/bin"}
    assert subprocess.run(cmd, capture_output=True, env=env).returncode == 1
    (tmp_path / "allow.txt").write_text("GHSA-5m98-qgg9-wh84 2026-09-01 reviewed\n")
    assert subprocess.run(cmd, capture_output=True, env=env).returncode == 0
    assert subprocess.run(cmd, capture_output=True, env={**env, "AUDIT_STRICT": "1"}).returncode == 2
    (tmp_path / "allow.txt").write_text("garbage\n")
    assert subprocess.run(cmd, capture_output=True, env=env).returncode == 3


# -- the lock files ---------------------------------------------------------------------------------------
def read_lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """package -> (version, hashes)."""
    text = (ROOT / name).read_text()
    pins: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9_.\-]+)==([^\s\\;]+)", block)
        if m:
            pins[canonicalize_name(m[1])] = (m[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return pins


def requirements(name: str) -> list[Requirement]:
    out = []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(Requirement(line))
    return out


@pytest.mark.parametrize("txt, lock", [("requirements.txt", "requirements.lock"),
                                       ("requirements-dev.txt", "requirements-dev.lock")])
def test_every_requirement_is_pinned_with_hashes_in_its_lock(txt, lock):
    pins = read_lock(lock)
    wanted = requirements(txt) + (requirements("requirements.txt") if txt != "requirements.txt" else [])
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is not in {lock}: run scripts/lock.sh"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"{lock} pins {name}=={pins[name][0]}, outside {req}: run scripts/lock.sh")
    assert all(hashes for _, hashes in pins.values()), [n for n, (_, h) in pins.items() if not h]


def test_the_dev_lock_pins_the_runtime_packages_at_the_same_versions():
    runtime, dev = read_lock("requirements.lock"), read_lock("requirements-dev.lock")
    assert {n: v for n, (v, _) in runtime.items()} == {n: dev[n][0] for n in runtime if n in dev}
    assert set(runtime) <= set(dev)


def test_the_locks_keep_the_fyers_sdk_exact_pins():
    """fyers-apiv3 pins requests, aiohttp, websocket-client, setuptools exactly."""
    pins = read_lock("requirements.lock")
    exact = [Requirement(r) for r in metadata.requires("fyers-apiv3") or [] if "extra ==" not in r]
    assert {canonicalize_name(r.name) for r in exact} >= {"requests", "aiohttp", "websocket-client"}
    for req in exact:
        name = canonicalize_name(req.name)
        assert name in pins and req.specifier.contains(pins[name][0]), (req, pins.get(name))


def test_test_and_run_scripts_install_from_the_locks_with_hashes():
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    run_sh = (ROOT / "scripts" / "run.sh").read_text()
    assert "--require-hashes -r requirements-dev.lock" in test_sh and "scripts/audit.sh" in test_sh
    assert "--require-hashes -r requirements.lock" in run_sh
    assert "-r requirements-dev.txt" not in test_sh and "-r requirements.txt" not in run_sh


def test_the_web_process_never_imports_the_fyers_sdk_nor_its_old_pins():
    """docs/supply-chain.md: aiohttp, websocket-client and the SDK stay out of daphne."""
    code = (
        "import sys, django; django.setup()\n"
        "from tickchart.asgi import application\n"
        "import tickchart.urls, market.web.views, market.web.consumers\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'fyers_apiv3', 'aiohttp', 'websocket'})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "tickchart.settings"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_fyers_feed_loads_the_sdk_data_socket_without_aiohttp():
    code = ("import sys\nfrom fyers_apiv3.FyersWebsocket import data_ws\n"
            "sys.exit(1 if 'aiohttp' in sys.modules else 0)\n")
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
