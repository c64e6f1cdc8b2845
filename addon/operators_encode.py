"""Encode selected objects into a new model, add selected objects to an existing model, reconstruct
encoded objects."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.types import Operator

from . import connection, mesh_bridge
from .bodies import extract_body
from .constants import LINK_CODE, LINK_MODEL
from .job_ops import JobRequest, SceneJobMixin
from .results import link_encoded, place_reconstruction
from .runtime import state
from .scene import encoded_objects, shape_name

Uploaded = list[tuple[str, str, str]]  # (mesh id, shape name, object name) per uploaded object


class _UploadMixin(SceneJobMixin):
    """Check the selected objects (problems reported per object, skips as warnings while some remain)
    and upload each one's evaluated world-space mesh, counting them on Blender's progress cursor."""

    @classmethod
    def poll_problem(cls, context: bpy.types.Context) -> str | None:
        return None if context.selected_objects else "Select one or more mesh objects to encode"

    def upload_selected(self, context: bpy.types.Context, taken: set[str]) -> Uploaded | None:
        allow_open = context.scene.compact_sdf.allow_open
        depsgraph = context.evaluated_depsgraph_get()
        valid = self._checked(list(context.selected_objects), depsgraph, allow_open)
        if not valid:
            return None
        cl = connection.client(context)
        wm = context.window_manager
        wm.progress_begin(0, len(valid))
        try:
            uploaded = []
            for i, obj in enumerate(valid):
                name = shape_name(obj.name, taken)
                ply = mesh_bridge.to_ply(mesh_bridge.world_triangles(obj, depsgraph))
                mesh = cl.upload_mesh(name=name, source=ply, fmt="ply", allow_open=allow_open)
                uploaded.append((mesh["id"], name, obj.name))
                wm.progress_update(i + 1)
        finally:
            wm.progress_end()
        return uploaded

    def _checked(
        self, selected: list[bpy.types.Object], depsgraph: bpy.types.Depsgraph, allow_open: bool
    ) -> list[bpy.types.Object]:
        issues = {obj.name: mesh_bridge.check_object(obj, depsgraph, allow_open) for obj in selected}
        valid = [obj for obj in selected if not any(i.fatal for i in issues[obj.name])]
        for found in issues.values():
            for issue in found:
                if not issue.fatal:
                    self.report({"WARNING"}, issue.message)  # type: ignore[attr-defined]
                elif valid:  # the others still go ahead: a skipped object is a warning, not a failure
                    self.report({"WARNING"}, f"Skipped {issue.message}")  # type: ignore[attr-defined]
                else:
                    self.report({"ERROR"}, issue.message)  # type: ignore[attr-defined]
        return valid


class COMPACT_SDF_OT_encode_selected(_UploadMixin, Operator):
    """Train a new model on the selected mesh objects (checked first; problems are reported per object)"""

    bl_idname = "compact_sdf.encode_selected"
    bl_label = "Encode Selected"
    failure = "Encoding failed"

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        settings = context.scene.compact_sdf
        uploaded = self.upload_selected(context, set())
        if uploaded is None:
            return None
        names = {shape: obj for _, shape, obj in uploaded}
        body: dict[str, Any] = {
            "kind": "train",
            "mesh_ids": [mesh_id for mesh_id, _, _ in uploaded],
            "preset": settings.preset,
            "collection": settings.collection,
        }
        if settings.model_name:
            body["name"] = shape_name(settings.model_name, set())
        if settings.steps:
            body["overrides"] = {"train.steps": settings.steps}
        label = f"Encode {uploaded[0][2]}" if len(uploaded) == 1 else f"Encode {len(uploaded)} objects"
        return [JobRequest(body, label, lambda j: link_encoded(j, names))]


class COMPACT_SDF_OT_add_to_model(_UploadMixin, Operator):
    """Add the selected mesh objects to the model selected in the list: one code fitted per object with
    the decoder frozen, and (Mode Auto, where that code does not hold the shape, or Full) the model
    fine-tuned with it"""

    bl_idname = "compact_sdf.add_to_model"
    bl_label = "Add Selected to Model"
    failure = "Adding to the model failed"

    @classmethod
    def poll_problem(cls, context: bpy.types.Context) -> str | None:
        if state(context).active_model() is None:
            return "Select a model in the Compact SDF panel's list"
        return super().poll_problem(context)

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        model = state(context).active_model()
        uploaded = self.upload_selected(context, {s for s in model.shapes.split(", ") if s})
        if uploaded is None:
            return None
        fit = {
            "kind": "fit",
            "model_id": model.model_id,
            "iterations": context.scene.compact_sdf.fit_iterations,
            "mode": context.scene.compact_sdf.fit_mode,
        }
        return [
            JobRequest(
                {**fit, "mesh_id": mesh_id, "name": shape},
                f"Add {obj} to {model.name}",
                lambda j, s=shape, o=obj: link_encoded(j, {s: o}),
                failure=f"Adding '{obj}' failed",
            )
            for mesh_id, shape, obj in uploaded
        ]


class COMPACT_SDF_OT_reconstruct(SceneJobMixin, Operator):
    """Extract the fused reconstruction of each selected encoded object into the "Compact SDF" collection"""

    bl_idname = "compact_sdf.reconstruct"
    bl_label = "Reconstruct"
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


classes = (COMPACT_SDF_OT_encode_selected, COMPACT_SDF_OT_add_to_model, COMPACT_SDF_OT_reconstruct)
