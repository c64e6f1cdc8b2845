"""The session's panel state (``WindowManager.compact_sdf``, not saved) and redraw requests."""

from __future__ import annotations

from typing import Any

import bpy


def state(context: bpy.types.Context | None = None) -> Any:
    """The runtime property group the panel draws from (backend status, models, job progress)."""
    return (context or bpy.context).window_manager.compact_sdf


def tag_redraw(*area_types: str) -> None:
    """Ask Blender to redraw the given kinds of area (timers change state the panel shows)."""
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in area_types:
                area.tag_redraw()
