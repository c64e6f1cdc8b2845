"""Interpolation between encoded objects: a row of K objects, and a live object with a 0..1 slider."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import IntProperty
from bpy.types import Operator
from mathutils import Vector

from . import connection, jobs, mesh_bridge
from .operators_encode import add_object, download_meshes, encoded_objects, run_or_track, target_collection
from .properties import LINK_CODE, LINK_MODEL, LINK_ROLE, LINK_SOURCES

ROW_COLLECTION = "Interpolation"

# Live objects whose slider moved while their previous preview was still being made: name -> resolution.
_pending: dict[str, int] = {}
_in_flight: set[str] = set()


def interpolation_sources(context: bpy.types.Context) -> tuple[list[bpy.types.Object], str | None]:
    """The selected encoded objects ordered left to right (world X), or an error sentence."""
    objs = [o for o in encoded_objects(context) if o.get(LINK_ROLE, "source") in ("source", "decoded")]
    if len(objs) < 2:
        return [], "Select two or more objects encoded with 'Encode Selected'"
    models = {o[LINK_MODEL] for o in objs}
    if len(models) > 1:
        return [], "The selected objects belong to different models; interpolate within one model"
    return sorted(objs, key=lambda o: (o.matrix_world.translation.x, o.name)), None


def interpolate_body(
    model_id: str, shapes: list[str], resolution: int, mode: str, **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "interpolate",
        "model_id": model_id,
        "shapes": shapes,
        "mode": mode,
        "resolution": resolution,
        **extra,
    }


def live_weights(t: float, count: int) -> list[list[float]]:
    """Code weights for position ``t`` along the polyline through ``count`` shapes (rows sum to 1)."""
    t = min(max(t, 0.0), 1.0) * (count - 1)
    seg = min(int(t), count - 2)
    local = t - seg
    row = [0.0] * count
    row[seg], row[seg + 1] = 1.0 - local, local
    return [row]


class COMPACT_SDF_OT_interpolate(Operator):
    """Decode a row of shapes between the selected encoded objects (ends included)"""

    bl_idname = "compact_sdf.interpolate"
    bl_label = "Interpolate"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.compact_sdf
        sources, problem = interpolation_sources(context)
        if problem:
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        shapes = [o[LINK_CODE] for o in sources]
        body = interpolate_body(sources[0][LINK_MODEL], shapes, settings.resolution, settings.interp_mode)
        body["steps"] = settings.interp_steps
        try:
            job = connection.submit(body, context)
        except Exception as exc:
            self.report({"ERROR"}, f"Interpolation failed: {exc}")
            return {"CANCELLED"}
        names = [o.name for o in sources]
        label = f"Interpolate {' / '.join(names)}"
        return run_or_track(self, job, label, lambda j: _place_row(j, names, settings.spacing))


def _place_row(job: dict[str, Any], names: list[str], spacing: float) -> str:
    meshes = download_meshes(job)
    ends = [bpy.data.objects.get(n) for n in (names[0], names[-1])]
    start = ends[0].matrix_world.translation.copy() if ends[0] else Vector()
    stop = ends[1].matrix_world.translation.copy() if ends[1] else start + Vector((len(meshes) * 2.0, 0, 0))
    if (stop - start).length < 1e-6:
        stop = start + Vector((len(meshes) * 2.0, 0, 0))
    offset = Vector((0.0, -spacing, 0.0))
    coll = target_collection(bpy.context, ROW_COLLECTION)
    params = job.get("params") or {}
    for i, tris in enumerate(meshes):
        t = i / max(len(meshes) - 1, 1)
        origin = start.lerp(stop, t)
        obj = add_object(f"{names[0]}-{names[-1]} {i:02d}", tris, origin, coll)
        obj.location = origin + offset
        obj[LINK_MODEL] = params.get("model_id", "")
        obj[LINK_SOURCES] = ",".join(params.get("shapes", []))
        obj[LINK_ROLE] = "interpolation"
        obj["compact_sdf_t"] = t
    return f"Interpolated {len(meshes)} shapes between {names[0]} and {names[-1]}"


class COMPACT_SDF_OT_live_create(Operator):
    """Make a live interpolation object whose Blend slider re-extracts it (preview resolution)"""

    bl_idname = "compact_sdf.live_create"
    bl_label = "Live Interpolation"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.compact_sdf
        sources, problem = interpolation_sources(context)
        if problem:
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        shapes = [o[LINK_CODE] for o in sources]
        model_id = sources[0][LINK_MODEL]
        body = interpolate_body(
            model_id,
            shapes,
            settings.preview_resolution,
            settings.interp_mode,
            weights=live_weights(0.5, len(shapes)),
        )
        try:
            job = connection.submit(body, context)
        except Exception as exc:
            self.report({"ERROR"}, f"Live interpolation failed: {exc}")
            return {"CANCELLED"}
        names = [o.name for o in sources]
        offset = Vector((0.0, settings.spacing, 0.0))
        return run_or_track(self, job, "Live interpolation", lambda j: _make_live(j, names, offset))


def _make_live(job: dict[str, Any], names: list[str], offset: Vector) -> str:
    """The blended shape arrives where the backend blends its sources' places; it is moved by ``offset``
    (behind the sources). Its origin is its centre, and later slider updates morph it around that origin."""
    (tris,) = download_meshes(job)[:1]
    params = job.get("params") or {}
    centre = mesh_bridge.centre(tris)
    obj = add_object(f"Live {names[0]}-{names[-1]}", tris, centre, target_collection(bpy.context))
    obj.location = centre + offset
    obj[LINK_MODEL] = params.get("model_id", "")
    obj[LINK_SOURCES] = ",".join(params.get("shapes", []))
    obj[LINK_ROLE] = "live"
    obj["compact_sdf_resolution"] = int(params.get("resolution", 0))
    # Set without triggering an update: the geometry already matches 0.5.
    obj.compact_sdf["live_factor"] = 0.5
    return f"Live interpolation object '{obj.name}': drag its Blend slider"


def request_live_update(obj: bpy.types.Object, resolution: int | None = None) -> str | None:
    """Queue a re-extraction of a live object at its slider position; returns an error sentence or None."""
    if obj.get(LINK_ROLE) != "live":
        return f"'{obj.name}' is not a live interpolation object"
    settings = bpy.context.scene.compact_sdf
    res = resolution or settings.preview_resolution
    if obj.name in _in_flight:  # coalesce: only the latest slider position matters
        _pending[obj.name] = max(res, _pending.get(obj.name, 0))
        return None
    shapes = [s for s in str(obj.get(LINK_SOURCES, "")).split(",") if s]
    body = interpolate_body(
        obj[LINK_MODEL],
        shapes,
        res,
        settings.interp_mode,
        weights=live_weights(obj.compact_sdf.live_factor, len(shapes)),
    )
    try:
        job = connection.submit(body)
    except Exception as exc:
        bpy.context.window_manager.compact_sdf.job_message = f"Live update failed: {exc}"
        return f"Live update failed: {exc}"
    name = obj.name
    _in_flight.add(name)

    def done(j: dict[str, Any]) -> str:
        return _update_live(j, name)

    def after(_: dict[str, Any]) -> None:
        _in_flight.discard(name)
        again = _pending.pop(name, None)
        target = bpy.data.objects.get(name)
        if again and target is not None:
            request_live_update(target, again)

    if bpy.app.background:
        final = jobs.wait(job, "Live update")
        try:
            ok, message = jobs.finish(final, "Live update", done)
        finally:
            after(final)
        return None if ok else message
    jobs.track(job, "Live update", done, after)
    return None


def _update_live(job: dict[str, Any], name: str) -> str:
    obj = bpy.data.objects.get(name)
    if obj is None:
        return f"'{name}' was deleted; update dropped"
    (tris,) = download_meshes(job)[:1]
    mesh_bridge.replace_geometry(obj.data, tris, mesh_bridge.centre(tris))  # morph in place
    obj["compact_sdf_resolution"] = int((job.get("params") or {}).get("resolution", 0))
    return f"Updated '{name}' ({tris.face_count} triangles)"


class COMPACT_SDF_OT_live_refine(Operator):
    """Re-extract the active live interpolation object at full resolution"""

    bl_idname = "compact_sdf.live_refine"
    bl_label = "Full Resolution"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    resolution: IntProperty(
        name="Resolution", default=0, min=0, max=1024, description="0 = the scene's resolution"
    )  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        obj = context.active_object
        return obj is not None and obj.get(LINK_ROLE) == "live"

    def execute(self, context: bpy.types.Context) -> set[str]:
        obj = context.active_object
        problem = request_live_update(obj, self.resolution or context.scene.compact_sdf.resolution)
        if problem:
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        self.report({"INFO"}, f"Refining '{obj.name}'")
        return {"FINISHED"}


def reset() -> None:
    _pending.clear()
    _in_flight.clear()


classes = (COMPACT_SDF_OT_interpolate, COMPACT_SDF_OT_live_create, COMPACT_SDF_OT_live_refine)
