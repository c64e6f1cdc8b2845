"""A thin-walled CAD housing with through-holes, trained at the `preview` preset, keeps its holes.

The fused mesh of a real training run (not an analytic field) must keep every hole at least one
feature-grid cell across, close none of the floor between them, and stay one body. The housing's
walls are 0.015 of its length (1.7 fine-lattice cells of `preview`), the shape that s_g misses at
the CPU presets. Holes narrower than one grid cell of `preview` (33 vertices per side) are beyond
what the preset can hold and are left out (docs/benchmarks/fidelity.md).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import trimesh
from compact_sdf.checkpoint import load_model
from compact_sdf.config import get_preset
from compact_sdf.data import prepare_mesh
from compact_sdf.data.families import box, union
from compact_sdf.extract.fusion import extract_shape
from compact_sdf.surface_figures import shape_stats
from compact_sdf.training.train import train
from manifold3d import Manifold

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

WALL = 0.015
# (x, y, diameter) in the housing's own units (longest side 1.0; normalised, about 1.8x that)
DIAMETERS = np.linspace(0.036, 0.05, 8)
HOLES = [(-0.3 + 0.2 * (i % 4), -0.12 + 0.24 * (i // 4), d) for i, d in enumerate(DIAMETERS)]
FLOOR = [(-0.2, 0.0), (0.0, 0.0), (0.2, 0.0), (-0.4, 0.2)]


def housing() -> trimesh.Trimesh:
    outer = box((1.0, 0.6, 0.3), (0.0, 0.0, 0.15))
    inner = box((1.0 - 2 * WALL, 0.6 - 2 * WALL, 0.3), (0.0, 0.0, 0.15 + WALL))
    cuts = [Manifold.cylinder(1.0, d / 2, d / 2, 32, center=True).translate([x, y, 0.0]) for x, y, d in HOLES]
    solid = (outer - inner) - union(cuts)
    mesh = solid.to_mesh()
    return trimesh.Trimesh(np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts), process=False)


def crossings(mesh: trimesh.Trimesh, a: np.ndarray, b: np.ndarray) -> int:
    """Triangles the segment a-b passes through (Moller-Trumbore over all faces)."""
    v, d = mesh.triangles, b - a
    e1, e2 = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]
    p = np.cross(d, e2)
    det = (e1 * p).sum(1)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    t0 = a - v[:, 0]
    u = (t0 * p).sum(1) * inv
    q = np.cross(t0, e1)
    w = (q * d).sum(1) * inv
    t = (q * e2).sum(1) * inv
    return int((ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t >= 0) & (t <= 1)).sum())


def through(mesh: trimesh.Trimesh, x: float, y: float) -> int:
    """Crossings of a vertical segment through the floor at (x, y)."""
    return crossings(mesh, np.array([x, y, -0.05]), np.array([x, y, 0.05]))


def test_the_truth_is_what_the_test_says() -> None:
    gt = housing()
    assert gt.is_watertight and 1 - gt.euler_number // 2 == len(HOLES)
    assert all(through(gt, x, y) == 0 for x, y, _ in HOLES)
    assert all(through(gt, x, y) >= 2 for x, y in FLOOR)


def test_a_holed_thin_walled_housing_keeps_its_holes_at_preview(tmp_path: Path) -> None:
    cfg = get_preset("preview")
    train(tmp_path, [prepare_mesh(housing(), name="housing", cfg=cfg.sampling)], cfg)
    loaded = load_model(tmp_path)
    ecfg = replace(loaded.config.extract, resolution=128)
    mesh = extract_shape(loaded, "housing", ecfg, "fused").to_trimesh()
    stats = shape_stats(mesh)
    assert stats["components"] == 1 and stats["watertight"] and stats["manifold"]
    closed = [round(d, 4) for x, y, d in HOLES if through(mesh, x, y)]
    assert not closed, f"holes closed by the default fusion (diameters): {closed}"
    assert all(through(mesh, x, y) >= 2 for x, y in FLOOR), "the floor between the holes is open"
    assert stats["genus"] >= len(HOLES)
