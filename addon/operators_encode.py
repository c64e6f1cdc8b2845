"""Encode selected objects into a new model; reconstruct encoded objects."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.types import Operator
from mathutils import Vector

from . import connection, mesh_bridge
from .backend_state import refresh_models, select_model
from .bodies import extract_body
from .constants import LINK_CODE, LINK_MODEL
from .job_ops import JobOperatorMixin, JobRequest
from .scene import add_object, download_meshes, encoded_objects, link, shape_name, target_collection


class COMPACT_SDF_OT_encode_selected(JobOperatorMixin, Operator):
    """Train a new model on the selected mesh objects (checked first; problems are reported per object)"""

    bl_idname = "compact_sdf.encode_selected"
    bl_label = "Encode Selected"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)
    failure = "Encoding failed"

    @classmethod
    def poll_problem(cls, context: bpy.types.Context) -> str | None:
        return None if context.selected_objects else "Select one or more mesh objects to encode"

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        settings = context.scene.compact_sdf
        depsgraph = context.evaluated_depsgraph_get()
        valid = self._checked(context.selected_objects, depsgraph, settings.allow_open)
        if not valid:
            return None
        cl = connection.client(context)
        taken: set[str] = set()
        names: dict[str, str] = {}  # shape name -> object name
        mesh_ids = []
        for obj in valid:
            name = shape_name(obj.name, taken)
            ply = mesh_bridge.to_ply(mesh_bridge.world_triangles(obj, depsgraph))
            upload = cl.upload_mesh(name=name, source=ply, fmt="ply", allow_open=settings.allow_open)
            mesh_ids.append(upload["id"])
            names[name] = obj.name
        body: dict[str, Any] = {"kind": "train", "mesh_ids": mesh_ids, "preset": settings.preset}
        if settings.model_name:
            body["name"] = shape_name(settings.model_name, set())
        if settings.steps:
            body["overrides"] = {"train.steps": settings.steps}
        label = f"Encode {valid[0].name}" if len(valid) == 1 else f"Encode {len(valid)} objects"
        return [JobRequest(body, label, lambda j: link_encoded(j, names))]

    def _checked(
        self, selected: list[bpy.types.Object], depsgraph: bpy.types.Depsgraph, allow_open: bool
    ) -> list[bpy.types.Object]:
        """The objects that can be encoded; every problem reported (skips are warnings while some remain)."""
        issues = {obj.name: mesh_bridge.check_object(obj, depsgraph, allow_open) for obj in selected}
        valid = [obj for obj in selected if not any(i.fatal for i in issues[obj.name])]
        for found in issues.values():
            for issue in found:
                if not issue.fatal:
                    self.report({"WARNING"}, issue.message)
                elif valid:  # the others still go ahead: a skipped object is a warning, not a failure
                    self.report({"WARNING"}, f"Skipped {issue.message}")
                else:
                    self.report({"ERROR"}, issue.message)
        return valid


def link_encoded(job: dict[str, Any], names: dict[str, str]) -> str:
    """After training: write the model/code links onto the source objects (only now: no half-links)."""
    model_id = job.get("model_id") or (job.get("result") or {}).get("model_id")
    if not model_id:
        raise RuntimeError("the training job returned no model id")
    linked = []
    for shape, obj_name in names.items():
        obj = bpy.data.objects.get(obj_name)
        if obj is None:  # deleted while training; the code still exists in the model
            continue
        link(obj, model_id, "source", shape)
        linked.append(obj_name)
    refresh_models(bpy.context)
    select_model(bpy.context, model_id)
    return f"Encoded {', '.join(linked)} into model {model_id[:8]}"


class COMPACT_SDF_OT_reconstruct(JobOperatorMixin, Operator):
    """Extract the fused reconstruction of each selected encoded object into the "Compact SDF" collection"""

    bl_idname = "compact_sdf.reconstruct"
    bl_label = "Reconstruct"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)
    failure = "Reconstruct failed"

    @classmethod
    def poll_problem(cls, context: bpy.types.Context) -> str | None:
        if encoded_objects(context):
            return None
        return "Select objects encoded with 'Encode Selected' (they carry a compact_sdf_model link)"

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        settings = context.scene.compact_sdf
        return [
            JobRequest(
                extract_body(src[LINK_MODEL], src[LINK_CODE], settings),
                f"Reconstruct {src.name}",
                lambda j, n=src.name: place_reconstruction(j, n),
                failure=f"Reconstruct '{src.name}' failed",
            )
            for src in encoded_objects(context)
        ]


def place_reconstruction(job: dict[str, Any], source_name: str) -> str:
    (tris,) = download_meshes(job)[:1]
    src = bpy.data.objects.get(source_name)
    origin = src.matrix_world.translation.copy() if src else Vector()
    obj = add_object(f"{source_name} SDF", tris, origin, target_collection(bpy.context))
    params = job.get("params") or {}
    link(obj, params.get("model_id", job.get("model_id", "")), "reconstruction", params.get("shape", ""))
    return f"Reconstructed '{source_name}' as '{obj.name}' ({tris.face_count} triangles)"


classes = (COMPACT_SDF_OT_encode_selected, COMPACT_SDF_OT_reconstruct)
