"""Operators on the shape list of the model selected in the panel: reconstruct, interpolate or evaluate
any shape of the model, whether or not an object in this scene holds its code."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.types import Operator

from .bodies import extract_body, interpolate_body
from .job_ops import JobOperatorMixin, JobRequest, SceneJobMixin
from .results import place_reconstruction, place_row, record_fidelity
from .runtime import state


def chosen_shapes(context: bpy.types.Context) -> list[Any]:
    """The ticked shapes of the list, in list order; the active one when none is ticked."""
    st = state(context)
    ticked = [s for s in st.shapes if s.chosen]
    if ticked or not 0 <= st.shape_index < len(st.shapes):
        return ticked
    return [st.shapes[st.shape_index]]


class _ShapesMixin(JobOperatorMixin):
    """A model in the list and at least ``need`` chosen shapes."""

    need = 1

    @classmethod
    def poll_problem(cls, context: bpy.types.Context) -> str | None:
        if state(context).active_model() is None:
            return "Select a model in the Compact SDF panel's list"
        if len(chosen_shapes(context)) < cls.need:
            return f"Tick {cls.need} or more shapes in the model's shape list"
        return None


class COMPACT_SDF_OT_shapes_reconstruct(_ShapesMixin, SceneJobMixin, Operator):
    """Reconstruct the ticked shapes (or the active one) of the model selected in the list"""

    bl_idname = "compact_sdf.shapes_reconstruct"
    bl_label = "Reconstruct Shapes"
    failure = "Reconstruct failed"

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        model_id = state(context).active_model().model_id
        settings = context.scene.compact_sdf
        return [
            JobRequest(
                extract_body(model_id, s.name, settings),
                f"Reconstruct {s.name}",
                lambda j, src=s.source, n=s.name: place_reconstruction(j, src or None, n),
            )
            for s in chosen_shapes(context)
        ]


class COMPACT_SDF_OT_shapes_interpolate(_ShapesMixin, SceneJobMixin, Operator):
    """Decode a row of shapes between the ticked shapes of the model selected in the list (in list order)"""

    bl_idname = "compact_sdf.shapes_interpolate"
    bl_label = "Interpolate Shapes"
    failure = "Interpolation failed"
    need = 2

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        settings = context.scene.compact_sdf
        shapes = chosen_shapes(context)
        body = interpolate_body(
            state(context).active_model().model_id,
            [s.name for s in shapes],
            settings.resolution,
            settings.interp_mode,
            steps=settings.interp_steps,
        )
        names, spacing = [s.source or s.name for s in shapes], settings.spacing
        label = f"Interpolate {' / '.join(s.name for s in shapes)}"
        return [JobRequest(body, label, lambda j: place_row(j, names, spacing))]


class COMPACT_SDF_OT_shapes_evaluate(_ShapesMixin, Operator):
    """Compare the reconstruction of the ticked shapes (or the active one) with their source meshes;
    the list shows the figures (Chamfer distance, F-score at 0.01) and the source object keeps them"""

    bl_idname = "compact_sdf.shapes_evaluate"
    bl_label = "Evaluate Shapes"
    failure = "Evaluation failed"

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        model_id = state(context).active_model().model_id
        resolution = context.scene.compact_sdf.resolution
        return [
            JobRequest(
                {"kind": "evaluate", "model_id": model_id, "shape": s.name, "resolution": resolution},
                f"Evaluate {s.name}",
                lambda j, src=s.source, n=s.name: record_fidelity(j, src or None, n),
            )
            for s in chosen_shapes(context)
        ]


classes = (
    COMPACT_SDF_OT_shapes_reconstruct,
    COMPACT_SDF_OT_shapes_interpolate,
    COMPACT_SDF_OT_shapes_evaluate,
)
