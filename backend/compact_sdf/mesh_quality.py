"""Is a mesh one clean body? Components, topology and smoothness figures, and an optional clean-up.

Used by the interpolation benchmark (bench/interpolation.py) to score in-between shapes, and by
``interpolate_shapes(..., keep_fraction=...)``. Vertices are matched by index: meshes from the
extractor share vertices between faces (lattice.merge), so face adjacency is exact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


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


def _edge_counts(faces: np.ndarray) -> np.ndarray:
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return counts


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
    counts = _edge_counts(faces)
    repeated = len(np.unique(np.sort(faces, axis=1), axis=0)) < len(faces)
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
