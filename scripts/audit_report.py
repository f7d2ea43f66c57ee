"""Judge pip-audit's and npm audit's JSON against the allow-list (scripts/audit.sh).

Three outcomes, kept apart on purpose (docs/supply-chain.md):
- findings: a known vulnerability that no current allow-list entry covers -> exit 1;
- unreachable: an audit service could not be asked, or answered for nothing (pip-audit
  reports "No known vulnerabilities found" and exits 0 when PyPI's per-version JSON
  answers 404 for every package: that is not a clean bill) -> a warning and exit 0, or
  exit 2 under AUDIT_STRICT=1;
- clean -> exit 0.
A broken allow-list or an audit tool failing for another reason -> exit 3.

Allow-list lines (``audit-allowlist.txt``)::

    <ID>  <review-by YYYY-MM-DD>  <reason ...>

``ID`` is the advisory id pip-audit or npm reports (PYSEC-…, GHSA-…, CVE-…; aliases
match too). An entry past its review date no longer allows anything: review it, then
move the date. Blank lines and ``#`` comments are ignored.

Standard library only; ``tests/security/test_audit.py`` feeds it fixtures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from dataclasses import dataclass, field

EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNREACHABLE, EXIT_ERROR = 0, 1, 2, 3
NPM_LEVELS = ("info", "low", "moderate", "high", "critical")

# Signs that a service was not reached (as opposed to the tool failing on our input).
_NETWORK = re.compile(
    r"ConnectionError|ConnectTimeout|ReadTimeout|Max retries exceeded|NameResolutionError|"
    r"Temporary failure in name resolution|Network is unreachable|Connection refused|"
    r"ServiceError|SSLError|timed out|\b40[345]\b|\b5\d\d\b|E40[345]|E5\d\d|ENOTFOUND|EAI_AGAIN|"
    r"ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|audit endpoint returned an error",
    re.I,
)
_ALLOW_LINE = re.compile(r"^(?P<id>\S+)\s+(?P<date>\d{4}-\d{2}-\d{2})\s+(?P<reason>\S.*)$")


class AllowListError(ValueError):
    pass


@dataclass(frozen=True)
class Allowed:
    id: str
    review_by: dt.date
    reason: str


@dataclass
class Finding:
    tool: str
    package: str
    version: str
    id: str
    aliases: tuple[str, ...] = ()
    severity: str = ""
    fix: str = ""

    def ids(self) -> set[str]:
        return {self.id, *self.aliases}

    def line(self) -> str:
        also = f" (also {', '.join(self.aliases)})" if self.aliases else ""
        sev = f" [{self.severity}]" if self.severity else ""
        fix = f"; fixed in {self.fix}" if self.fix else ""
        return f"{self.tool}: {self.package} {self.version}: {self.id}{also}{sev}{fix}"


@dataclass
class Verdict:
    tool: str
    unreachable: str = ""  # why, when the service was not (fully) asked
    error: str = ""
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    audited: int = 0


def parse_allowlist(text: str) -> dict[str, Allowed]:
    entries: dict[str, Allowed] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        m = _ALLOW_LINE.match(line)
        if m is None:
            raise AllowListError(f"line {n}: want '<ID> <review-by YYYY-MM-DD> <reason>', got {raw.strip()!r}")
        try:
            review_by = dt.date.fromisoformat(m["date"])
        except ValueError:
            raise AllowListError(f"line {n}: {m['date']!r} is not a date") from None
        if m["id"] in entries:
            raise AllowListError(f"line {n}: {m['id']} is listed twice")
        entries[m["id"]] = Allowed(m["id"], review_by, m["reason"].strip())
    return entries


def judge_pip(output: str, returncode: int, stderr: str = "") -> Verdict:
    verdict = Verdict("pip-audit")
    try:
        data = json.loads(output) if output.strip() else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        why = (stderr or output).strip().splitlines()[-1:] or [f"exit {returncode}, no output"]
        if _NETWORK.search(stderr or output or ""):
            verdict.unreachable = f"vulnerability service not reachable ({why[0][:200]})"
        else:
            verdict.error = f"pip-audit failed (exit {returncode}): {why[0][:300]}"
        return verdict
    for dep in data["dependencies"]:
        name, version = str(dep.get("name", "?")), str(dep.get("version", ""))
        if dep.get("skip_reason"):
            verdict.skipped.append(f"{name}: {dep['skip_reason']}")
            continue
        verdict.audited += 1
        for vuln in dep.get("vulns") or []:
            verdict.findings.append(Finding(
                "pip-audit", name, version, str(vuln.get("id")), tuple(str(a) for a in vuln.get("aliases") or ()),
                fix=", ".join(vuln.get("fix_versions") or ()),
            ))
    if verdict.skipped and verdict.audited == 0:
        verdict.unreachable = (f"no package could be audited ({len(verdict.skipped)} skipped, e.g. "
                               f"{verdict.skipped[0]}): the vulnerability service did not answer for them")
    elif verdict.skipped:
        verdict.unreachable = f"{len(verdict.skipped)} package(s) could not be audited"
    return verdict


def _npm_ids(via: object) -> tuple[str, str]:
    if isinstance(via, dict):
        url = str(via.get("url") or "")
        m = re.search(r"(GHSA-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})", url, re.I)
        return (m.group(1) if m else str(via.get("source") or via.get("title") or url)), str(via.get("severity", ""))
    return "", ""


def judge_npm(output: str, returncode: int, stderr: str = "", level: str = "critical") -> Verdict:
    verdict = Verdict("npm audit")
    try:
        data = json.loads(output) if output.strip() else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    if "vulnerabilities" not in data:
        text = f"{stderr}\n{output}"
        status = data.get("statusCode")
        code = (data.get("error") or {}).get("code") if isinstance(data.get("error"), dict) else None
        if _NETWORK.search(text) or status or code in {"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT"}:
            message = data.get("message") or (stderr.strip().splitlines() or ["no answer"])[-1]
            verdict.unreachable = f"audit endpoint not reachable ({str(message)[:200]})"
        else:
            verdict.error = f"npm audit failed (exit {returncode}): {(stderr or output).strip()[:300]}"
        return verdict
    threshold = NPM_LEVELS.index(level)
    for name, vuln in (data.get("vulnerabilities") or {}).items():
        verdict.audited += 1
        for via in vuln.get("via") or []:
            advisory, severity = _npm_ids(via)
            if not advisory:
                continue  # a transitive pointer ("via": ["other-package"]): reported on that one
            rank = NPM_LEVELS.index(severity) if severity in NPM_LEVELS else len(NPM_LEVELS)  # unknown: report
            if rank < threshold:
                continue
            verdict.findings.append(Finding("npm audit", name, str(vuln.get("range", "")), advisory,
                                            severity=severity))
    return verdict


def apply_allowlist(verdicts: list[Verdict], allow: dict[str, Allowed], today: dt.date) -> tuple[
        list[Finding], list[tuple[Finding, Allowed]], list[str]]:
    """(unallowed findings, allowed ones with their entry, warnings about the list)."""
    bad, allowed, warnings = [], [], []
    used: set[str] = set()
    for verdict in verdicts:
        for f in verdict.findings:
            entry = next((allow[i] for i in sorted(f.ids()) if i in allow), None)
            if entry is None:
                bad.append(f)
            elif entry.review_by < today:
                warnings.append(f"allow-list entry {entry.id} was due for review on {entry.review_by}: "
                                "it no longer allows anything")
                bad.append(f)
            else:
                allowed.append((f, entry))
                used.add(entry.id)
    for entry in allow.values():
        if entry.id not in used and entry.review_by >= today:
            warnings.append(f"allow-list entry {entry.id} matched nothing this run (kept until {entry.review_by})")
    return bad, allowed, warnings


def decide(verdicts: list[Verdict], allow: dict[str, Allowed], today: dt.date, strict: bool,
           out=sys.stdout) -> int:
    bad, allowed, warnings = apply_allowlist(verdicts, allow, today)
    for f, entry in allowed:
        print(f"audit: allowed {f.line()} -- {entry.reason} (review by {entry.review_by})", file=out)
    for w in warnings:
        print(f"audit: warning: {w}", file=out)
    errors = [v for v in verdicts if v.error]
    unreachable = [v for v in verdicts if v.unreachable]
    for v in errors:
        print(f"audit: ERROR: {v.error}", file=out)
    for v in unreachable:
        print(f"audit: WARNING: {v.tool}: {v.unreachable}. Known vulnerabilities were NOT checked"
              f"{' (AUDIT_STRICT=1: failing)' if strict else ''}.", file=out)
    for f in bad:
        print(f"audit: VULNERABLE {f.line()}", file=out)
    if bad:
        print(f"audit: {len(bad)} known vulnerabilit{'y' if len(bad) == 1 else 'ies'} not in the allow-list "
              "(fix the pin, or add a reviewed entry to audit-allowlist.txt)", file=out)
        return EXIT_FINDINGS
    if errors:
        return EXIT_ERROR
    if unreachable:
        return EXIT_UNREACHABLE if strict else EXIT_CLEAN
    print("audit: no known vulnerabilities" + (f" ({len(allowed)} allowed)" if allowed else ""), file=out)
    return EXIT_CLEAN


def _read(path: str | None) -> str:
    if not path or not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--allowlist", required=True)
    p.add_argument("--pip-json")
    p.add_argument("--pip-stderr")
    p.add_argument("--pip-rc", type=int, default=0)
    p.add_argument("--npm-json")
    p.add_argument("--npm-stderr")
    p.add_argument("--npm-rc", type=int, default=0)
    p.add_argument("--npm-level", default=os.environ.get("AUDIT_NPM_LEVEL", "critical"), choices=NPM_LEVELS)
    p.add_argument("--today", default=None, help="YYYY-MM-DD (tests)")
    p.add_argument("--strict", action="store_true", default=os.environ.get("AUDIT_STRICT") == "1")
    args = p.parse_args(argv)
    try:
        allow = parse_allowlist(_read(args.allowlist))
    except AllowListError as exc:
        print(f"audit: ERROR: {args.allowlist}: {exc}")
        return EXIT_ERROR
    verdicts = []
    if args.pip_json is not None:
        verdicts.append(judge_pip(_read(args.pip_json), args.pip_rc, _read(args.pip_stderr)))
    if args.npm_json is not None:
        verdicts.append(judge_npm(_read(args.npm_json), args.npm_rc, _read(args.npm_stderr), args.npm_level))
    today = dt.date.fromisoformat(args.today) if args.today else dt.date.today()
    return decide(verdicts, allow, today, args.strict)


if __name__ == "__main__":
    sys.exit(main())
