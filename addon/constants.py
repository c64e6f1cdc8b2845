"""Names and defaults the add-on shares between its modules (no bpy: tests read it without Blender).

The defaults are the backend's request defaults (``compact_sdf.tasks``), written again here because the
add-on never imports the backend; ``tests/test_defaults.py`` fails when the two disagree.
"""

from __future__ import annotations

# Links between objects and the backend: plain ID custom properties, readable without the add-on.
LINK_MODEL = "compact_sdf_model"  # the backend model id an encoded object belongs to
LINK_CODE = "compact_sdf_code"  # the shape (latent code) name inside that model
LINK_ROLE = "compact_sdf_role"  # "source", "reconstruction", "interpolation", "live", "decoded"
LINK_SOURCES = "compact_sdf_sources"  # comma-separated shape names an interpolation/live object blends
NOTE = "compact_sdf_note"  # on a blended object: what is wrong with its mesh in words (empty: nothing)
FIDELITY = "compact_sdf_fidelity"  # on an object holding a code: its last evaluation ("CD .., F@0.01 ..")

COLLECTION = "Compact SDF"  # where results go
ROW_COLLECTION = "Interpolation"  # child collection of interpolation rows

PRESETS = (
    ("tiny", "Tiny", "Seconds on a CPU; coarse (tests, smoke runs)"),
    ("preview", "Preview", "A few shapes in a few minutes on a CPU"),
    ("detail", "Detail", "Thin parts and holes: Preview with wider networks, about 2.5x its time"),
    ("balanced", "Balanced", "Tens of minutes on a CPU, or a quick GPU run"),
    ("paper", "Paper", "The paper's model; needs a GPU with several GB"),
)

# The backend's request defaults, per operation (field names as in the request dataclasses). One scene
# Resolution and Band serve reconstruct, interpolate and evaluate alike, so those agree across them.
TRAIN_DEFAULTS = {
    "preset": "preview",
    "steps": None,  # the preset's
    "allow_open": False,
    "collection": True,
}
EXTRACT_DEFAULTS = {"resolution": 128, "band": 3, "mode": "fused"}
EXTRACT_HANDLES = "keep"  # the backend's extract.handles default (close: the opt-in pinhole rule)
INTERPOLATE_DEFAULTS = {"steps": 5, "mode": "linear", "resolution": 128, "band": 3, "join_gap": 0.15}
EVALUATE_DEFAULTS = {"resolution": 128, "mode": "fused"}
FIT_DEFAULTS = {"iterations": 800, "mode": "auto"}  # "Add Selected to Model": code, fine-tune where needed

PREVIEW_RESOLUTION = 48  # live interpolation while dragging (add-on only)
ROW_OFFSET = 3.0  # clearance between the sources and an interpolation row (add-on only)
MIX_SLOTS = 8  # shapes a live object can blend with one weight each (add-on only)
REFINE_DELAY_S = 0.4  # a live object's weights rest this long, then it is meshed at full resolution
