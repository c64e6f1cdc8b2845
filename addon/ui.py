"""The "Compact SDF" sidebar tab in the 3D View: backend, models, encode, results, interpolation, codes."""

from __future__ import annotations

import bpy
from bpy.types import Panel, UIList

from . import connection, jobs
from .backend_state import start_log
from .constants import LINK_CODE, LINK_MODEL, LINK_ROLE, LINK_SOURCES, MIX_SLOTS, NOTE
from .preferences import ADDON_PACKAGE, get_prefs

INTERPOLATION_PROPS = ("interp_steps", "interp_mode", "interp_join_gap", "spacing", "preview_resolution")


def _props(layout: bpy.types.UILayout, data: object, *names: str) -> bpy.types.UILayout:
    """Properties in Blender's split style (label left, field right, no animation dots)."""
    layout.use_property_split = True
    layout.use_property_decorate = False
    for name in names:
        layout.prop(data, name)
    return layout


class COMPACT_SDF_UL_models(UIList):
    bl_idname = "COMPACT_SDF_UL_models"

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):  # type: ignore[no-untyped-def]
        row = layout.row(align=True)
        row.label(text=item.name, icon="MESH_ICOSPHERE")
        row.label(text=f"{item.status} · {item.preset}")


class COMPACT_SDF_UL_shapes(UIList):
    """A model's shapes: tick to include, the code's name, the object holding it, its last evaluation."""

    bl_idname = "COMPACT_SDF_UL_shapes"

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):  # type: ignore[no-untyped-def]
        row = layout.row(align=True)
        row.prop(item, "chosen", text="")
        row.label(text=item.name, icon="MESH_DATA")
        row.label(text=item.source or "no object", icon="OBJECT_DATA" if item.source else "BLANK1")
        row.label(text=item.fidelity or "-")


class _Base:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Compact SDF"


class COMPACT_SDF_PT_main(_Base, Panel):
    bl_label = "Compact SDF"
    bl_idname = "COMPACT_SDF_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        state = context.window_manager.compact_sdf
        prefs = get_prefs(context)
        box = layout.box()
        row = box.row(align=True)
        if prefs.backend_mode == "LOCAL":
            running = connection.local_backend() is not None and connection.local_backend().alive()
            starting = connection.starting() is not None
            row.label(
                text="Local backend: " + ("starting…" if starting else "running" if running else "stopped"),
                icon="TIME" if starting else "LINKED" if running else "UNLINKED",
            )
            sub = box.row(align=True)
            if running or starting:  # Stop also ends a start that takes too long
                sub.operator("compact_sdf.backend_stop", icon="PAUSE")
            else:
                sub.operator("compact_sdf.backend_start", icon="PLAY")
            sub.operator("compact_sdf.backend_check", text="", icon="FILE_REFRESH")
        else:
            row.label(text=f"Remote: {prefs.remote_url or 'no URL set'}", icon="WORLD")
            row.operator("compact_sdf.backend_check", text="", icon="FILE_REFRESH")
        if state.backend_status:
            box.label(text=state.backend_status)
        if start_log():
            log = box.column(align=True)
            log.scale_y = 0.7
            for line in start_log():
                log.label(text=line[:160])
        box.operator("preferences.addon_show", text="Preferences", icon="PREFERENCES").module = ADDON_PACKAGE

        _draw_jobs(layout)
        if state.job_message:
            layout.label(text=state.job_message, icon="INFO" if state.job_level == "INFO" else "ERROR")


def _draw_jobs(layout: bpy.types.UILayout) -> None:
    """One row per followed job: its label, progress and its own cancel button; Cancel All when several."""
    watches = jobs.active()
    if not watches:
        return
    box = layout.box()
    for watch in watches:
        box.label(text=watch.label, icon="TIME")
        row = box.row(align=True)
        row.progress(factor=watch.fraction, type="BAR", text=watch.stage or "queued")
        row.operator("compact_sdf.cancel_job", text="", icon="CANCEL").job_id = watch.job_id
    if len(watches) > 1:
        box.operator("compact_sdf.cancel_job", text="Cancel All", icon="CANCEL")


