"""Is a mesh one clean body? Components, topology and smoothness figures, and an optional clean-up.

Scores the in-betweens of a path of shapes (``path_quality``, ``path_summary``: the interpolation
benchmark) and backs ``interpolate_shapes(..., keep_fraction=...)``. Vertices are matched by index:
meshes from the extractor share vertices between faces (lattice.merge), so face adjacency is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from compact_sdf.extract.manifold import edge_counts, unique_rows


@dataclass(frozen=True)
class MeshQuality:
    components: int  # face-connected components
    largest_share: float  # share of the surface area in the largest component
    watertight: bool  # every edge has exactly two faces
    manifold: bool  # no edge has more than two faces and no face is repeated
    smoothness: float  # mean angle between the normals of adjacent faces, degrees (lower = smoother)
    faces: int

    def to_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def face_components(faces: np.ndarray) -> np.ndarray:
    """Component label per face; faces are connected when they share a vertex."""
    n = len(faces)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    # bipartite face-vertex graph: node i < n is face i, node n + v is vertex v
    rows = np.repeat(np.arange(n), 3)
    cols = n + faces.reshape(-1)
    size = n + int(faces.max()) + 1
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size))
    _, label = connected_components(graph, directed=False)
    _, compact = np.unique(label[:n], return_inverse=True)
    return compact


def mean_normal_angle(mesh: trimesh.Trimesh) -> float:
    """Mean angle (degrees) between the normals of faces that share an edge."""
    angles = mesh.face_adjacency_angles
    return float(np.degrees(angles.mean())) if len(angles) else 0.0


def quality(vertices: np.ndarray, faces: np.ndarray) -> MeshQuality:
    """All figures of ``MeshQuality`` for one triangle mesh."""
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return MeshQuality(0, 0.0, False, True, 0.0, 0)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    label = face_components(faces)
    area = np.bincount(label, weights=mesh.area_faces)
    counts = edge_counts(faces)
    repeated = len(unique_rows(faces)) < len(faces)
    return MeshQuality(
        components=int(label.max()) + 1,
        largest_share=float(area.max() / max(area.sum(), 1e-30)),
        watertight=bool((counts == 2).all()),
        manifold=bool((counts <= 2).all() and not repeated),
        smoothness=mean_normal_angle(mesh),
        faces=len(faces),
    )


def keep_large_components(
    vertices: np.ndarray, faces: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clean-up (opt-in): drop components whose area is below ``fraction`` of the largest one's.

    Returns ``(kept, faces)``: the indices of the kept vertices and the faces renumbered to them.
    """
    if len(faces) == 0 or fraction <= 0:
        return np.arange(len(vertices)), faces
    tri = vertices[faces]
    face_area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    label = face_components(faces)
    area = np.bincount(label, weights=face_area)
    kept_faces = faces[area[label] >= fraction * area.max()]
    kept, inverse = np.unique(kept_faces, return_inverse=True)
    return kept, inverse.reshape(-1, 3).astype(np.int64)


# An in-between is smooth enough when its mean normal angle is at most this multiple of its ends'.
GOAL_SMOOTHNESS = 1.2


def path_quality(meshes: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, float | int | bool]]:
    """Figures of each ``(vertices, faces)`` along a path of shapes (ends included, evenly spaced
    in ``t``), with each one's smoothness relative to the ``t``-weighted smoothness of the two ends:
    an in-between should be no rougher than what it blends."""
    steps: list[dict[str, float | int | bool]] = [dict(quality(v, f).to_dict()) for v, f in meshes]
    ends = float(steps[0]["smoothness"]), float(steps[-1]["smoothness"])
    for i, s in enumerate(steps):
        t = i / (len(steps) - 1)
        s["t"] = t
        s["relative_smoothness"] = float(s["smoothness"]) / ((1 - t) * ends[0] + t * ends[1])
    return steps


def path_summary(paths: Sequence[Sequence[dict[str, Any]]]) -> dict[str, float | int]:
    """Over the in-betweens of several paths (ends excluded): the share that is one body, manifold,
    watertight, smooth within ``GOAL_SMOOTHNESS``, and mean figures."""
    inner = [s for steps in paths for s in steps[1:-1]]
    one = [s["components"] == 1 for s in inner]
    manifold = [s["manifold"] for s in inner]
    smooth = [s["relative_smoothness"] <= GOAL_SMOOTHNESS for s in inner]
    return {
        "in_betweens": len(inner),
        "one_body": float(np.mean(one)),
        "manifold": float(np.mean(manifold)),
        "watertight": float(np.mean([s["watertight"] for s in inner])),
        "one_body_and_manifold": float(np.mean([a and b for a, b in zip(one, manifold, strict=True)])),
        "smooth_within_goal": float(np.mean(smooth)),
        "mean_components": float(np.mean([s["components"] for s in inner])),
        "mean_largest_share": float(np.mean([s["largest_share"] for s in inner])),
        "mean_relative_smoothness": float(np.mean([s["relative_smoothness"] for s in inner])),
        "max_relative_smoothness": float(np.max([s["relative_smoothness"] for s in inner])),
    }
