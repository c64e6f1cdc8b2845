"""Interpolation between encoded objects: a row of K objects, and a live object with a 0..1 slider."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import IntProperty
from bpy.types import Operator

from . import live
from .bodies import interpolate_body
from .constants import LINK_CODE, LINK_MODEL, LINK_ROLE
from .job_ops import JobRequest, SceneJobMixin
from .notes import Warn
from .results import place_live, place_row
from .scene import encoded_objects


def interpolation_sources(context: bpy.types.Context) -> tuple[list[bpy.types.Object], str | None]:
    """The selected encoded objects ordered left to right (world X), or an error sentence."""
    objs = [o for o in encoded_objects(context) if o.get(LINK_ROLE, "source") in ("source", "decoded")]
    if len(objs) < 2:
        return [], "Select two or more objects encoded with 'Encode Selected'"
    models = {o[LINK_MODEL] for o in objs}
    if len(models) > 1:
        return [], "The selected objects belong to different models; interpolate within one model"
    return sorted(objs, key=lambda o: (o.matrix_world.translation.x, o.name)), None


class _InterpolationMixin(SceneJobMixin):
    """Both interpolation operators: two or more encoded objects of one model, one interpolate job.
    Sub-classes name the resolution setting, the shape choice (steps or weights) and the placement."""

    resolution_setting = "resolution"

    @classmethod
    def poll_problem(cls, context: bpy.types.Context) -> str | None:
        return interpolation_sources(context)[1]

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        settings = context.scene.compact_sdf
        sources, _ = interpolation_sources(context)
        names = [o.name for o in sources]
        body = interpolate_body(
            sources[0][LINK_MODEL],
            [o[LINK_CODE] for o in sources],
            getattr(settings, self.resolution_setting),
            settings.interp_mode,
            join_gap=round(settings.interp_join_gap, 6),
            **self.shape_choice(settings, len(sources)),
        )
        spacing, place = settings.spacing, self.place  # the operator is gone when the job ends
        return [JobRequest(body, self.label(names), lambda j: place(j, names, spacing))]

    def shape_choice(self, settings: Any, count: int) -> dict[str, Any]:
        raise NotImplementedError

    def label(self, names: list[str]) -> str:
        raise NotImplementedError

    @staticmethod
    def place(job: dict[str, Any], names: list[str], spacing: float) -> str:
        raise NotImplementedError


class COMPACT_SDF_OT_interpolate(_InterpolationMixin, Operator):
    """Decode a row of shapes between the selected encoded objects (ends included)"""

    bl_idname = "compact_sdf.interpolate"
    bl_label = "Interpolate"
    failure = "Interpolation failed"

    def shape_choice(self, settings: Any, count: int) -> dict[str, Any]:
        return {"steps": settings.interp_steps}

    def label(self, names: list[str]) -> str:
        return f"Interpolate {' / '.join(names)}"

    place = staticmethod(place_row)


class COMPACT_SDF_OT_live_create(_InterpolationMixin, Operator):
    """Make a live interpolation object whose Blend slider re-extracts it (preview resolution)"""

    bl_idname = "compact_sdf.live_create"
    bl_label = "Live Interpolation"
    failure = "Live interpolation failed"
    resolution_setting = "preview_resolution"

    def shape_choice(self, settings: Any, count: int) -> dict[str, Any]:
        """Two sources: halfway along the slider; more: an equal mix (one weight per source)."""
        if count == 2:
            return {"weights": live.live_weights(0.5, count)}
        return {"weights": [[1.0 / count] * count]}

    def label(self, names: list[str]) -> str:
        return "Live interpolation"

    place = staticmethod(place_live)


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
        if obj is None or obj.get(LINK_ROLE) != "live":
            cls.poll_message_set("Make a live interpolation object active")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        obj = context.active_object
        problem = live.request_update(obj, self.resolution or context.scene.compact_sdf.resolution)
        if problem and not isinstance(problem, Warn):
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        if problem:  # refined, but the mesh is not what the weights ask for: say so
            self.report({"WARNING"}, problem)
            return {"FINISHED"}
        self.report({"INFO"}, f"Refining '{obj.name}'")
        return {"FINISHED"}


classes = (COMPACT_SDF_OT_interpolate, COMPACT_SDF_OT_live_create, COMPACT_SDF_OT_live_refine)
