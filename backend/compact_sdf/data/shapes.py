"""Shapes the project ships, so the demo and tests never depend on downloaded files.

Four watertight procedural solids (built in milliseconds) and Spot, a small real mesh by Keenan
Crane (assets/spot.ply, see assets/LICENSE.md). Sizes are arbitrary: preparation normalises them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import trimesh
from skimage.measure import marching_cubes

from compact_sdf.data.load import load_mesh

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def builtin_shapes() -> dict[str, trimesh.Trimesh]:
    """Name -> a fresh copy of each shipped mesh (callers may modify it)."""
    return {name: mesh.copy() for name, mesh in _shapes().items()}


@cache
def _shapes() -> dict[str, trimesh.Trimesh]:
    return {
        "sphere": trimesh.creation.icosphere(subdivisions=3, radius=0.5),
        "torus": trimesh.creation.torus(
            major_radius=0.6, minor_radius=0.25, major_sections=48, minor_sections=24
        ),
        "rounded_box": rounded_box(half_extents=(0.6, 0.4, 0.3), radius=0.12),
        "capsule": trimesh.creation.capsule(height=0.8, radius=0.35, count=(24, 24)),
        "spot": load_mesh(ASSETS / "spot.ply"),
    }


def rounded_box(half_extents: tuple[float, float, float], radius: float, cells: int = 48) -> trimesh.Trimesh:
    """Marching cubes of the analytic rounded-box SDF on a lattice that encloses it (so it is closed)."""
    half = np.asarray(half_extents, dtype=np.float64)
    span = half.max() + 0.1
    axis = np.linspace(-span, span, cells + 1)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    q = np.abs(np.stack([x, y, z], axis=-1)) - (half - radius)
    sdf = np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0) - radius
    verts, faces, _, _ = marching_cubes(sdf, level=0.0, spacing=(axis[1] - axis[0],) * 3)
    mesh = trimesh.Trimesh(vertices=verts - span, faces=faces, process=True)
    if mesh.volume < 0:
        mesh.invert()
    return mesh
