"""The package graph, built from the source: layers import only downward and no module imports
itself back through others. Imports inside functions count too, so none can dodge a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from support.cli import REPO

# Each package and the packages of ours it may import (besides itself).
ALLOWED = {
    "core": set(),
    "methods": {"core"},
    "harness": {"core", "methods"},
    "cluster": {"core", "methods", "harness", "leaderboard"},
    "leaderboard": {"core"},
    "prunebench": {"core", "methods", "harness", "cluster", "leaderboard"},  # the CLI folder
    "bench": {"core", "methods", "harness", "cluster", "leaderboard"},
    "scripts": {"core", "harness", "leaderboard"},  # protocols.py validates configs
}


LAYERS = ("core", "methods", "harness", "cluster", "leaderboard")  # folders installed as prunebench.LAYER


def module_name(path: Path) -> str:
    """The name a file is imported by: a layer's folder is the subpackage `prunebench.LAYER`."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[0] in LAYERS:
        parts.insert(0, "prunebench")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """The key of ALLOWED a module belongs to: its layer, or its top-level folder."""
    parts = module.split(".")
    return parts[1] if parts[0] == "prunebench" and len(parts) > 1 and parts[1] in LAYERS else parts[0]


def all_imports(path: Path) -> set[str]:
    """Every absolute name `path` imports, anywhere in the file (`from pkg import mod` names the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return found


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Our modules that `path` imports."""
    return (all_imports(path) & known) - {"prunebench"}  # the root package: every layer is inside it


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
        if package_of(target) != package_of(module) and package_of(target) not in ALLOWED[package_of(module)]
    )
    assert wrong == []


def test_layers_are_imported_by_their_installed_name_only():
    """`import core` would load a second copy of a layer (and fails outside the checkout)."""
    bare = sorted(
        f"{path.relative_to(REPO)} imports {name}"
        for package in ALLOWED
        for path in (REPO / package).rglob("*.py")
        for name in all_imports(path)
        if name.split(".")[0] in LAYERS
    )
    assert bare == []


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
