"""The layout's rules, read from the source (function-level imports included):

- pure modules (``market.core``, each vendor's ``messages``, the Fyers recordings, the
  feed contract and pipeline) import no framework and load none when imported;
- nothing imports upward: each package has a rank and imports only its own rank or
  below (``core`` imports nothing of the project; vendors never import ``web``; ``web``
  never imports a vendor);
- there is no import circle between modules;
- only ``market.selectors`` (reads) and ``market.services`` (writes) use the ORM (besides
  the models, their migrations, Django admin and ``market.tokens``, the ApiToken entity's
  own services and selector): nothing else touches ``.objects`` or ``transaction`` or
  imports ``market.models`` except under ``TYPE_CHECKING`` (for annotations).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("django", "channels", "daphne", "redis", "psycopg", "twisted", "websockets", "requests")

#: Packages and modules from the bottom up; the longest matching prefix gives the rank.
RANKS: dict[str, int] = {
    "market.core": 0,
    "market.vendors.fyers.messages": 0,
    "market.vendors.fyers.recording": 0,
    "market.vendors.finnhub.messages": 0,
    "market.feed.base": 1,
    "market.feed.pipeline": 1,
    "market.feed.journal": 1,
    "market.conf": 2,
    "market.models": 2,
    "market.apps": 2,
    "market.migrations": 2,
    "market.selectors": 3,
    "market.services": 3,
    "market.budget": 3,      # the stores of a vendor app's shared budgets (over services, selectors, Redis)
    "market.tokens": 3,
    "market.metrics": 3,
    "market.live": 4,
    "market.feed": 5,
    "market.vendors": 6,
    "market.web": 7,
    "market.pulse": 8,
    "market.admin": 9,
    "market.urls": 9,
    "market.routing": 9,
    "market.management": 9,
    "market": 9,
    "tickchart": 10,
}
PURE = [name for name, rank in RANKS.items() if rank <= 1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=1)
def _sources() -> dict[str, Path]:
    files = [*ROOT.joinpath("market").rglob("*.py"), *ROOT.joinpath("tickchart").rglob("*.py")]
    return {_module_name(p): p for p in sorted(files) if "__pycache__" not in p.parts}


def _imports(name: str, path: Path) -> list[tuple[int, str]]:
    """Every module ``name`` imports (anywhere in the file), as (line, module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            modules = _sources()
            for a in node.names:  # a submodule if there is one, else a name from ``base``
                sub = f"{base}.{a.name}"
                found.append((node.lineno, sub if sub in modules else base))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__"):
            found += [(node.lineno, a.value) for a in node.args[:1]
                      if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return found


def _rank(module: str) -> int:
    best = max((k for k in RANKS if module == k or module.startswith(k + ".")), key=len)
    return RANKS[best]


@lru_cache(maxsize=1)
def _graph() -> dict[str, set[str]]:
    sources = _sources()
    return {name: {m for _, m in _imports(name, path) if m in sources and m != name}
            for name, path in sources.items()}


def test_every_pure_module_is_covered_and_exists():
    sources = _sources()
    pure = sorted(n for n in sources if _rank(n) <= 1)
    for name in ("market.core.engine", "market.core.sessions", "market.core.types", "market.core.demand",
                 "market.vendors.fyers.messages", "market.vendors.finnhub.messages", "market.feed.pipeline"):
        assert name in pure
    assert len(pure) >= 18, pure


def test_pure_modules_have_no_framework_imports():
    offenders = [f"{name}:{line} {mod}" for name, path in _sources().items() if _rank(name) <= 1
                 for line, mod in _imports(name, path) if mod.split(".")[0].startswith(FORBIDDEN)]
    assert offenders == []


def test_importing_every_pure_module_loads_no_framework_module():
    mods = sorted(n for n in _sources() if _rank(n) <= 1)
    code = (
        "import importlib, json, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0].startswith({FORBIDDEN!r}))\n"
        "print(json.dumps(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_nothing_imports_upward():
    upward = []
    for name, path in _sources().items():
        for line, mod in _imports(name, path):
            if mod.split(".")[0] in ("market", "tickchart") and mod in _sources() and _rank(mod) > _rank(name):
                upward.append(f"{name}:{line} imports {mod} (rank {_rank(name)} -> {_rank(mod)})")
    assert sorted(set(upward)) == []


@pytest.mark.parametrize("importer, imported", [
    ("market.core", "market."),            # core imports nothing of the project but core
    ("market.vendors", "market.web"),
    ("market.web", "market.vendors"),
    ("market.live", "market.models"),       # channel-layer messaging holds no ORM
    ("market.feed", "market.web"),
])
def test_forbidden_directions(importer, imported):
    hits = []
    for name, path in _sources().items():
        if not (name == importer or name.startswith(importer + ".")):
            continue
        for line, mod in _imports(name, path):
            if importer == "market.core" and mod.startswith("market.") and not mod.startswith("market.core"):
                hits.append(f"{name}:{line} {mod}")
            elif importer != "market.core" and (mod == imported or mod.startswith(imported + ".")):
                hits.append(f"{name}:{line} {mod}")
    assert hits == []


def test_no_import_circle():
    graph, circles = _graph(), []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert circles == []


def test_market_itself_holds_at_most_14_modules():
    flat = sorted(p.name for p in ROOT.joinpath("market").glob("*.py"))
    assert len(flat) <= 14, flat


#: Modules that may use the ORM. ``market.tokens`` holds the services and the selector of
#: one entity (ApiToken, HackSoft style) beside the policy that needs them (market.web.access).
#: market.feed.locks holds the writer lock on a connection of its own (an advisory lock, no query of data).
ORM_ALLOWED = ("market.selectors", "market.services", "market.models", "market.admin", "market.migrations",
               "market.tokens", "market.feed.locks")


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The nodes inside ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) blocks."""
    inside: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (getattr(node.test, "id", None) == "TYPE_CHECKING"
                                         or getattr(node.test, "attr", None) == "TYPE_CHECKING"):
            for stmt in node.body:
                inside.update(ast.walk(stmt))
    return inside


def _orm_uses(source: str, package: str = "market") -> list[tuple[int, str]]:
    """Where ``source`` (a module of ``package``) uses the ORM: ``.objects``, ``transaction``,
    or an import of ``market.models`` outside ``TYPE_CHECKING``."""
    tree = ast.parse(source)
    hints = _type_checking_only(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "objects":
            found.append((node.lineno, ".objects"))
        elif isinstance(node, ast.Name) and node.id == "transaction":
            found.append((node.lineno, "transaction"))
        elif isinstance(node, ast.ImportFrom) and node not in hints:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [a.name for a in node.names]
            if base == "market.models" or (base == "market" and "models" in names):
                found.append((node.lineno, f"from {base} import {', '.join(names)}"))
            if base == "django.db" and {"transaction", "connection", "connections"} & set(names):
                found.append((node.lineno, f"from django.db import {', '.join(names)}"))  # raw SQL too
        elif isinstance(node, ast.Import) and node not in hints:
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name == "market.models"]
    return found


@pytest.mark.parametrize("source, expected", [
    ("from market.models import Symbol\nSymbol.objects.filter(active=True)\n", 2),
    ("from django.db import transaction\nwith transaction.atomic(): pass\n", 2),
    ("import market.models\n", 1),
    ("from .. import models\n", 1),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from market.models import Symbol\n", 0),
    ("from market import selectors\nselectors.symbol_list(active=True)\n", 0),
])
def test_the_orm_check_sees_queries_writes_and_model_imports(source, expected):
    assert len(_orm_uses(source, "market.vendors")) == expected


def test_only_selectors_and_services_use_the_orm():
    offenders = []
    for name, path in _sources().items():
        if not name.startswith("market") or any(name == a or name.startswith(a + ".") for a in ORM_ALLOWED):
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        offenders += [f"{name}:{line} {what}" for line, what in _orm_uses(path.read_text(), package)]
    assert offenders == []