class COMPACT_SDF_PT_models(_Base, Panel):
    bl_label = "Models"
    bl_parent_id = "COMPACT_SDF_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        state = context.window_manager.compact_sdf
        self.layout.template_list("COMPACT_SDF_UL_models", "", state, "models", state, "model_index", rows=3)
        if state.active_model() is not None:
            _draw_shapes(self.layout, state, context.scene.compact_sdf)
        row = self.layout.row(align=True)
        row.operator("compact_sdf.export_codes", icon="EXPORT")
        row.operator("compact_sdf.import_codes", icon="IMPORT")


def _draw_shapes(layout: bpy.types.UILayout, state: object, settings: object) -> None:
    """The active model's shapes and what can be done with them."""
    layout.label(text=f"Shapes ({len(state.shapes)})")
    layout.template_list("COMPACT_SDF_UL_shapes", "", state, "shapes", state, "shape_index", rows=4)
    row = layout.row(align=True)
    row.operator("compact_sdf.shapes_reconstruct", text="Reconstruct", icon="MESH_MONKEY")
    row.operator("compact_sdf.shapes_interpolate", text="Interpolate", icon="ARROW_LEFTRIGHT")
    row.operator("compact_sdf.shapes_evaluate", text="Evaluate", icon="CHECKMARK")
    row = layout.row(align=True)
    row.operator("compact_sdf.add_to_model", icon="ADD")
    row.prop(settings, "fit_mode", text="")
    row.prop(settings, "fit_iterations", text="Iterations")


class COMPACT_SDF_PT_encode(_Base, Panel):
    bl_label = "Encode"
    bl_parent_id = "COMPACT_SDF_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = _props(
            self.layout,
            context.scene.compact_sdf,
            "preset",
            "steps",
            "model_name",
            "allow_open",
            "collection",
        )
        count = sum(1 for o in context.selected_objects if o.type == "MESH")
        layout.operator("compact_sdf.encode_selected", text=f"Encode Selected ({count})", icon="MOD_REMESH")


class COMPACT_SDF_PT_results(_Base, Panel):
    bl_label = "Reconstruct & Interpolate"
    bl_parent_id = "COMPACT_SDF_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.compact_sdf
        layout = _props(self.layout, settings, "resolution", "band", "close_pinholes")
        layout.operator("compact_sdf.reconstruct", icon="MESH_MONKEY")
        _props(layout.column(heading="Interpolation"), settings, *INTERPOLATION_PROPS)
        row = layout.row(align=True)
        row.operator("compact_sdf.interpolate", icon="ARROW_LEFTRIGHT")
        row.operator("compact_sdf.live_create", icon="DRIVER")
        obj = context.active_object
        if obj is not None and obj.get(LINK_ROLE) == "live":
            _draw_live(layout.box(), obj)
        elif obj is not None and obj.get(LINK_MODEL):
            layout.label(
                text=f"{obj.name}: code '{obj.get(LINK_CODE, '-')}' in model {str(obj[LINK_MODEL])[:8]}"
            )


def _draw_live(box: bpy.types.UILayout, obj: bpy.types.Object) -> None:
    """A live object's controls: one Blend slider along its sources, or one weight per source."""
    box.label(text=obj.name, icon="DRIVER")
    settings = obj.compact_sdf
    box.row().prop(settings, "live_mode", expand=True)
    if settings.live_mode == "MIX":
        col = box.column(align=True)
        for i, name in enumerate(str(obj.get(LINK_SOURCES, "")).split(",")[:MIX_SLOTS]):
            col.prop(settings, "mix_weights", index=i, text=name, slider=True)
    else:
        box.prop(settings, "live_factor", slider=True)
    if obj.get(NOTE):
        box.label(text=str(obj[NOTE]), icon="ERROR")
    box.operator("compact_sdf.live_refine", icon="SHADING_SOLID")


classes = (
    COMPACT_SDF_UL_models,
    COMPACT_SDF_UL_shapes,
    COMPACT_SDF_PT_main,
    COMPACT_SDF_PT_models,
    COMPACT_SDF_PT_encode,
    COMPACT_SDF_PT_results,
)
