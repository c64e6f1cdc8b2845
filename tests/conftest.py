"""Shared fixtures: the repository root and the real meshes in ../shared/meshes."""

from __future__ import annotations

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
