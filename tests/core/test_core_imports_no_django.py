"""market.core stays framework-free: no Django, Channels, Daphne, Redis or psycopg."""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import market.core

FORBIDDEN = ("django", "channels", "daphne", "redis", "psycopg")
ROOT = Path(__file__).resolve().parents[2]
CORE = Path(market.core.__file__).resolve().parent


def _modules():
    return ["market.core"] + [f"market.core.{m.name}" for m in pkgutil.iter_modules([str(CORE)])]


def test_core_modules_exist():
    mods = set(_modules())
    for name in ("timeframes", "sessions", "types", "engine", "derive", "fyers_messages", "simulator"):
        assert f"market.core.{name}" in mods


def test_importing_every_core_module_loads_no_framework_module():
    code = (
        "import importlib, json, sys\n"
        f"mods = {_modules()!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0].startswith({FORBIDDEN!r}))\n"
        "print(json.dumps(bad))\n"
        "assert not bad, bad\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def _callee(call: ast.Call) -> str:
    return getattr(call.func, "attr", getattr(call.func, "id", ""))


def test_core_source_has_no_framework_imports():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            elif isinstance(node, ast.Call) and _callee(node) in ("import_module", "__import__"):
                names = [a.value for a in node.args[:1]
                         if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            else:
                continue
            for name in names:
                if name.split(".")[0].startswith(FORBIDDEN):
                    offenders.append(f"{path.name}:{node.lineno} {name}")
    assert offenders == []
