"""The marching-cubes lattice over [-1,1]^3 and the sparse-set tools extraction is built from.

A lattice of ``n`` cells per side has ``(n+1)^3`` vertices; vertex ``(i, j, k)`` sits at
``-1 + 2 * (i, j, k) / n`` and has the linear index ``(i * (n+1) + j) * (n+1) + k`` (int64).
Sparse vertex sets are sorted unique linear indices, so set algebra is ``np.unique`` /
``np.searchsorted`` and never a KD-tree or a dense float volume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

FieldFn = Callable[[torch.Tensor], torch.Tensor]
MERGE_TOL = 1e-3  # lattice units: block-boundary duplicates differ by float32 rounding only

# The 8 corners of a cell, as offsets from its lowest vertex.
CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.int64)


@dataclass(frozen=True)
class Lattice:
    cells: int

    @property
    def side(self) -> int:
        return self.cells + 1

    def linear(self, ijk: np.ndarray) -> np.ndarray:
        ijk = np.asarray(ijk, dtype=np.int64)
        return (ijk[..., 0] * self.side + ijk[..., 1]) * self.side + ijk[..., 2]

    def coords(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        k = index % self.side
        j = (index // self.side) % self.side
        i = index // (self.side * self.side)
        return np.stack([i, j, k], axis=-1)

    def points(self, ijk: np.ndarray) -> np.ndarray:
        """Unit-cube positions (float32) of integer lattice coordinates; one formula for every caller."""
        return (np.asarray(ijk, dtype=np.float64) * (2.0 / self.cells) - 1.0).astype(np.float32)

    def cell_diagonal(self) -> float:
        return float(np.sqrt(3.0) * 2.0 / self.cells)

    def cell_corners(self, cells: np.ndarray) -> np.ndarray:
        """(K, 8) linear indices of the corners of cells given by their lowest vertex (K, 3)."""
        return self.linear(cells[:, None, :] + CORNERS[None, :, :])

    def dilate(self, index: np.ndarray, radius: int) -> np.ndarray:
        """All vertices within Chebyshev distance ``radius`` of a sparse set, axis by axis (separable)."""
        if radius <= 0 or len(index) == 0:
            return np.unique(index)
        offsets = np.arange(-radius, radius + 1, dtype=np.int64)
        out = np.unique(index)
        for axis in range(3):
            ijk = self.coords(out)
            moved = np.repeat(ijk[:, None, :], len(offsets), axis=1)
            moved[:, :, axis] += offsets[None, :]
            moved = moved.reshape(-1, 3)
            inside = (moved[:, axis] >= 0) & (moved[:, axis] <= self.cells)
            out = np.unique(self.linear(moved[inside]))
        return out


@dataclass
class SparseValues:
    """Field values at a sorted set of lattice vertices."""

    index: np.ndarray  # sorted unique int64
    value: np.ndarray  # float32

    @classmethod
    def empty(cls) -> SparseValues:
        return cls(np.empty(0, np.int64), np.empty(0, np.float32))

    def lookup(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, values) for any array of linear indices; values are 0 where not found."""
        if len(self.index) == 0:
            return np.zeros(np.shape(index), bool), np.zeros(np.shape(index), np.float32)
        pos = np.minimum(np.searchsorted(self.index, index), len(self.index) - 1)
        found = self.index[pos] == index
        return found, np.where(found, self.value[pos], np.float32(0.0))

    def merged(self, other: SparseValues) -> SparseValues:
        """Union; where both hold a vertex, ``other`` wins."""
        index = np.concatenate([other.index, self.index])
        value = np.concatenate([other.value, self.value])
        index, first = np.unique(index, return_index=True)
        return SparseValues(index, value[first])


def evaluate(fn: FieldFn, points: np.ndarray, batch: int, device: torch.device | str) -> np.ndarray:
    """Evaluate a field on (N, 3) float32 points in batches on ``device``; float32 result."""
    out = np.empty(len(points), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(points), batch):
            x = torch.from_numpy(np.ascontiguousarray(points[start : start + batch])).to(device)
            out[start : start + batch] = fn(x).reshape(-1).float().cpu().numpy()
    return out


def crossed(values: np.ndarray) -> np.ndarray:
    """Cells (rows of 8 corner values) that the zero level set can cross: min <= 0 <= max."""
    return (values.min(axis=-1) <= 0.0) & (values.max(axis=-1) >= 0.0)


def march(volume: np.ndarray, origin: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Marching cubes at level 0 on one float32 block; vertices in global lattice units (float64).

    Faces are oriented outward for a field that is negative inside. ``None`` when the block
    holds no surface.
    """
    if not (volume.min() <= 0.0 <= volume.max()):
        return None
    try:
        verts, faces, _, _ = marching_cubes(volume, level=0.0, gradient_direction="descent")
    except RuntimeError:  # values touch 0 without a crossing
        return None
    return verts.astype(np.float64) + np.asarray(origin, dtype=np.float64), faces.astype(np.int64)


def merge(
    parts: list[tuple[np.ndarray, np.ndarray]], tol: float = MERGE_TOL
) -> tuple[np.ndarray, np.ndarray]:
    """Join block meshes: vertices closer than ``tol`` lattice units become one, collapsed faces go.

    Neighbouring blocks both emit the vertices on their shared face, and scikit-image computes
    them in float32 local coordinates, so the two copies can differ in the last bits (measured
    up to ~2e-6 voxels at N=64); ``tol`` is far above that and far below any real edge length.
    The KD-tree is over the output vertices (a surface-sized set), not the lattice.
    """
    if not parts:
        return np.empty((0, 3), np.float64), np.empty((0, 3), np.int64)
    verts, faces, base = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + base)
        base += len(v)
    all_verts = np.concatenate(verts)
    pairs = cKDTree(all_verts).query_pairs(tol, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(all_verts),) * 2)
    _, label = connected_components(graph, directed=False)
    order = np.lexsort(all_verts.T[::-1])  # a representative independent of block order: the lowest point
    first = np.full(label.max() + 1, -1, dtype=np.int64)
    first[label[order[::-1]]] = order[::-1]
    tri = label[np.concatenate(faces)]
    keep = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    return all_verts[first], tri[keep]
