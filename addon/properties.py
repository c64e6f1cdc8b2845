"""Properties: per-scene settings (saved in the .blend), per-object live slider, runtime state (not saved).

Links between objects and the backend are plain ID custom properties (see ``constants.LINK_*``), so a
saved .blend keeps them readable even where the add-on is not installed. Defaults come from
``constants``, which mirrors the backend's request defaults.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)
from bpy.types import PropertyGroup

from . import backend_state, live
from .constants import (
    EXTRACT_DEFAULTS,
    EXTRACT_HANDLES,
    FIT_DEFAULTS,
    INTERPOLATE_DEFAULTS,
    MIX_SLOTS,
    PRESETS,
    PREVIEW_RESOLUTION,
    ROW_OFFSET,
    TRAIN_DEFAULTS,
)

LIVE_MODES = [
    ("PATH", "Path", "One slider walks from the first source to the last, through the others in order"),
    ("MIX", "Mix", "One weight per source shape"),
]
FIT_MODES = [
    ("auto", "Auto", "Fit the code; where it does not hold the shape, fine-tune the whole model with it"),
    ("code", "Code Only", "Fit the code with the decoder frozen: fast; the other shapes stay as they are"),
    ("full", "Full", "Fine-tune the whole model with the new shape (its detail; the others keep training)"),
]
INTERP_MODES = [
    ("linear", "Linear", "Straight line between codes"),
    ("slerp", "Spherical", "Great-circle path"),
]


def _ranged_int(name: str, default: int, bounds: tuple[int, int], description: str) -> Any:
    """An integer setting with bounds (the scene table below has several; one call each keeps it short)."""
    return IntProperty(name=name, description=description, default=default, min=bounds[0], max=bounds[1])


def _live_factor_changed(self: CompactSDFObjectSettings, context: bpy.types.Context) -> None:
    live.report(live.request_update(self.id_data))


class CompactSDFObjectSettings(PropertyGroup):
    live_mode: EnumProperty(  # type: ignore[valid-type]
        name="Blend by",
        items=LIVE_MODES,
        default="PATH",
        update=_live_factor_changed,
    )
    live_factor: FloatProperty(  # type: ignore[valid-type]
        name="Blend",
        description="From the first (0) to the last (1) source; meshes at preview resolution while it "
        "moves, at full resolution once it rests",
        min=0.0,
        max=1.0,
        default=0.5,
        subtype="FACTOR",
        update=_live_factor_changed,
    )
    mix_weights: FloatVectorProperty(  # type: ignore[valid-type]
        name="Weights",
        description="How much of each source shape (scaled to sum to 1)",
        size=MIX_SLOTS,
        min=0.0,
        max=1.0,
        default=(0.5,) * MIX_SLOTS,
        subtype="NONE",
        update=_live_factor_changed,
    )


class CompactSDFSceneSettings(PropertyGroup):
    preset: EnumProperty(name="Preset", items=PRESETS, default=TRAIN_DEFAULTS["preset"])  # type: ignore[valid-type]
    steps: _ranged_int(  # type: ignore[valid-type]
        "Steps", TRAIN_DEFAULTS["steps"] or 0, (0, 1_000_000), "Training steps; 0 keeps the preset's value"
    )
    model_name: StringProperty(  # type: ignore[valid-type]
        name="Model name", description="Name of the model 'Encode selected' creates; empty = from the objects"
    )
    allow_open: BoolProperty(  # type: ignore[valid-type]
        name="Allow open meshes",
        description="Encode meshes with holes (inside/outside from the generalised winding number)",
        default=TRAIN_DEFAULTS["allow_open"],
    )
    collection: BoolProperty(  # type: ignore[valid-type]
        name="Scale to Object Count",
        description="Encoding more objects than the preset's batch: more steps and a wider feature grid, "
        "so each shape keeps its detail (docs/benchmarks/collection.md)",
        default=TRAIN_DEFAULTS["collection"],
    )
    fit_mode: EnumProperty(name="Mode", items=FIT_MODES, default=FIT_DEFAULTS["mode"])  # type: ignore[valid-type]
    fit_iterations: _ranged_int(  # type: ignore[valid-type]
        "Fit iterations",
        FIT_DEFAULTS["iterations"],
        (1, 100_000),
        "At most this many iterations of each object's code fit (decoder frozen) in 'Add Selected to "
        "Model'; it ends sooner once it stops improving",
    )
    resolution: _ranged_int(  # type: ignore[valid-type]
        "Resolution", EXTRACT_DEFAULTS["resolution"], (8, 1024), "Marching-cubes cells per side"
    )
    band: _ranged_int(  # type: ignore[valid-type]
        "Band", EXTRACT_DEFAULTS["band"], (1, 16), "Voxel layers around the coarse surface decoded in detail"
    )
    close_pinholes: BoolProperty(  # type: ignore[valid-type]
        name="Close Pinholes",
        description="Close the holes and bridges shallower than a quarter of a training cell where that "
        "lowers the genus (thin CAD walls that come back perforated); it can also close true small holes",
        default=EXTRACT_HANDLES == "close",
    )
    preview_resolution: _ranged_int(  # type: ignore[valid-type]
        "Preview resolution", PREVIEW_RESOLUTION, (8, 256), "Live interpolation resolution while dragging"
    )
    interp_steps: _ranged_int(  # type: ignore[valid-type]
        "Steps", INTERPOLATE_DEFAULTS["steps"], (2, 64), "Objects in an interpolation row (ends included)"
    )
    interp_mode: EnumProperty(name="Mode", items=INTERP_MODES, default=INTERPOLATE_DEFAULTS["mode"])  # type: ignore[valid-type]
    interp_join_gap: FloatProperty(  # type: ignore[valid-type]
        name="Join gap",
        description=(
            "In-between parts the model brings this close (normalised units, the shape spans 2) are "
            "joined into one body by a thin tube; 0 keeps them apart"
        ),
        default=INTERPOLATE_DEFAULTS["join_gap"],
        min=0.0,
        max=0.5,
    )
    spacing: FloatProperty(  # type: ignore[valid-type]
        name="Row offset",
        description="Clearance between the sources and the row (in front) or the live blend (behind)",
        default=ROW_OFFSET,
        min=0.0,
    )


class CompactSDFModelItem(PropertyGroup):
    model_id: StringProperty()  # type: ignore[valid-type]
    status: StringProperty()  # type: ignore[valid-type]
    preset: StringProperty()  # type: ignore[valid-type]
    shapes: StringProperty()  # type: ignore[valid-type]


class CompactSDFShapeItem(PropertyGroup):
    """One shape (latent code) of the active model, as the shape list shows it (``name`` is the code)."""

    source: StringProperty(description="The object in this scene that holds this code")  # type: ignore[valid-type]
    fidelity: StringProperty(description="The last evaluation against the source mesh")  # type: ignore[valid-type]
    chosen: BoolProperty(  # type: ignore[valid-type]
        name="Use", description="Include this shape in Reconstruct / Interpolate / Evaluate Shapes"
    )


def _model_changed(self: CompactSDFRuntime, context: bpy.types.Context) -> None:
    backend_state.fill_shapes(context)


class CompactSDFRuntime(PropertyGroup):
    """What the panel shows about the backend and the running job; refreshed by operators and the timer."""

    backend_status: StringProperty()  # type: ignore[valid-type]
    backend_ok: BoolProperty()  # type: ignore[valid-type]
    job_id: StringProperty()  # type: ignore[valid-type]
    job_label: StringProperty()  # type: ignore[valid-type]
    job_stage: StringProperty()  # type: ignore[valid-type]
    job_message: StringProperty()  # type: ignore[valid-type]
    job_level: StringProperty(default="INFO")  # type: ignore[valid-type]  # of job_message: INFO, WARNING, ERROR
    job_progress: FloatProperty(min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]
    models: CollectionProperty(type=CompactSDFModelItem)  # type: ignore[valid-type]
    model_index: IntProperty(update=_model_changed)  # type: ignore[valid-type]
    shapes: CollectionProperty(type=CompactSDFShapeItem)  # type: ignore[valid-type]
    shape_index: IntProperty()  # type: ignore[valid-type]

    def active_model(self) -> CompactSDFModelItem | None:
        if 0 <= self.model_index < len(self.models):
            return self.models[self.model_index]
        return None


classes = (
    CompactSDFObjectSettings,
    CompactSDFSceneSettings,
    CompactSDFModelItem,
    CompactSDFShapeItem,
    CompactSDFRuntime,
)


def register_pointers() -> None:
    bpy.types.Scene.compact_sdf = PointerProperty(type=CompactSDFSceneSettings)
    bpy.types.Object.compact_sdf = PointerProperty(type=CompactSDFObjectSettings)
    bpy.types.WindowManager.compact_sdf = PointerProperty(type=CompactSDFRuntime)


def unregister_pointers() -> None:
    del bpy.types.WindowManager.compact_sdf
    del bpy.types.Object.compact_sdf
    del bpy.types.Scene.compact_sdf
