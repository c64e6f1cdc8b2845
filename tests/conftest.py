"""Shared fixtures: the repository root and the real meshes in ../shared/meshes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MESHES = REPO.parent / "shared" / "meshes"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_meshes() -> Path:
    """The developer meshes; CI lays shared/ beside the clone, so their absence is a real failure."""
    assert SHARED_MESHES.is_dir(), f"missing {SHARED_MESHES}: shared/ must sit beside the repository"
    return SHARED_MESHES


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny nets on a 2-core box: one intra-op thread avoids OpenMP spin contention (up to 5x faster)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
