"""Encode selected objects into a new model, cancel the running job, reconstruct encoded objects."""

from __future__ import annotations

import re
from typing import Any

import bpy
from bpy.types import Operator
from mathutils import Vector

from . import connection, jobs, mesh_bridge
from .properties import COLLECTION, LINK_CODE, LINK_MODEL, LINK_ROLE

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def shape_name(obj_name: str, taken: set[str]) -> str:
    """A backend-safe, unique shape name for an object (letters, digits, _ - . ; at most 64 chars)."""
    base = _NAME_BAD.sub("_", obj_name).strip("_.-")[:56] or "shape"
    if not base[0].isalnum():
        base = "s" + base
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def encoded_objects(context: bpy.types.Context) -> list[bpy.types.Object]:
    return [o for o in context.selected_objects if o.get(LINK_MODEL) and o.get(LINK_CODE)]


def target_collection(context: bpy.types.Context, sub: str | None = None) -> bpy.types.Collection:
    """The "Compact SDF" collection (and optionally a child), created on first use."""
    scene = context.scene
    coll = bpy.data.collections.get(COLLECTION)
    if coll is None:
        coll = bpy.data.collections.new(COLLECTION)
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    if sub is None:
        return coll
    child = coll.children.get(sub) or bpy.data.collections.get(sub)
    if child is None:
        child = bpy.data.collections.new(sub)
    if child.name not in coll.children:
        coll.children.link(child)
    return child


def download_meshes(job: dict[str, Any]) -> list[mesh_bridge.Triangles]:
    """Fetch and parse every mesh file a finished job produced (before any Blender data is made)."""
    cl = connection.client()
    files = (job.get("result") or {}).get("files") or []
    if not files:
        raise RuntimeError("the job finished without a mesh")
    return [mesh_bridge.from_ply(cl.download_result(job["id"], name)) for name in files]


def add_object(
    name: str, tris: mesh_bridge.Triangles, origin: Vector, collection: bpy.types.Collection
) -> bpy.types.Object:
    """A new object whose origin sits at ``origin`` (world-space geometry stays where it came from)."""
    mesh = mesh_bridge.new_mesh(name, tris, origin)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = origin
    collection.objects.link(obj)
    return obj


def run_or_track(op: Operator, job: dict[str, Any], label: str, on_done: jobs.Handler) -> set[str]:
    """Background mode: wait and report the result; UI: follow the job with the timer and return at once."""
    if bpy.app.background:
        final = jobs.wait(job, label)
        try:
            ok, message = jobs.finish(final, label, on_done)
        except Exception as exc:
            ok, message = False, f"{label}: {exc}"
        op.report({"INFO" if ok else "ERROR"}, message)
        return {"FINISHED"} if ok else {"CANCELLED"}
    jobs.track(job, label, on_done)
    op.report({"INFO"}, f"{label} started; progress is in the Compact SDF panel")
    return {"FINISHED"}


class COMPACT_SDF_OT_encode_selected(Operator):
    """Train a new model on the selected mesh objects (checked first; problems are reported per object)"""

    bl_idname = "compact_sdf.encode_selected"
    bl_label = "Encode Selected"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.compact_sdf
        selected = list(context.selected_objects)
        if not selected:
            self.report({"ERROR"}, "Select one or more mesh objects to encode")
            return {"CANCELLED"}
        depsgraph = context.evaluated_depsgraph_get()
        issues = {obj.name: mesh_bridge.check_object(obj, depsgraph, settings.allow_open) for obj in selected}
        valid = [obj for obj in selected if not any(i.fatal for i in issues[obj.name])]
        for found in issues.values():
            for issue in found:
                if not issue.fatal:
                    self.report({"WARNING"}, issue.message)
                elif valid:  # the others still go ahead: a skipped object is a warning, not a failure
                    self.report({"WARNING"}, f"Skipped {issue.message}")
                else:
                    self.report({"ERROR"}, issue.message)
        if not valid:
            return {"CANCELLED"}
        try:
            cl = connection.client(context)
            taken: set[str] = set()
            names: dict[str, str] = {}  # shape name -> object name
            mesh_ids = []
            for obj in valid:
                name = shape_name(obj.name, taken)
                ply = mesh_bridge.to_ply(mesh_bridge.world_triangles(obj, depsgraph))
                mesh_ids.append(
                    cl.upload_mesh(name=name, source=ply, fmt="ply", allow_open=settings.allow_open)["id"]
                )
                names[name] = obj.name
            body: dict[str, Any] = {"kind": "train", "mesh_ids": mesh_ids, "preset": settings.preset}
            if settings.model_name:
                body["name"] = shape_name(settings.model_name, set())
            if settings.steps:
                body["overrides"] = {"train.steps": settings.steps}
            job = connection.submit(body, context)
        except Exception as exc:
            self.report({"ERROR"}, f"Encoding failed: {exc}")
            return {"CANCELLED"}
        label = f"Encode {len(valid)} object{'s' if len(valid) > 1 else ''}"
        return run_or_track(self, job, label, lambda j: _link_encoded(j, names))


