"""The mesh container every extraction returns, and mesh file output.

Kept apart from the extraction algorithms so that the sparse (``extract``) and dense
(``extract.dense``) paths, interpolation, evaluation and the service share it without importing
each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import CompactSDFError, InputError
from compact_sdf.extract.manifold import defects, drop_duplicate_faces

if TYPE_CHECKING:
    import trimesh

MESH_SUFFIXES = (".ply", ".obj", ".glb")


@dataclass
class MeshArrays:
    """A triangle mesh as plain arrays (what the service serialises and the add-on rebuilds)."""

    vertices: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int64
    normals: np.ndarray  # (V, 3) float32, unit length, outward

    @classmethod
    def from_lattice(cls, verts: np.ndarray, faces: np.ndarray, cells: int) -> MeshArrays:
        """Build from marching-cubes output in lattice units: drop unused vertices, map to [-1,1].

        A face listed twice (the one defect that can be repaired safely) is dropped here, so every
        path (reconstruct, interpolate, blend, fit) gets the repair; ``save_mesh`` checks the rest.
        """
        faces = drop_duplicate_faces(np.asarray(faces).reshape(-1, 3))
        used, faces = np.unique(faces, return_inverse=True)
        unit = verts[used] * (2.0 / cells) - 1.0
        faces = faces.reshape(-1, 3).astype(np.int64)
        return cls(unit.astype(np.float32), faces, vertex_normals(unit, faces))

    def transformed(self, normalization: Normalization) -> MeshArrays:
        """The same mesh in the shape's own coordinates (undo the unit-cube normalisation)."""
        verts = normalization.from_unit(self.vertices).astype(np.float32)
        return MeshArrays(verts, self.faces, self.normals.copy())

    def component_labels(self) -> np.ndarray:
        """Each vertex's connected component (through shared vertices), numbered from 0."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = len(self.vertices)
        edges = np.concatenate([self.faces[:, [0, 1]], self.faces[:, [1, 2]]])
        graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
        return connected_components(graph, directed=False)[1]

    def component_count(self) -> int:
        return int(self.component_labels().max()) + 1 if len(self.vertices) else 0

    def component_volumes(self, label: np.ndarray) -> np.ndarray:
        """The volume each component encloses (negative for a cavity's inward-facing shell)."""
        tri = self.vertices[self.faces].astype(np.float64)
        signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
        return np.bincount(
            label[self.faces[:, 0]], weights=signed, minlength=label.max() + 1 if len(label) else 0
        )

    def keep_components(self, marked: np.ndarray, label: np.ndarray | None = None) -> MeshArrays:
        """The connected components (through shared vertices) that hold at least one marked vertex;
        ``label`` is ``component_labels()`` when the caller already has it."""
        label = self.component_labels() if label is None else label
        kept = np.zeros(label.max() + 1 if len(label) else 0, dtype=bool)
        kept[label[marked]] = True
        used = kept[label]
        if used.all():
            return self
        remap = np.cumsum(used) - 1
        faces = remap[self.faces[used[self.faces[:, 0]]]]
        return MeshArrays(self.vertices[used], faces, self.normals[used])

    def to_trimesh(self) -> trimesh.Trimesh:
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, vertex_normals=self.normals, process=False)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted face normals summed at each vertex, normalised (float32)."""
    v = np.asarray(vertices, dtype=np.float64)
    out = np.zeros_like(v)
    if len(faces):
        cross = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
        for corner in range(3):
            np.add.at(out, faces[:, corner], cross)
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(length > 0, length, 1.0)).astype(np.float32)


def save_mesh(mesh: MeshArrays, path: str | Path) -> Path:
    """Write .ply / .obj / .glb by suffix (with vertex normals)."""
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(f"cannot write '{path.name}': use one of {', '.join(MESH_SUFFIXES)}")
    if len(mesh.faces) == 0:
        raise CompactSDFError("the mesh is empty: the field has no zero level set in [-1,1]^3")
    found = defects(mesh.faces)
    if not found.manifold:
        raise CompactSDFError(
            f"refusing to write a non-manifold mesh ({found.duplicate_faces} duplicated faces, "
            f"{found.overfull_edges} edges with more than two faces)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.to_trimesh().export(path)
    return path


MESH_BODY_FORMATS = ("raw", "ply")


def mesh_bytes(mesh: MeshArrays, fmt: str = "raw") -> bytes:
    """The mesh as one response body: ``raw`` is the vertices (V x 3 float32) then the faces (F x 3
    int32), little-endian, which a stdlib client reads with ``array.frombytes`` in microseconds;
    ``ply`` is a binary PLY file (with normals)."""
    if fmt == "raw":
        verts = np.ascontiguousarray(mesh.vertices, dtype="<f4")
        return verts.tobytes() + np.ascontiguousarray(mesh.faces, dtype="<i4").tobytes()
    if fmt == "ply":
        return bytes(mesh.to_trimesh().export(file_type="ply"))
    raise InputError(f"unknown mesh format '{fmt}'; choose one of: {', '.join(MESH_BODY_FORMATS)}")
