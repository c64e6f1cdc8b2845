"""Add-on preferences: where the backend runs, which Python runs it, and the "Set up backend" panel."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty
from bpy.types import AddonPreferences

from . import backend_setup
from .runtime import state
from .setup_env import venv_python

# addon/ is a sub-package; Blender keys preferences by the extension's top-level package.
ADDON_PACKAGE = (__package__ or "compact_sdf").rpartition(".")[0] or "compact_sdf"
SETUP_LOG_LINES = 12
BACKEND_MODES = [
    ("LOCAL", "Local", "Start the backend on this computer when needed"),
    ("REMOTE", "Remote", "Use a backend already running elsewhere (e.g. a GPU server)"),
]
TORCH_VARIANTS = [
    ("cpu", "CPU", "Small download; runs everywhere"),
    ("cuda", "CUDA", "NVIDIA GPUs; several GB download"),
]
DEVICES = [("auto", "Auto", "CUDA when available"), ("cpu", "CPU", ""), ("cuda", "CUDA", "")]


def extension_root() -> Path:
    """The installed extension folder (holds addon/ and the bundled backend/)."""
    return Path(__file__).resolve().parent.parent


def user_folder(sub: str) -> Path:
    """A per-user folder that survives extension updates (Blender's extension user path when there is one)."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path=sub, create=True))
    except (ValueError, AttributeError):  # loaded as a legacy add-on or outside an extension repository
        folder = Path(bpy.utils.user_resource("SCRIPTS", path="compact_sdf")) / sub
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def _folder(name: str, use: str) -> Any:
    """A folder setting that falls back to the extension user folder when empty (see ``user_folder``)."""
    return StringProperty(name=name, description=f"{use}; empty = extension user folder", subtype="DIR_PATH")


def get_prefs(context: bpy.types.Context | None = None) -> CompactSDFPreferences:
    ctx = context or bpy.context
    return ctx.preferences.addons[ADDON_PACKAGE].preferences


class CompactSDFPreferences(AddonPreferences):
    bl_idname = ADDON_PACKAGE

    backend_mode: EnumProperty(name="Backend", items=BACKEND_MODES, default="LOCAL")  # type: ignore[valid-type]
    remote_url: StringProperty(  # type: ignore[valid-type]
        name="URL", description="Base URL of the remote backend, e.g. http://gpu-box:8765", default=""
    )
    remote_token: StringProperty(  # type: ignore[valid-type]
        name="Token", description="The token the remote backend printed at start", subtype="PASSWORD"
    )
    python_path: StringProperty(  # type: ignore[valid-type]
        name="Python",
        description="Interpreter that runs the local backend; empty = the one 'Set up backend' makes",
        subtype="FILE_PATH",
    )
    venv_dir: _folder("Environment folder", "Where 'Set up backend' creates the backend's environment")  # type: ignore[valid-type]
    torch_variant: EnumProperty(name="Torch build", items=TORCH_VARIANTS, default="cpu")  # type: ignore[valid-type]
    torch_index: StringProperty(  # type: ignore[valid-type]
        name="Torch index",
        description="pip index for torch; empty = the PyTorch CPU index for CPU, PyPI for CUDA",
    )
    extra_pip_args: StringProperty(  # type: ignore[valid-type]
        name="Extra pip arguments",
        description="e.g. --proxy URL, or --no-index --find-links DIR for offline installs",
    )
    device: EnumProperty(name="Device", items=DEVICES, default="auto")  # type: ignore[valid-type]
    data_dir: _folder("Data folder", "Where the local backend keeps meshes, models and results")  # type: ignore[valid-type]
    start_timeout: IntProperty(  # type: ignore[valid-type]
        name="Start timeout", description="Seconds to wait for a local backend", default=60, min=5, max=600
    )

    def resolved_venv(self) -> Path:
        return Path(bpy.path.abspath(self.venv_dir)) if self.venv_dir else user_folder("venv")

    def resolved_python(self) -> Path:
        return (
            Path(bpy.path.abspath(self.python_path))
            if self.python_path
            else venv_python(self.resolved_venv())
        )

    def resolved_data_dir(self) -> Path:
        return Path(bpy.path.abspath(self.data_dir)) if self.data_dir else user_folder("data")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        col = layout.column()
        col.prop(self, "backend_mode", expand=True)
        if self.backend_mode == "REMOTE":
            col.prop(self, "remote_url")
            col.prop(self, "remote_token")
        else:
            col.prop(self, "python_path")
            col.prop(self, "data_dir")
            col.prop(self, "device")
            col.prop(self, "start_timeout")
        row = layout.row()
        row.operator("compact_sdf.backend_check", icon="CHECKMARK")
        status = state(context).backend_status
        if status:
            layout.label(text=status)
        if self.backend_mode == "REMOTE":
            return

        box = layout.box()
        box.label(text="Set up the local backend", icon="CONSOLE")
        box.prop(self, "torch_variant", expand=True)
        box.prop(self, "torch_index")
        box.prop(self, "extra_pip_args")
        box.prop(self, "venv_dir")
        python = self.resolved_python()
        box.label(text=f"Backend Python: {python}" + ("" if python.exists() else "  (not set up yet)"))
        box.label(text=f"Environment made with: {sys.executable}")
        job = backend_setup.current()
        row = box.row()
        running = job is not None and job.state == "running"
        row.enabled = not running
        row.operator("compact_sdf.setup_backend", icon="IMPORT")
        if running:
            box.operator("compact_sdf.setup_cancel", icon="CANCEL")
        if job is not None:
            icon = {"ok": "CHECKMARK", "failed": "ERROR", "cancelled": "CANCEL"}.get(job.state, "TIME")
            if job.message:
                for i, chunk in enumerate(_wrap(job.message, 90)):
                    box.label(text=chunk, icon=icon if i == 0 else "BLANK1")
            log = box.column(align=True)
            log.scale_y = 0.7
            for line in job.lines(SETUP_LOG_LINES):
                log.label(text=line[:160])


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width) or [""]


classes = (CompactSDFPreferences,)
