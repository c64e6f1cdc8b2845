"""Check a mesh before sampling and say, in one readable report, what is wrong and what to do.

The sampler needs a closed, consistently oriented surface for an exact sign; everything that
breaks that is fatal unless the user opts into open meshes (sign from the generalised winding
number). Problems that do not corrupt the signed distance (degenerate faces, several
components, flipped orientation, which preparation corrects) are reported as warnings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import trimesh

from compact_sdf.config import SamplingConfig
from compact_sdf.errors import InputError

MAX_COORDINATE = 1e9  # past this, areas and volumes overflow float64 arithmetic


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    suggestion: str
    fatal: bool


@dataclass
class ValidationReport:
    name: str
    vertices: int
    faces: int
    watertight: bool
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.fatal for p in self.problems)

    def format(self) -> str:
        """Human-readable multi-line text: a header line, then one line per problem."""
        status = "ok" if self.ok else "REFUSED"
        lines = [f"{self.name}: {self.vertices} vertices, {self.faces} faces - {status}"]
        for p in self.problems:
            lines.append(f"  {'error' if p.fatal else 'warning'} [{p.code}] {p.message}; {p.suggestion}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def validate_mesh(mesh: trimesh.Trimesh, cfg: SamplingConfig, name: str) -> ValidationReport:
    """Run every check; stops early only where later checks would be meaningless (empty, NaN)."""
    v = np.asarray(mesh.vertices)
    f = np.asarray(mesh.faces)
    report = ValidationReport(name=name, vertices=len(v), faces=len(f), watertight=False)
    unusable = _unusable(v, f)
    if unusable is not None:
        report.problems.append(unusable)
        return report
    report.watertight = bool(mesh.is_watertight)
    report.problems += _size_problems(v, f, cfg)
    report.problems += _closure_problems(f, cfg, report.watertight)
    report.problems += _orientation_problems(mesh, report.watertight)
    bodies = _components(f, len(v))
    if bodies > 1:
        report.problems.append(
            Problem(
                "several_components",
                f"the mesh has {bodies} separate parts",
                "they are learned as one shape; split them if they are different objects",
                False,
            )
        )
    return report


def _unusable(v: np.ndarray, f: np.ndarray) -> Problem | None:
    """The problems after which no other check means anything."""
    if len(v) == 0 or len(f) == 0:
        return Problem("empty", "the mesh has no triangles", "export the object with its faces", True)
    if not np.isfinite(v).all():
        bad = int((~np.isfinite(v)).any(axis=1).sum())
        return Problem(
            "non_finite",
            f"{bad} vertices have NaN or infinite coordinates",
            "delete or fix those vertices before exporting",
            True,
        )
    if np.abs(v).max() > MAX_COORDINATE:
        return Problem(
            "coordinates_too_large",
            f"coordinates reach {np.abs(v).max():.3g}; at most {MAX_COORDINATE:g} is supported",
            "scale the object down (or apply its scale) before exporting",
            True,
        )
    return None


def _size_problems(v: np.ndarray, f: np.ndarray, cfg: SamplingConfig) -> list[Problem]:
    out = []
    if len(f) > cfg.max_faces:
        out.append(
            Problem(
                "too_many_faces",
                f"{len(f)} faces exceed the limit of {cfg.max_faces}",
                "decimate the mesh or raise sampling.max_faces",
                True,
            )
        )
    degenerate = _degenerate_faces(v, f)
    if degenerate:
        out.append(
            Problem(
                "degenerate_faces",
                f"{degenerate} faces have zero area or repeated corners",
                "they are ignored; 'Merge by Distance' in Blender removes them",
                False,
            )
        )
    return out


def _closure_problems(f: np.ndarray, cfg: SamplingConfig, watertight: bool) -> list[Problem]:
    if watertight:
        return []
    open_edges = _open_edges(f)
    if cfg.allow_open:
        return [
            Problem(
                "not_watertight",
                f"the mesh is open ({open_edges} boundary or non-manifold edges)",
                "accepted: inside/outside comes from the generalised winding number",
                False,
            )
        ]
    return [
        Problem(
            "not_watertight",
            f"the mesh is not watertight ({open_edges} boundary or non-manifold edges)",
            "close the holes (Blender: Fill Holes / 3D-Print toolbox) "
            "or pass --allow-open to use a winding-number sign",
            True,
        )
    ]


def _orientation_problems(mesh: trimesh.Trimesh, watertight: bool) -> list[Problem]:
    if not mesh.is_winding_consistent:
        return [
            Problem(
                "winding_inconsistent",
                "neighbouring faces have opposite orientation",
                "recalculate normals (Blender: Mesh > Normals > Recalculate Outside)",
                True,
            )
        ]
    if watertight and mesh.volume < 0:
        return [
            Problem(
                "inverted_normals",
                "the normals point inward (negative volume)",
                "preparation flips the faces; recalculate normals outside to silence this",
                False,
            )
        ]
    return []


def require_valid(report: ValidationReport) -> None:
    """Raise ``InputError`` with the fatal problems in one line (the CLI prints it as is)."""
    fatal = [p for p in report.problems if p.fatal]
    if fatal:
        text = "; ".join(p.message for p in fatal)
        raise InputError(f"{report.name}: {text}", code=fatal[0].code, hint=fatal[0].suggestion)


def _degenerate_faces(v: np.ndarray, f: np.ndarray) -> int:
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    tri = v[f]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    scale = float(np.ptp(v, axis=0).max()) ** 2
    return int((repeated | (area2 <= 1e-14 * scale)).sum())


def _open_edges(f: np.ndarray) -> int:
    """Undirected edges not shared by exactly two faces."""
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return int((counts != 2).sum())


def _components(f: np.ndarray, n_vertices: int) -> int:
    """Connected parts by shared vertices (unreferenced vertices do not count)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_vertices, n_vertices))
    _, labels = connected_components(graph, directed=False)
    return len(np.unique(labels[np.unique(f)]))
