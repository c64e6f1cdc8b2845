"""Area, genus and parts of a closed mesh, recorded for every source shape when a model is trained, so
that a reconstruction can say in words what it lost against its source (a part, a hole, a thin wall)
instead of passing as faithful.

Why these three: Chamfer and F-score need the source mesh and seconds of sampling; these need only
the two meshes' faces, and they are what a user sees at once (a missing wing, a closed hole, a
pinhole through a wall, a fragment). Limits of the preset's lattice show as exactly these changes:
walls and gaps under about two training cells come back perforated or bridged (fidelity.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from compact_sdf.extract.manifold import edges, unique_rows

AREA_TOLERANCE = 0.05  # a reconstruction's area within 5% of its source's counts as kept


@dataclass(frozen=True)
class Figures:
    """Of a closed triangle mesh: total area (in the mesh's own units), genus (handles and through
    holes summed over its parts) and parts (face-connected components)."""

    area: float
    genus: int
    parts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Figures | None:
        """``None`` for a model trained before figures were recorded (or a malformed entry)."""
        try:
            out = cls(float(data["area"]), int(data["genus"]), int(data["parts"]))
        except (TypeError, KeyError, ValueError):
            return None
        return out if np.isfinite(out.area) and out.area > 0 and out.parts > 0 else None


def shape_stats(mesh: trimesh.Trimesh) -> dict[str, Any]:
    """Area, components (faces joined through shared edges), genus (from the Euler characteristic
    of a closed mesh), watertight (every edge in exactly two faces), manifold (``defects``).

    One sort of the edges serves all of them: a reconstruction pays this after every Reconstruct."""
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) == 0:
        return {"area": 0.0, "components": 0, "genus": None, "watertight": False, "manifold": True}
    _, inverse, counts = unique_rows(edges(faces), return_inverse=True, return_counts=True)
    watertight = bool((counts == 2).all())
    components = _edge_components(inverse.reshape(-1), len(faces))
    euler = len(mesh.vertices) - len(counts) + len(faces)  # = 2 * (components - genus) when closed
    return {
        "area": float(mesh.area),
        "components": components,
        "genus": (components - euler // 2) if watertight else None,
        "watertight": watertight,
        "manifold": bool((counts <= 2).all()) and len(unique_rows(faces)) == len(faces),
    }


def _edge_components(edge_of: np.ndarray, n_faces: int) -> int:
    """Connected components of the faces when faces sharing an edge are joined (``edge_of``: the
    distinct edge of each face's 3 edges, face-major)."""
    n_edges = int(edge_of.max()) + 1
    rows = np.repeat(np.arange(n_faces), 3)
    graph = coo_matrix((np.ones(len(rows)), (rows, n_faces + edge_of)), shape=(n_faces + n_edges,) * 2)
    label = connected_components(graph, directed=False)[1]
    return len(np.unique(label[:n_faces]))


def figures(mesh: trimesh.Trimesh) -> Figures | None:
    """The ``Figures`` of a closed mesh (``shape_stats``); ``None`` when it is not closed, since
    genus and parts say nothing there."""
    stats = shape_stats(mesh)
    if stats["genus"] is None or stats["area"] <= 0:
        return None
    return Figures(stats["area"], stats["genus"], stats["components"])


def differences(source: Figures, result: Figures, cell: float) -> list[str]:
    """What ``result`` lost or gained against ``source``, one phrase each, with the size of detail
    the model's training lattice resolves (``cell``: one cell in the shape's 2-unit frame); empty
    when it keeps the parts, the genus and the area within ``AREA_TOLERANCE``."""
    two = f"{2 * cell:.3f} units of the model's 2-unit frame"
    notes = []
    has = "where the source has"
    if result.parts > source.parts:
        notes.append(f"{result.parts} separate pieces {has} {source.parts}")
    elif result.parts < source.parts:
        notes.append(f"{result.parts} pieces {has} {source.parts} (parts closer than {two} merged)")
    if result.genus > source.genus:
        notes.append(
            f"genus {result.genus} {has} {source.genus} (pinholes through walls or bridges "
            f"across gaps thinner than about {two})"
        )
    elif result.genus < source.genus:
        notes.append(f"genus {result.genus} {has} {source.genus} (holes narrower than {two} closed)")
    change = result.area / source.area - 1.0
    if abs(change) > AREA_TOLERANCE:
        why = "thin parts lost or sharp edges rounded" if change < 0 else "extra surface"
        notes.append(f"area {100 * change:+.0f}% against the source ({why})")
    return notes


def blend_differences(ends: Sequence[Figures | None], result: Figures | None) -> list[str]:
    """What is wrong with an in-between of shapes whose sources have the figures ``ends``, in words;
    empty when it is closed and in no more pieces than the most any of its ends has.

    Genus and area are not judged: a blend changes both on purpose. A piece more than its ends have
    is what a user sees as broken (a fragment floating beside the body, a limb cut off); it happens
    where a feature fades and pinches off before it is gone and the join did not reach it.
    """
    if result is None:
        return ["the in-between is not a closed surface (it reaches the edge of the model's box)"]
    known = [f.parts for f in ends if f is not None]
    most = max(known) if known else 1
    if result.parts <= most:
        return []
    return [
        f"{result.parts} separate pieces where the shapes it blends have at most {most} (a part that "
        "pinches off between them and was not joined: a larger join gap joins it)"
    ]
