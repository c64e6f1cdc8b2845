"""Code-shape rules for the backend: no function over 80 lines and no import cycles.

Both are read from the source with ``ast`` (nothing is imported), so they cover function-level
imports too, which a run-time import graph would miss until that function runs. The add-on's
rules are checked in ``test_addon_structure.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 80
BACKEND = REPO / "backend" / "compact_sdf"


def _modules(root: Path, name: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``module`` imports anywhere in its file (any depth, relative or absolute)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` names the submodule; ``from pkg.mod import func`` names mod
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _graph(root: Path, name: str) -> dict[str, set[str]]:
    """Import edges between modules; a package's ``__init__`` is not counted as imported by its
    submodules (Python runs it first anyway), only explicit imports make edges."""
    mods = _modules(root, name)
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def test_no_function_longer_than_80_lines() -> None:
    long = [entry for path in _modules(BACKEND, "compact_sdf").values() for entry in _long_functions(path)]
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_no_import_cycles() -> None:
    cycle = _cycle(_graph(BACKEND, "compact_sdf"))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The two detectors find a planted long function and a planted function-level cycle."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import g\n\ndef f():\n" + "    x = 1\n" * 81)
    (pkg / "b.py").write_text("def g():\n    from . import a\n    return a\n")
    assert _long_functions(pkg / "a.py")
    assert _cycle(_graph(pkg, "pkg")) == ["pkg.a", "pkg.b", "pkg.a"]
