"""The benchmarks stay a small set on one harness: at most twelve, no import cycle among them, and
the product (backend, add-on) imports neither them nor the research scripts.

Read with ``ast`` like ``test_code_shape.py``, so function-level imports count too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from test_code_shape import _cycle, _imports

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
MAX_BENCHMARKS = 12


def _scripts(folder: Path) -> dict[str, Path]:
    """Module name -> file for the scripts of a folder (they import each other as top-level modules)."""
    return {p.stem: p for p in sorted(folder.glob("*.py"))}


def test_at_most_twelve_benchmarks() -> None:
    benchmarks = [name for name in _scripts(BENCH) if not name.startswith("_")]
    assert len(benchmarks) <= MAX_BENCHMARKS, f"{len(benchmarks)} benchmarks: {benchmarks}"


def test_no_import_cycle_among_benchmarks() -> None:
    mods = _scripts(BENCH)
    cycle = _cycle({m: _imports(m, p, set(mods)) for m, p in mods.items()})
    assert cycle is None, "import cycle in bench/: " + " -> ".join(cycle or [])


def test_benchmarks_share_the_harness() -> None:
    """Every benchmark reads its paths, model and results through bench/_harness.py."""
    mods = _scripts(BENCH)
    graph = {m: _imports(m, p, set(mods)) for m, p in mods.items()}
    # the other benchmarks that a benchmark imports count: they import the harness themselves
    reach = {m: graph[m] | {n for d in graph[m] for n in graph[d]} for m in graph}
    missing = [m for m in mods if not m.startswith("_") and "_harness" not in reach[m]]
    assert not missing, f"benchmarks not on bench/_harness.py: {missing}"


def test_the_product_imports_no_benchmark_or_research_script() -> None:
    scripts = set(_scripts(BENCH)) | set(_scripts(REPO / "research"))
    found = []
    for path in [*(REPO / "backend").rglob("*.py"), *(REPO / "addon").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            found += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in scripts]
    assert not found, "the product imports bench/research scripts:\n" + "\n".join(found)


def test_no_test_loads_a_benchmark_by_path() -> None:
    """Product logic is tested in the backend, not through a benchmark file."""
    pattern = re.compile(r"spec_from_file_location\([^\n]*bench")
    loaders = [
        p.name
        for p in (REPO / "tests").glob("test_*.py")
        if "spec_from_file_location" in (text := p.read_text(encoding="utf-8")) and pattern.search(text)
    ]
    assert not loaders, f"tests that load a benchmark by path: {loaders}"
