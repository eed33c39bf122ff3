"""shared/lab keeps its layout: every module in a part of the map, imports only down the
layers, no import cycle, and the state file's name in one module (shared/lab/README.md).

Read with `ast`, nothing imported or started. Every import counts: at module level, inside a
function, and under `if TYPE_CHECKING:` (a circle of type-only imports is still a circle).
`from lab.p import x` counts as an import of lab.p.x when that is a module, else of lab.p; a
package's own __init__, which Python runs first, is not counted as imported by its parts.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.topology import REPO

LAB = REPO / "shared" / "lab"
BASE = frozenset(
    {"lab", "lab.__main__", "lab.cli", "lab.topology", "lab.state", "lab.runtime"}
    | {"lab._proc", "lab._show"}
)
PACKAGES = ("native", "docker", "loadtest", "report", "bench", "install")
# What each part may import (itself included).
MAY_IMPORT = {
    "base": {"base"},
    "native": {"base", "native"},
    "docker": {"base", "docker"},
    "loadtest": {"base", "docker", "loadtest"},
    "report": {"base", "report"},
    "bench": {"base", "native", "docker", "loadtest", "report", "bench"},
    "install": {"install"},
}
# The entry of `python -m lab`: it starts and stops both runtimes.
ENTRY = "lab.cli"
ENTRY_MAY_IMPORT = {"base", "native", "docker"}


@dataclass(frozen=True)
class Import:
    target: str
    line: int


def module_name(path: Path, root: Path = LAB) -> str:
    parts = ("lab", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = LAB) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def part(module: str) -> str | None:
    """The part of the map a module belongs to, None when it is in none."""
    if module in BASE:
        return "base"
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 and pieces[1] in PACKAGES else None


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The module an import names: itself, else its nearest enclosing package."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str, known: dict[str, Path]) -> list[Import]:
    """Every lab module `module` imports, wherever the import statement is."""
    path = known[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == "lab" or name.startswith("lab."):
                found.append(Import(_resolve(name, known), node.lineno))
    return found


def layer_violations(known: dict[str, Path]) -> list[str]:
    found: list[str] = []
    for module in known:
        own = part(module)
        if own is None:
            continue  # test_every_module_is_in_a_part_of_the_map names it
        allowed = ENTRY_MAY_IMPORT if module == ENTRY else MAY_IMPORT[own]
        for imp in imports(module, known):
            theirs = part(imp.target)
            if theirs not in allowed:
                found.append(
                    f"{module} ({own}) imports {imp.target} ({theirs}) at line {imp.line}: "
                    f"{module} may import only {', '.join(sorted(allowed))}"
                )
    return found


def cycles(known: dict[str, Path]) -> list[list[str]]:
    """One circle through each group of modules that import each other (Tarjan's SCCs)."""
    graph = {m: sorted({i.target for i in imports(m, known) if i.target != m}) for m in known}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in graph:
        if node not in index:
            visit(node)
    return [_circle(min(group), group, graph) for group in groups]


def _circle(start: str, group: set[str], graph: dict[str, list[str]]) -> list[str]:
    """A shortest path from `start` back to itself inside its group (breadth first)."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in graph[node]:
            if nxt == start:
                return [*paths[node], start]
            if nxt in group and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no circle through {start}")  # a strongly connected group has one


@pytest.fixture(scope="module")
def known() -> dict[str, Path]:
    found = modules()
    assert len(found) > 50, f"only {len(found)} modules under {LAB}: is this the lab?"
    return found


def test_every_module_is_in_a_part_of_the_map(known: dict[str, Path]) -> None:
    outside = [
        f"{module} ({path.relative_to(REPO)}) is neither a base module nor in one of the "
        f"packages {', '.join(PACKAGES)}"
        for module, path in known.items()
        if part(module) is None
    ]
    assert not outside, "\n".join(outside)
    assert {f"lab.{p}" for p in PACKAGES} <= set(known), "a package of the map is missing"


def test_each_package_says_what_it_owns(known: dict[str, Path]) -> None:
    silent = [
        f"{known[f'lab.{p}'].relative_to(REPO)} has no docstring"
        for p in PACKAGES
        if not ast.get_docstring(ast.parse(known[f"lab.{p}"].read_text()))
    ]
    assert not silent, "\n".join(silent)


def test_imports_point_only_down_the_layers(known: dict[str, Path]) -> None:
    violations = layer_violations(known)
    assert not violations, "\n".join(violations)


def test_no_two_modules_import_each_other(known: dict[str, Path]) -> None:
    found = cycles(known)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_state_file_is_named_in_one_module(known: dict[str, Path]) -> None:
    naming = [m for m, path in known.items() if "state.json" in path.read_text()]
    assert naming == ["lab.state"], (
        f"'state.json' appears in {naming or 'no module'}; only lab.state may name it "
        "(others use state.path(run_dir))"
    )
