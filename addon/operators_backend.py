"""Backend life-cycle operators: set up, start, stop, check, list models."""

from __future__ import annotations

import shlex
from typing import Any

import bpy
from bpy.types import Operator

from . import connection
from .preferences import extension_root, get_prefs
from .setup_env import SetupJob, SetupPlan, default_base_python

START_POLL_S = 0.25

_setup: SetupJob | None = None
_start_log: list[str] = []


def setup_job() -> SetupJob | None:
    return _setup


def refresh_models(context: bpy.types.Context) -> int:
    """Reload the model list from the backend into the panel; returns how many models there are."""
    state = context.window_manager.compact_sdf
    models = connection.client(context).list_models()
    keep = state.active_model().model_id if state.active_model() else ""
    state.models.clear()
    for m in models:
        item = state.models.add()
        item.name = m.get("name") or m["id"][:8]
        item.model_id = m["id"]
        item.status = m.get("status", "")
        item.preset = m.get("preset", "")
        item.shapes = ", ".join(s["name"] for s in m.get("shapes", []))
    ids = [m.model_id for m in state.models]
    state.model_index = ids.index(keep) if keep in ids else len(ids) - 1
    return len(ids)


def check_backend(context: bpy.types.Context) -> bool:
    """Ask the backend for its health and write a one-line status for the panel; True when it answered."""
    state = context.window_manager.compact_sdf
    try:
        health = connection.client(context).health()
    except Exception as exc:
        state.backend_ok = False
        state.backend_status = f"Backend not available: {exc}"
        return False
    gpu = f", {health['gpu']}" if health.get("gpu") else ""
    state.backend_ok = True
    state.backend_status = (
        f"Backend {health.get('version', '?')} on {health.get('device', '?')}{gpu}, "
        f"torch {health.get('torch', '?')}, "
        f"{health.get('running_jobs', 0)} running / {health.get('queued_jobs', 0)} queued"
    )
    return True


def start_backend(context: bpy.types.Context, background: bool) -> tuple[str, str]:
    """Start the local backend; (report level, message). Background mode waits here (``blender -b`` has no
    event loop, so timers never fire); the UI waits in a worker thread and ``_watch_start`` finishes."""
    global _start_log
    state = context.window_manager.compact_sdf
    _start_log = []
    try:
        if background:
            connection.start_local(context)
        elif connection.begin_start(context) is not None:
            state.backend_ok = False
            state.backend_status = "Starting the backend…"
            if not bpy.app.timers.is_registered(_watch_start):
                bpy.app.timers.register(_watch_start, first_interval=START_POLL_S, persistent=True)
            return "INFO", "Starting the backend; the Compact SDF panel says when it is running"
    except Exception as exc:
        return "ERROR", _start_failed(state, exc)
    return _started(context)


def start_log() -> list[str]:
    """The backend's last log lines after a failed start, for the panel."""
    return _start_log


def _started(context: bpy.types.Context) -> tuple[str, str]:
    url = connection.local_backend().url
    check_backend(context)
    try:
        refresh_models(context)
    except Exception as exc:
        return "WARNING", f"Backend running at {url}, but listing models failed: {exc}"
    return "INFO", f"Backend running at {url}"


def _start_failed(state: Any, exc: Exception) -> str:
    """The error's first line as the panel status, the log lines after it below; the full text to report."""
    global _start_log
    lines = str(exc).splitlines() or [type(exc).__name__]
    _start_log = lines[1:]
    state.backend_ok = False
    state.backend_status = f"Start failed: {lines[0]}"
    return f"Could not start the backend: {exc}"


def _watch_start() -> float | None:
    """Poll the start's worker thread; once it is done, finish here in the main thread (bpy is not
    thread-safe, so only this side writes the panel state)."""
    start = connection.starting()
    if start is None:  # stopped (or unregistered) while starting
        return None
    if not start.done():
        return START_POLL_S
    try:
        connection.finish_start()
    except Exception as exc:
        message = _start_failed(bpy.context.window_manager.compact_sdf, exc)
    else:
        message = _started(bpy.context)[1]
    print(f"Compact SDF: {message}")
    _tag_redraw("VIEW_3D", "PREFERENCES")
    return None


