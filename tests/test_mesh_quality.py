"""Mesh quality and path figures (the interpolation benchmark's) on meshes whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from compact_sdf.extract.interpolate import drop_small_parts
from compact_sdf.extract.mesh import MeshArrays, vertex_normals
from compact_sdf.extract.mesh_quality import (
    face_components,
    keep_large_components,
    path_quality,
    path_summary,
    quality,
)


def _spheres(radii: tuple[float, ...], gap: float = 3.0) -> trimesh.Trimesh:
    parts = [
        trimesh.creation.icosphere(subdivisions=2, radius=r).apply_translation([i * gap, 0, 0])
        for i, r in enumerate(radii)
    ]
    return trimesh.util.concatenate(parts)


def test_two_disjoint_spheres_are_two_watertight_components() -> None:
    m = _spheres((1.0, 0.5))
    q = quality(m.vertices, m.faces)
    assert q.components == 2
    assert q.watertight and q.manifold
    assert q.largest_share == pytest.approx(1.0 / (1.0 + 0.25), rel=1e-6)  # areas go with r^2


def test_one_sphere_is_one_body() -> None:
    m = trimesh.creation.icosphere(subdivisions=3)
    q = quality(m.vertices, m.faces)
    assert (q.components, q.largest_share, q.watertight, q.manifold) == (1, 1.0, True, True)


def test_open_and_non_manifold_meshes() -> None:
    m = trimesh.creation.icosphere(subdivisions=2)
    opened = quality(m.vertices, m.faces[1:])
    assert not opened.watertight and opened.manifold
    doubled = quality(m.vertices, np.concatenate([m.faces, m.faces[:1]]))
    assert not doubled.manifold and not doubled.watertight
    fin = np.concatenate([m.vertices, [[5.0, 5.0, 5.0]]])  # a third face on the edge of face 0
    f0 = m.faces[0]
    third = quality(fin, np.concatenate([m.faces, [[f0[1], f0[0], len(m.vertices)]]]))
    assert not third.manifold


def test_smoothness_is_the_mean_angle_between_adjacent_normals() -> None:
    box = trimesh.creation.box()  # 18 adjacent face pairs: 6 coplanar (0 deg), 12 across edges (90 deg)
    assert quality(box.vertices, box.faces).smoothness == pytest.approx(60.0)
    coarse = trimesh.creation.icosphere(subdivisions=1)
    fine = trimesh.creation.icosphere(subdivisions=3)
    assert quality(fine.vertices, fine.faces).smoothness < quality(coarse.vertices, coarse.faces).smoothness


def test_components_join_through_shared_vertices_only() -> None:
    faces = np.array([[0, 1, 2], [2, 3, 4], [5, 6, 7]])
    assert face_components(faces).tolist() == [0, 0, 1]


def test_clean_up_drops_small_parts_only_when_asked() -> None:
    m = _spheres((1.0, 0.2, 0.6))
    kept, faces = keep_large_components(m.vertices, m.faces, 0.1)  # 0.04 of the largest goes
    q = quality(m.vertices[kept], faces)
    assert q.components == 2 and q.watertight
    mesh = MeshArrays(m.vertices.astype(np.float32), m.faces, vertex_normals(m.vertices, m.faces))
    assert drop_small_parts(mesh, 0.0) is mesh
    assert quality(*(lambda a: (a.vertices, a.faces))(drop_small_parts(mesh, 0.5))).components == 1


def test_a_path_is_scored_against_its_ends() -> None:
    """A path sphere -> two spheres -> cube: components per step, smoothness relative to the ends."""
    steps = [trimesh.creation.icosphere(subdivisions=2), _spheres((1.0, 1.0)), trimesh.creation.box()]
    meshes = [
        MeshArrays(m.vertices.astype(np.float32), m.faces, vertex_normals(m.vertices, m.faces)) for m in steps
    ]
    scored = path_quality([(m.vertices, m.faces) for m in meshes])
    assert [s["components"] for s in scored] == [1, 2, 1]
    ends = [quality(m.vertices, m.faces).smoothness for m in steps]
    assert scored[1]["relative_smoothness"] == pytest.approx(ends[1] / (0.5 * ends[0] + 0.5 * ends[2]))
    summary = path_summary([scored])
    assert summary["in_betweens"] == 1 and summary["one_body"] == 0.0 and summary["manifold"] == 1.0
    assert summary["mean_largest_share"] == pytest.approx(0.5)
