"""The add-on's module structure (issue 15): no import cycles (also through imports inside functions), no
operator module importing from another, never the backend or torch, and no function over 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ADDON = Path(__file__).resolve().parents[1] / "addon"
MAX_FUNCTION_LINES = 80


def _trees() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(), str(p)) for p in sorted(ADDON.glob("*.py"))}


def _imports(tree: ast.Module) -> set[str]:
    """Sibling modules imported anywhere in the module (``from . import x``, ``from .x import y``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    trees = _trees()
    return {name: {d for d in _imports(tree) if d in trees and d != name} for name, tree in trees.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path of module names, or [] (depth-first search with colours)."""
    colour: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        colour[node] = 1
        for dep in sorted(graph[node]):
            if colour.get(dep) == 1:
                return [*path, node, dep]
            if dep not in colour and (found := visit(dep, [*path, node])):
                return found
        colour[node] = 2
        return []

    for start in sorted(graph):
        if start not in colour and (found := visit(start, [])):
            return found
    return []


def test_no_import_cycles() -> None:
    assert _cycle(_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_operator_modules_import_no_other_operator_module() -> None:
    graph = _graph()
    crossings = {
        (name, dep)
        for name, deps in graph.items()
        if name.startswith("operators_")
        for dep in deps
        if dep.startswith("operators_")
    }
    assert crossings == set()


def test_the_addon_never_imports_the_backend_or_torch() -> None:
    for name, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert not roots & {"torch", "compact_sdf", "numpy"}, name


def test_no_function_over_80_lines() -> None:
    long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in _trees().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
