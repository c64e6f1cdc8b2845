"""Backend life-cycle operators: set up, start, stop, check (the state they change lives in
``backend_state``, ``backend_setup`` and ``connection``)."""

from __future__ import annotations

import shlex

import bpy
from bpy.types import Operator

from . import backend_setup, connection
from .backend_state import check_backend, refresh_models, start_backend, stop_backend
from .preferences import extension_root, get_prefs
from .runtime import state
from .setup_env import SetupPlan, default_base_python


def _reported(op: Operator, level: str, message: str, ok: bool) -> set[str]:
    """Report ``message`` at ``level`` and return what Blender expects: FINISHED when it worked."""
    op.report({level}, message)
    return {"FINISHED"} if ok else {"CANCELLED"}


class COMPACT_SDF_OT_backend_start(Operator):
    """Start the local backend with the Python and data folder from the preferences"""

    bl_idname = "compact_sdf.backend_start"
    bl_label = "Start Backend"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if get_prefs(context).backend_mode != "LOCAL":
            cls.poll_message_set("The add-on uses a remote backend (see its preferences)")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        if connection.starting() is not None:  # a second press while it starts: nothing to do
            return _reported(self, "INFO", "The backend is already starting", ok=False)
        level, message = start_backend(context, background=bpy.app.background)
        return _reported(self, level, message, ok=level != "ERROR")


class COMPACT_SDF_OT_backend_stop(Operator):
    """Stop the local backend this Blender session started"""

    bl_idname = "compact_sdf.backend_stop"
    bl_label = "Stop Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        level, message = stop_backend(context)
        return _reported(self, level, message, ok=level != "WARNING")


class COMPACT_SDF_OT_backend_check(Operator):
    """Ask the backend whether it is alive and refresh the model list"""

    bl_idname = "compact_sdf.backend_check"
    bl_label = "Check Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not check_backend(context):
            return _reported(self, "ERROR", state(context).backend_status, ok=False)
        try:
            count = refresh_models(context)
        except Exception as exc:
            return _reported(self, "ERROR", f"Listing models failed: {exc}", ok=False)
        return _reported(self, "INFO", f"{state(context).backend_status}; {count} models", ok=True)


class COMPACT_SDF_OT_setup_backend(Operator):
    """Create the backend's Python environment, install torch and the bundled backend (in the background)"""

    bl_idname = "compact_sdf.setup_backend"
    bl_label = "Set Up Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if backend_setup.running():
            return _reported(self, "WARNING", "The set-up is already running", ok=False)
        prefs = get_prefs(context)
        backend_dir = extension_root() / "backend"
        if not (backend_dir / "pyproject.toml").is_file():
            missing = f"The bundled backend is missing at {backend_dir}: reinstall the extension"
            return _reported(self, "ERROR", missing, ok=False)
        try:
            extra = tuple(shlex.split(prefs.extra_pip_args))
        except ValueError as exc:
            return _reported(self, "ERROR", f"'Extra pip arguments' cannot be parsed: {exc}", ok=False)
        plan = SetupPlan(
            base_python=default_base_python(),
            venv_dir=prefs.resolved_venv(),
            backend_dir=backend_dir,
            torch=prefs.torch_variant,
            torch_index=prefs.torch_index,
            extra_pip_args=extra,
        )
        backend_setup.begin(plan)
        started = f"Setting up the backend in {plan.venv_dir} (see the log in the preferences)"
        return _reported(self, "INFO", started, ok=True)


class COMPACT_SDF_OT_setup_cancel(Operator):
    """Stop the running set-up"""

    bl_idname = "compact_sdf.setup_cancel"
    bl_label = "Cancel Set-Up"

    def execute(self, context: bpy.types.Context) -> set[str]:
        return {"FINISHED"} if backend_setup.cancel() else {"CANCELLED"}


classes = (
    COMPACT_SDF_OT_backend_start,
    COMPACT_SDF_OT_backend_stop,
    COMPACT_SDF_OT_backend_check,
    COMPACT_SDF_OT_setup_backend,
    COMPACT_SDF_OT_setup_cancel,
)
