"""The "Set up backend" job of this Blender session (pip runs in a worker thread of ``setup_env``).

Its own module so that the preferences (which draw its log) and the operators (which start and cancel
it) both read it without importing each other.
"""

from __future__ import annotations

import bpy

from .runtime import tag_redraw
from .setup_env import SetupJob, SetupPlan

POLL_S = 0.5

_setup: SetupJob | None = None


def current() -> SetupJob | None:
    return _setup


def running() -> bool:
    return _setup is not None and _setup.state == "running"


def begin(plan: SetupPlan) -> SetupJob:
    """Start the set-up and redraw the preferences while it runs, so its log scrolls."""
    global _setup
    _setup = SetupJob(plan)
    _setup.start()
    if not bpy.app.timers.is_registered(_watch):
        bpy.app.timers.register(_watch, first_interval=POLL_S)
    return _setup


def cancel() -> bool:
    if not running():
        return False
    assert _setup is not None
    _setup.cancel()
    return True


def shutdown() -> None:
    """Never leave a pip process behind (unregister)."""
    global _setup
    if _setup is not None and cancel():
        _setup.wait(10)
    _setup = None
    if bpy.app.timers.is_registered(_watch):
        bpy.app.timers.unregister(_watch)


def _watch() -> float | None:
    tag_redraw("PREFERENCES")
    if running():
        return POLL_S
    if _setup is not None:
        print(f"Compact SDF: {_setup.message}")
    return None
