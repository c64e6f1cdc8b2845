"""The documentation stays short and about the product: page length limits, and no page speaks of
how it was developed (work sessions, dates of work, machine paths, development tools). History
belongs in git."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIMITS = {"README.md": 250, "docs/benchmarks": 200, "docs": 300}
FORBIDDEN = re.compile(
    r"\bsessions?\b|/work/|/tmp/|device tool|\bassistants?\b|\bengineers?\b|\brounds\b|\bUTC\b|\btoday\b"
    r"|\b20\d\d-\d\d-\d\d\b",
    re.IGNORECASE,
)


def _pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def _limit(page: Path) -> int:
    rel = page.relative_to(REPO)
    return LIMITS[next(k for k in LIMITS if str(rel) == k or str(rel.parent).startswith(k))]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_page_is_short_and_about_the_product(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= _limit(page), f"{len(lines)} lines, limit {_limit(page)}"
    found = [f"{i}: {m.group(0)!r}" for i, line in enumerate(lines, 1) if (m := FORBIDDEN.search(line))]
    assert not found, "words about the development, not the product:\n" + "\n".join(found)


def test_the_benchmark_index_links_every_page() -> None:
    index = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (REPO / "docs" / "benchmarks").glob("*.md"))
    assert [p for p in pages if f"benchmarks/{p}" not in index] == []
