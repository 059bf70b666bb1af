"""The package graph, built from the source: layers import only downward and no module imports
itself back through others. Imports inside functions count too, so none can dodge a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

# Each package and the packages of ours it may import (besides itself).
ALLOWED = {
    "core": set(),
    "methods": {"core"},
    "harness": {"core", "methods"},
    "cluster": {"core", "methods", "harness", "leaderboard"},
    "leaderboard": {"core"},
    "prunebench": {"core", "methods", "harness", "cluster", "leaderboard"},
    "bench": {"core", "methods", "harness", "cluster", "leaderboard"},
    "scripts": {"core", "leaderboard"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Our modules that `path` imports, anywhere in the file (`from pkg import mod` names the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def import_graph() -> dict[str, set[str]]:
    files = [path for package in ALLOWED for path in (REPO / package).rglob("*.py")]
    known = {module_name(path) for path in files}
    graph = {module_name(path): imported_modules(path, known) for path in files}
    return {module: targets - {module} for module, targets in graph.items()}  # `from pkg import sub` inside pkg


def test_packages_import_only_downward():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if target.split(".")[0] != module.split(".")[0] and target.split(".")[0] not in ALLOWED[module.split(".")[0]]
    )
    assert wrong == []


def test_no_module_reaches_itself_through_its_imports():
    graph = import_graph()
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            module, path = stack.pop()
            for target in graph.get(module, ()):
                if target == start:
                    cycles.append(" -> ".join([*path, target]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*path, target]))
    assert cycles == []
