"""Area, genus and parts of a closed mesh, recorded for every source shape when a model is trained, so
that a reconstruction can say in words what it lost against its source (a part, a hole, a thin wall)
instead of passing as faithful.

Why these three: Chamfer and F-score need the source mesh and seconds of sampling; these need only
the two meshes' faces, and they are what a user sees at once (a missing wing, a closed hole, a
pinhole through a wall, a fragment). Limits of the preset's lattice show as exactly these changes:
walls and gaps under about two training cells come back perforated or bridged (fidelity.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import trimesh

from compact_sdf.extract.manifold import defects

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
    """Area, components, genus (from the Euler characteristic of a closed mesh), watertight, manifold."""
    found = defects(np.asarray(mesh.faces))
    watertight = bool(mesh.is_watertight)
    nodes = np.arange(len(mesh.faces))
    components = len(trimesh.graph.connected_components(mesh.face_adjacency, nodes=nodes))
    euler = int(mesh.euler_number)  # V - E + F = 2 * (components - genus) for a closed surface
    return {
        "area": float(mesh.area),
        "components": components,
        "genus": (components - euler // 2) if watertight else None,
        "watertight": watertight,
        "manifold": found.manifold,
    }


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
    two = f"{2 * cell:.3f} of its 2 units"
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
        why = "thin parts lost" if change < 0 else "extra surface"
        notes.append(f"area {100 * change:+.0f}% against the source ({why})")
    return notes