def _link_encoded(job: dict[str, Any], names: dict[str, str]) -> str:
    """After training: write the model/code links onto the source objects (only now: no half-links)."""
    model_id = job.get("model_id") or (job.get("result") or {}).get("model_id")
    if not model_id:
        raise RuntimeError("the training job returned no model id")
    linked = []
    for shape, obj_name in names.items():
        obj = bpy.data.objects.get(obj_name)
        if obj is None:  # deleted while training; the code still exists in the model
            continue
        obj[LINK_MODEL] = model_id
        obj[LINK_CODE] = shape
        obj[LINK_ROLE] = "source"
        linked.append(obj_name)
    from .operators_backend import refresh_models

    refresh_models(bpy.context)
    state = bpy.context.window_manager.compact_sdf
    ids = [m.model_id for m in state.models]
    if model_id in ids:
        state.model_index = ids.index(model_id)
    return f"Encoded {', '.join(linked)} into model {model_id[:8]}"


class COMPACT_SDF_OT_cancel_job(Operator):
    """Ask the backend to stop the running job (training keeps its last checkpoint)"""

    bl_idname = "compact_sdf.cancel_job"
    bl_label = "Cancel Job"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return bool(jobs.active())

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            count = jobs.cancel_all()
        except Exception as exc:
            self.report({"ERROR"}, f"Cancel failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Asked the backend to cancel {count} job{'s' if count != 1 else ''}")
        return {"FINISHED"}


class COMPACT_SDF_OT_reconstruct(Operator):
    """Extract the fused reconstruction of each selected encoded object into the "Compact SDF" collection"""

    bl_idname = "compact_sdf.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.compact_sdf
        sources = encoded_objects(context)
        if not sources:
            self.report(
                {"ERROR"},
                "Select objects encoded with 'Encode Selected' (they carry a compact_sdf_model link)",
            )
            return {"CANCELLED"}
        result: set[str] = set()
        for src in sources:
            body = {
                "kind": "extract",
                "model_id": src[LINK_MODEL],
                "shape": src[LINK_CODE],
                "resolution": settings.resolution,
                "band": settings.band,
                "format": "ply",
            }
            try:
                job = connection.submit(body, context)
            except Exception as exc:
                self.report({"ERROR"}, f"Reconstruct '{src.name}' failed: {exc}")
                continue
            result |= run_or_track(
                self, job, f"Reconstruct {src.name}", lambda j, n=src.name: _place_reconstruction(j, n)
            )
        return {"FINISHED"} if "FINISHED" in result else {"CANCELLED"}


def _place_reconstruction(job: dict[str, Any], source_name: str) -> str:
    (tris,) = download_meshes(job)[:1]
    src = bpy.data.objects.get(source_name)
    origin = src.matrix_world.translation.copy() if src else Vector()
    obj = add_object(f"{source_name} SDF", tris, origin, target_collection(bpy.context))
    params = job.get("params") or {}
    obj[LINK_MODEL] = params.get("model_id", job.get("model_id", ""))
    obj[LINK_CODE] = params.get("shape", "")
    obj[LINK_ROLE] = "reconstruction"
    return f"Reconstructed '{source_name}' as '{obj.name}' ({tris.face_count} triangles)"


classes = (COMPACT_SDF_OT_encode_selected, COMPACT_SDF_OT_cancel_job, COMPACT_SDF_OT_reconstruct)
