"""Live interpolation: re-extracting a live object whenever its Blend slider moves.

Its own module (not an operator module) because both the slider's update callback in ``properties``
and the live operators need it; requests coalesce so only the latest slider position is extracted.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import connection, jobs, mesh_bridge
from .bodies import interpolate_body
from .constants import LINK_MODEL, LINK_ROLE, LINK_SOURCES
from .runtime import state
from .scene import download_meshes

# Live objects whose slider moved while their previous preview was still being made: name -> resolution.
_pending: dict[str, int] = {}
_in_flight: set[str] = set()


def live_weights(t: float, count: int) -> list[list[float]]:
    """Code weights for position ``t`` along the polyline through ``count`` shapes (rows sum to 1)."""
    t = min(max(t, 0.0), 1.0) * (count - 1)
    seg = min(int(t), count - 2)
    local = t - seg
    row = [0.0] * count
    row[seg], row[seg + 1] = 1.0 - local, local
    return [row]


def request_update(obj: bpy.types.Object, resolution: int | None = None) -> str | None:
    """Queue a re-extraction of a live object at its slider position; returns an error sentence or None."""
    if obj.get(LINK_ROLE) != "live":
        return f"'{obj.name}' is not a live interpolation object"
    settings = bpy.context.scene.compact_sdf
    res = resolution or settings.preview_resolution
    if obj.name in _in_flight:  # coalesce: only the latest slider position matters
        _pending[obj.name] = max(res, _pending.get(obj.name, 0))
        return None
    shapes = [s for s in str(obj.get(LINK_SOURCES, "")).split(",") if s]
    weights = live_weights(obj.compact_sdf.live_factor, len(shapes))
    gap = round(settings.interp_join_gap, 6)
    body = interpolate_body(obj[LINK_MODEL], shapes, res, settings.interp_mode, weights=weights, join_gap=gap)
    try:
        job = connection.submit(body)
    except Exception as exc:
        state().job_message = f"Live update failed: {exc}"
        return f"Live update failed: {exc}"
    name = obj.name
    _in_flight.add(name)

    def after(_: dict[str, Any]) -> None:
        _in_flight.discard(name)
        again = _pending.pop(name, None)
        target = bpy.data.objects.get(name)
        if again and target is not None:
            request_update(target, again)

    outcome = jobs.follow(job, "Live update", lambda j: _update(j, name), after)
    return None if outcome is None or outcome[0] else outcome[1]


def _update(job: dict[str, Any], name: str) -> str:
    obj = bpy.data.objects.get(name)
    if obj is None:
        return f"'{name}' was deleted; update dropped"
    (tris,) = download_meshes(job)[:1]
    mesh_bridge.replace_geometry(obj.data, tris, mesh_bridge.centre(tris))  # morph in place
    obj["compact_sdf_resolution"] = int((job.get("params") or {}).get("resolution", 0))
    return f"Updated '{name}' ({tris.face_count} triangles)"


def reset() -> None:
    _pending.clear()
    _in_flight.clear()
