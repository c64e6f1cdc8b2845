"""Export / import a model's latent codes through Blender's file browser."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy.types import Operator
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import connection
from .backend_state import refresh_models
from .bodies import extract_body
from .client import ApiError, BackendUnreachable, atomic_write
from .constants import LINK_MODEL
from .job_ops import JobOperatorMixin, JobRequest
from .results import place_decoded
from .runtime import state

CODE_FORMATS = [
    ("json", "JSON (.json)", "Codes with their metadata in one file: can add shapes to a model"),
    ("npz", "NumPy (.npz)", "Compact binary codes only: updates shapes the model already has"),
]


def chosen_model(context: bpy.types.Context) -> str:
    """The active object's model when it is linked to one, else the model selected in the panel's list."""
    obj = context.active_object
    if obj is not None and obj.get(LINK_MODEL):
        return str(obj[LINK_MODEL])
    item = state(context).active_model()
    return item.model_id if item else ""


def _model_problem(context: bpy.types.Context) -> str | None:
    """The poll check both codes operators share: a model to work on, and a backend to ask."""
    if not chosen_model(context):
        return "Select an encoded object or a model in the Compact SDF panel"
    return connection.problem(context)


class COMPACT_SDF_OT_export_codes(Operator, ExportHelper):
    """Save the latent codes of the active object's model (or the model selected in the list)"""

    bl_idname = "compact_sdf.export_codes"
    bl_label = "Export Codes"

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.npz;*.json", options={"HIDDEN"})  # type: ignore[valid-type]
    file_format: EnumProperty(name="Format", items=CODE_FORMATS, default="json")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        problem = _model_problem(context)
        if problem is not None:
            cls.poll_message_set(problem)
        return problem is None

    def check(self, context: bpy.types.Context) -> bool:
        """Keep the file name's extension in step with the chosen format."""
        self.filename_ext = "." + self.file_format
        return super().check(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        model_id = chosen_model(context)
        path = Path(bpy.path.ensure_ext(self.filepath, "." + self.file_format))
        try:
            data = connection.client(context).export_codes(model_id, self.file_format)
            atomic_write(path, data)
        except Exception as exc:
            self.report({"ERROR"}, f"Export failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved the codes of model {model_id[:8]} to {path}")
        return {"FINISHED"}


class COMPACT_SDF_OT_import_codes(JobOperatorMixin, Operator, ImportHelper):
    """Load latent codes from a file into the active object's model (or the model selected in the list)"""

    bl_idname = "compact_sdf.import_codes"
    bl_label = "Import Codes"
    failure = "Import failed"

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz;*.json", options={"HIDDEN"})  # type: ignore[valid-type]
    decode: BoolProperty(  # type: ignore[valid-type]
        name="Decode shapes", description="Extract each imported shape as a new object", default=True
    )

    @classmethod
    def poll_problem(cls, context: bpy.types.Context) -> str | None:
        return _model_problem(context)

    def job_requests(self, context: bpy.types.Context) -> list[JobRequest] | None:
        """Import now (one request); then one decode job per shape the model did not have."""
        model_id = chosen_model(context)
        path = Path(self.filepath)
        fmt = path.suffix.lower().lstrip(".")
        if not path.is_file():
            self.report({"ERROR"}, f"No such file: {path}")
            return None
        if fmt not in ("npz", "json"):
            self.report({"ERROR"}, f"'{path.name}' is not a codes file (.npz or .json)")
            return None
        new = self._import(context, model_id, path, fmt)
        if new is None:
            return None
        if not new:
            self.report({"WARNING"}, f"Model {model_id[:8]} already had every shape in '{path.name}'")
            return []
        self.report({"INFO"}, f"Imported {len(new)} codes into model {model_id[:8]}: {', '.join(new)}")
        if not self.decode:
            return []
        settings = context.scene.compact_sdf
        return [
            JobRequest(
                extract_body(model_id, name, settings),
                f"Decode {name}",
                lambda j, n=name: place_decoded(j, model_id, n),
                failure=f"Decoding '{name}' failed",
            )
            for name in new
        ]

    def _import(self, context: bpy.types.Context, model_id: str, path: Path, fmt: str) -> list[str] | None:
        """Send the file; the names of the shapes it added, or None after an error report in words that
        name the file the user chose (the backend reads a copy of it under another name)."""
        try:
            body = path.read_bytes()
        except OSError as exc:
            self.report({"ERROR"}, f"Could not read '{path.name}': {exc.strerror or 'input/output error'}")
            return None
        try:
            cl = connection.client(context)
            before = {sh["name"] for sh in cl.get_model(model_id)["shapes"]}
            model = cl.import_codes(model_id, body, fmt, filename=path.name)
        except ApiError as exc:  # the server's sentence, without its status code
            self.report({"ERROR"}, f"Import of '{path.name}' failed: {exc.message}")
            return None
        except (BackendUnreachable, connection.BackendUnavailable) as exc:
            self.report({"ERROR"}, f"Import of '{path.name}' failed: {exc}")
            return None
        refresh_models(context)
        return [sh["name"] for sh in model["shapes"] if sh["name"] not in before]


classes = (COMPACT_SDF_OT_export_codes, COMPACT_SDF_OT_import_codes)
