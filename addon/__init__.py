"""The Compact SDF add-on: one class list, one register()/unregister() (the layout of Blender's bundled
add-ons: preferences, properties, operators and UI in their own modules; shared state and helpers in
modules no operator module owns).
"""

from __future__ import annotations

import bpy

from . import (
    backend_setup,
    backend_state,
    job_ops,
    jobs,
    live,
    operators_backend,
    operators_codes,
    operators_encode,
    operators_interpolate,
    operators_shapes,
    preferences,
    properties,
    ui,
)

classes = (
    *properties.classes,
    *preferences.classes,
    *operators_backend.classes,
    *job_ops.classes,
    *operators_encode.classes,
    *operators_interpolate.classes,
    *operators_codes.classes,
    *operators_shapes.classes,
    *ui.classes,
)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register_pointers()
    bpy.types.STATUSBAR_HT_header.append(jobs.draw_status)


def unregister() -> None:
    """Stop what this session started (set-up, backend, timers) and remove every class and property."""
    backend_setup.shutdown()
    backend_state.shutdown()
    jobs.forget_all()
    live.reset()
    bpy.types.STATUSBAR_HT_header.remove(jobs.draw_status)
    properties.unregister_pointers()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