class COMPACT_SDF_OT_backend_start(Operator):
    """Start the local backend with the Python and data folder from the preferences"""

    bl_idname = "compact_sdf.backend_start"
    bl_label = "Start Backend"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return get_prefs(context).backend_mode == "LOCAL"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if connection.starting() is not None:  # a second press while it starts: nothing to do
            self.report({"INFO"}, "The backend is already starting")
            return {"CANCELLED"}
        level, message = start_backend(context, background=bpy.app.background)
        self.report({level}, message)
        return {"CANCELLED"} if level == "ERROR" else {"FINISHED"}


class COMPACT_SDF_OT_backend_stop(Operator):
    """Stop the local backend this Blender session started"""

    bl_idname = "compact_sdf.backend_stop"
    bl_label = "Stop Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        from . import jobs

        jobs.forget_all()
        state = context.window_manager.compact_sdf
        if not connection.stop_local():
            self.report({"WARNING"}, "No local backend was running")
            return {"CANCELLED"}
        state.backend_ok = False
        state.backend_status = "Backend stopped"
        state.job_id = ""
        return {"FINISHED"}


class COMPACT_SDF_OT_backend_check(Operator):
    """Ask the backend whether it is alive and refresh the model list"""

    bl_idname = "compact_sdf.backend_check"
    bl_label = "Check Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not check_backend(context):
            self.report({"ERROR"}, context.window_manager.compact_sdf.backend_status)
            return {"CANCELLED"}
        try:
            count = refresh_models(context)
        except Exception as exc:
            self.report({"ERROR"}, f"Listing models failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"{context.window_manager.compact_sdf.backend_status}; {count} models")
        return {"FINISHED"}


class COMPACT_SDF_OT_setup_backend(Operator):
    """Create the backend's Python environment, install torch and the bundled backend (in the background)"""

    bl_idname = "compact_sdf.setup_backend"
    bl_label = "Set Up Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        global _setup
        if _setup is not None and _setup.state == "running":
            self.report({"WARNING"}, "The set-up is already running")
            return {"CANCELLED"}
        prefs = get_prefs(context)
        backend_dir = extension_root() / "backend"
        if not (backend_dir / "pyproject.toml").is_file():
            self.report(
                {"ERROR"}, f"The bundled backend is missing at {backend_dir}: reinstall the extension"
            )
            return {"CANCELLED"}
        try:
            extra = tuple(shlex.split(prefs.extra_pip_args))
        except ValueError as exc:
            self.report({"ERROR"}, f"'Extra pip arguments' cannot be parsed: {exc}")
            return {"CANCELLED"}
        plan = SetupPlan(
            base_python=default_base_python(),
            venv_dir=prefs.resolved_venv(),
            backend_dir=backend_dir,
            torch=prefs.torch_variant,
            torch_index=prefs.torch_index,
            extra_pip_args=extra,
        )
        _setup = SetupJob(plan)
        _setup.start()
        if not bpy.app.timers.is_registered(_watch_setup):
            bpy.app.timers.register(_watch_setup, first_interval=0.5)
        self.report({"INFO"}, f"Setting up the backend in {plan.venv_dir} (see the log in the preferences)")
        return {"FINISHED"}


class COMPACT_SDF_OT_setup_cancel(Operator):
    """Stop the running set-up"""

    bl_idname = "compact_sdf.setup_cancel"
    bl_label = "Cancel Set-Up"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if _setup is None or _setup.state != "running":
            return {"CANCELLED"}
        _setup.cancel()
        return {"FINISHED"}


def _watch_setup() -> float | None:
    """Redraw the preferences while the set-up runs so its log scrolls; stop when it ends."""
    _tag_redraw("PREFERENCES")
    if _setup is not None and _setup.state == "running":
        return 0.5
    if _setup is not None:
        print(f"Compact SDF: {_setup.message}")
    return None


def _tag_redraw(*area_types: str) -> None:
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in area_types:
                area.tag_redraw()


def shutdown() -> None:
    """Called on unregister: never leave a pip or a backend process behind, ready or still starting."""
    global _setup
    if _setup is not None and _setup.state == "running":
        _setup.cancel()
        _setup.wait(10)
    _setup = None
    for timer in (_watch_setup, _watch_start):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
    connection.stop_local()


classes = (
    COMPACT_SDF_OT_backend_start,
    COMPACT_SDF_OT_backend_stop,
    COMPACT_SDF_OT_backend_check,
    COMPACT_SDF_OT_setup_backend,
    COMPACT_SDF_OT_setup_cancel,
)
