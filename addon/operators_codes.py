"""Export / import a model's latent codes through Blender's file browser."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy.types import Operator
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import connection
from .operators_backend import refresh_models
from .properties import LINK_MODEL


def chosen_model(context: bpy.types.Context) -> str:
    """The active object's model when it is linked to one, else the model selected in the panel's list."""
    obj = context.active_object
    if obj is not None and obj.get(LINK_MODEL):
        return str(obj[LINK_MODEL])
    item = context.window_manager.compact_sdf.active_model()
    return item.model_id if item else ""


class COMPACT_SDF_OT_export_codes(Operator, ExportHelper):
    """Save the latent codes of the active object's model (or the model selected in the list)"""

    bl_idname = "compact_sdf.export_codes"
    bl_label = "Export Codes"

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz;*.json", options={"HIDDEN"})  # type: ignore[valid-type]
    file_format: EnumProperty(  # type: ignore[valid-type]
        name="Format",
        items=[("npz", "NumPy (.npz)", "Compact binary"), ("json", "JSON (.json)", "Readable text")],
        default="npz",
    )

    def check(self, context: bpy.types.Context) -> bool:
        """Keep the file name's extension in step with the chosen format."""
        self.filename_ext = "." + self.file_format
        return super().check(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        model_id = chosen_model(context)
        if not model_id:
            self.report({"ERROR"}, "No model: select an encoded object or a model in the Compact SDF panel")
            return {"CANCELLED"}
        path = Path(bpy.path.ensure_ext(self.filepath, "." + self.file_format))
        try:
            data = connection.client(context).export_codes(model_id, self.file_format)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        except Exception as exc:
            self.report({"ERROR"}, f"Export failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved the codes of model {model_id[:8]} to {path}")
        return {"FINISHED"}


class COMPACT_SDF_OT_import_codes(Operator, ImportHelper):
    """Load latent codes from a file into the active object's model (or the model selected in the list)"""

    bl_idname = "compact_sdf.import_codes"
    bl_label = "Import Codes"

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz;*.json", options={"HIDDEN"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        model_id = chosen_model(context)
        if not model_id:
            self.report({"ERROR"}, "No model: select an encoded object or a model in the Compact SDF panel")
            return {"CANCELLED"}
        path = Path(self.filepath)
        if not path.is_file():
            self.report({"ERROR"}, f"No such file: {path}")
            return {"CANCELLED"}
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in ("npz", "json"):
            self.report({"ERROR"}, f"'{path.name}' is not a codes file (.npz or .json)")
            return {"CANCELLED"}
        try:
            answer = connection.client(context).import_codes(model_id, path.read_bytes(), fmt)
            refresh_models(context)
        except Exception as exc:
            self.report({"ERROR"}, f"Import failed: {exc}")
            return {"CANCELLED"}
        names = answer.get("shapes") if isinstance(answer, dict) else None
        detail = (
            f": {', '.join(s['name'] if isinstance(s, dict) else str(s) for s in names)}" if names else ""
        )
        self.report({"INFO"}, f"Imported codes into model {model_id[:8]}{detail}")
        return {"FINISHED"}


classes = (COMPACT_SDF_OT_export_codes, COMPACT_SDF_OT_import_codes)
