"""The house rule of docs/ARCHITECTURE.md ("The map of the code"), held against the code.

Read from the source's imports, nothing is run: the domain imports no AWS
code and no layer above it, storage imports no service, imports between
families follow the map, no module passes 500 lines, and no two modules
import each other.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers/core/insights"
LAYERS = ("domain", "services", "storage")
AWS = ("boto3", "botocore", "pynamodb", "moto")
MAX_LINES = 500
# Which families a family's modules may import (besides its own and plumbing).
# Core's storage reads domain/segments: a profile item carries its segment index keys.
FAMILY_IMPORTS = {
    "core": {"segments"},
    "segments": {"core"},
    "console": {"core", "segments"},
    "imports": {"core", "segments"},  # an import paces itself by the index shards
    "salesforce": {"core", "imports"},
    "segment_api": {"core"},
    "idp": {"core"},
    "team": {"core", "idp"},  # the console's sign-in reuses OIDC discovery and ID-token checks
    # Membership events judge profiles with the segments' evaluator and rules.
    "notify": {"core", "segments"},
    "exports": {"core"},
}


@cache
def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


@cache
def imports_of(name: str) -> frozenset[str]:
    """Every module or package a module imports (`from a import b` counts a.b when it is one)."""
    tree = ast.parse(modules()[name].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if f"{node.module}.{alias.name}" in modules()
            )
    return frozenset(found)


def place(name: str) -> tuple[str | None, str | None]:
    """(layer, family) of an insights module: ('services', 'idp') for insights.services.idp.saml."""
    parts = name.split(".")
    if len(parts) < 3 or parts[1] not in LAYERS:
        return (parts[1] if len(parts) > 1 else None), None
    return parts[1], parts[2]


def test_the_domain_is_pure() -> None:
    bad = [
        f"{name} imports {target}"
        for name in modules()
        if place(name)[0] == "domain"
        for target in imports_of(name)
        if target.split(".")[0] in AWS
        or place(target)[0] in ("services", "storage", "local", "cli", "sdk", "console")
    ]
    assert bad == []


def test_nothing_imports_upward() -> None:
    above = {"storage": ("services", "local", "cli"), "services": ("local", "cli")}
    bad = [
        f"{name} imports {target}"
        for name in modules()
        for target in imports_of(name)
        if target.startswith("insights.")
        and place(target)[0] in above.get(place(name)[0] or "", ())
    ]
    shipped = [n for n in modules() if place(n)[0] not in ("local", "cli")]
    bad += [
        f"{name} imports {target}"
        for name in shipped
        for target in imports_of(name)
        if place(target)[0] in ("local", "cli")
    ]
    assert bad == []


def test_families_import_only_what_the_map_allows() -> None:
    bad = []
    for name in modules():
        family = place(name)[1]
        if family not in FAMILY_IMPORTS:
            continue
        allowed = FAMILY_IMPORTS[family] | {family}
        for target in imports_of(name):
            other = place(target)[1] if target.startswith("insights.") else None
            if other in FAMILY_IMPORTS and other not in allowed:
                bad.append(f"{name} ({family}) imports {target} ({other})")
    assert bad == []


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
        for path in modules().values()
    }
    assert {name: n for name, n in long.items() if n > MAX_LINES} == {}


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_part_of_an_import_circle(name: str) -> None:
    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [t for t in imports_of(start) if t in modules()]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo += [t for t in imports_of(current) if t in modules()]
        return seen

    # A package's __init__ is reached by importing any module in it; only real edges count.
    assert name not in reach(name) or modules()[name].name == "__init__.py"
