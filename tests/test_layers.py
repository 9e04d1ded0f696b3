"""The arrows point one way: ``cli`` -> ``engine`` -> ``strategies`` -> ``sentinel`` (the domain).

Every ``.py`` file of the four packages is parsed, not imported, so an import hidden inside a
function or under ``if TYPE_CHECKING`` counts as much as one at the top of the file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sentinel", "engine", "strategies", "cli")

#: package -> the project packages it must never import (anything else of ours is allowed).
FORBIDDEN = {
    "sentinel": {"engine", "strategies", "cli"},
    "strategies": {"engine", "cli"},
    "engine": {"cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    """Every module of the four packages by dotted name."""
    files = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[module_name(path)] = path
    return files


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(path: Path, *, module_level_only: bool) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, module, names)`` for each import in the file; ``names`` only for ``from``.

    With ``module_level_only``, imports inside function bodies are skipped (they run on call,
    not on import); those in class bodies, ``try`` and ``if TYPE_CHECKING`` blocks are kept.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    module = module_name(path)
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST) -> Iterator[tuple[int, str, list[str]]]:
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child.lineno, alias.name, []
            elif isinstance(child, ast.ImportFrom):
                names = [a.name for a in child.names]
                yield child.lineno, _resolve(child, module, is_package), names
            yield from visit(child)

    yield from visit(tree)


def test_imports_point_down_the_layers():
    """sentinel imports no engine, strategies or cli; strategies no engine or cli; engine no cli."""
    bad = []
    for module, path in source_files().items():
        layer = module.split(".")[0]
        forbidden = FORBIDDEN.get(layer, set())
        for line, target, names in imports(path, module_level_only=False):
            for t in [target] if target else names:  # ``from .. import x`` above a top package
                if t.split(".")[0] in forbidden:
                    bad.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {t}")
    assert not bad, (
        "imports against the layers (cli -> engine -> strategies -> sentinel):\n  "
        + "\n  ".join(bad)
    )


def module_graph() -> dict[str, dict[str, int]]:
    """Module-level imports between the project's own modules: ``{module: {target: line}}``.

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``.
    """
    files = source_files()
    graph: dict[str, dict[str, int]] = {m: {} for m in files}
    for module, path in files.items():
        for line, target, names in imports(path, module_level_only=True):
            if names:
                targets = [f"{target}.{n}" if f"{target}.{n}" in files else target for n in names]
            else:
                targets = [target]
            for t in targets:
                if t in files and t != module:
                    graph[module].setdefault(t, line)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) for every strongly connected component with more than one
    module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)

    cycles = []
    for comp in components:  # a shortest way back to the first module, inside the component
        members, start = set(comp), comp[0]
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w == start:
                        cycle = [*paths[v], start]
                        break
                    if w in members and w not in paths:
                        paths[w] = [*paths[v], w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        cycles.append(cycle or comp)
    return cycles


def test_no_import_cycles():
    """No circle of module-level imports among the project's modules."""
    graph = module_graph()
    files = source_files()
    assert "cli.run" in graph["cli.main"], "the parser no longer sees module-level imports"
    lines = []
    for cycle in find_cycles(graph):
        steps = [
            f"{files[a].relative_to(ROOT)}:{graph[a][b]} ({a} -> {b})"
            for a, b in zip(cycle, cycle[1:], strict=False)
        ]
        lines.append(" -> ".join(cycle) + "\n      " + "\n      ".join(steps))
    assert not lines, "module-level import cycles:\n  " + "\n  ".join(lines)
