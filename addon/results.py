"""Job handlers: what a finished job turns into in Blender (links on objects, new placed objects, a
fidelity line). They run once a job succeeded, from the operator (background) or the jobs timer (UI),
and return the one-line summary the panel shows. Shared by every operator module.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import mesh_bridge
from .backend_state import refresh_models, select_model
from .constants import FIDELITY, LINK_SOURCES, MIX_SLOTS, NOTE
from .notes import Warn, blend_note, reconstruction_summary, row_summary, summary
from .runtime import state
from .scene import add_behind, add_object, add_row, download_meshes, link, target_collection


def link_encoded(job: dict[str, Any], names: dict[str, str]) -> str:
    """After training or fitting: write the model/code links onto the source objects (only now: no
    half-links). ``names`` maps shape name -> object name."""
    result = job.get("result") or {}
    model_id = job.get("model_id") or result.get("model_id")
    if not model_id:
        raise RuntimeError("the job returned no model id")
    linked = []
    for shape, obj_name in names.items():
        obj = bpy.data.objects.get(obj_name)
        if obj is None:  # deleted while training; the code still exists in the model
            continue
        link(obj, model_id, "source", shape)
        linked.append(obj_name)
    refresh_models(bpy.context)
    select_model(bpy.context, model_id)
    verb = "Added" if job.get("kind") == "fit" else "Encoded"
    return summary(f"{verb} {', '.join(linked)} into model {model_id[:8]}", result)


def place_reconstruction(job: dict[str, Any], source_name: str | None, shape: str = "") -> str:
    """The reconstruction on top of its source object, or where the code's shape lives when there is none."""
    (tris,) = download_meshes(job)[:1]
    src = bpy.data.objects.get(source_name) if source_name else None
    origin = src.matrix_world.translation.copy() if src else mesh_bridge.centre(tris)
    name = f"{source_name or shape} SDF"
    obj = add_object(name, tris, origin, target_collection(bpy.context))
    params = job.get("params") or {}
    link(obj, params.get("model_id", job.get("model_id", "")), "reconstruction", params.get("shape", ""))
    text = f"Reconstructed '{source_name or shape}' as '{obj.name}' ({tris.face_count} triangles)"
    return reconstruction_summary(text, job.get("result") or {})


def place_row(job: dict[str, Any], names: list[str], spacing: float) -> str:
    """The row in front of its sources (objects named ``names``, ends first and last), laid out by the
    shapes' sizes (see ``layout.row_centres``)."""
    meshes = download_meshes(job)
    labels = [f"{names[0]}-{names[-1]} {i:02d}" for i in range(len(meshes))]
    params = job.get("params") or {}
    for i, obj in enumerate(add_row(labels, meshes, names, spacing)):
        link(obj, params.get("model_id", ""), "interpolation")
        obj[LINK_SOURCES] = ",".join(params.get("shapes", []))
        obj["compact_sdf_t"] = i / max(len(meshes) - 1, 1)
    text = f"Interpolated {len(meshes)} shapes between {names[0]} and {names[-1]}"
    return row_summary(text, job.get("result") or {})


def place_live(job: dict[str, Any], names: list[str], spacing: float) -> str:
    """The blended shape behind its sources (the row goes in front), so it overlaps neither."""
    (tris,) = download_meshes(job)[:1]
    params = job.get("params") or {}
    obj = add_behind(f"Live {names[0]}-{names[-1]}", tris, names, spacing)
    link(obj, params.get("model_id", ""), "live")
    obj[LINK_SOURCES] = ",".join(params.get("shapes", []))
    obj["compact_sdf_resolution"] = int(params.get("resolution", 0))
    lost = "; ".join(next(iter(((job.get("result") or {}).get("lost") or {}).values()), []))
    obj[NOTE] = lost
    note = blend_note(obj.name, lost)
    # Set without triggering an update: the geometry already matches these weights.
    (row,) = params.get("weights") or [[0.5, 0.5]]
    if len(row) == 2:
        obj.compact_sdf["live_factor"] = 0.5
        text = f"Live interpolation object '{obj.name}': drag its Blend slider"
    else:
        obj.compact_sdf["live_mode"] = 1  # MIX
        obj.compact_sdf["mix_weights"] = [*row, *[0.0] * (MIX_SLOTS - len(row))][:MIX_SLOTS]
        text = f"Live blend object '{obj.name}': set the weight of each shape"
    return Warn(f"{text}; {note}") if note else text


def place_decoded(job: dict[str, Any], model_id: str, shape: str) -> str:
    """An object for an imported code: geometry where the code's shape lives, origin at its centre."""
    (tris,) = download_meshes(job)[:1]
    obj = add_object(shape, tris, mesh_bridge.centre(tris), target_collection(bpy.context))
    link(obj, model_id, "decoded", shape)
    return f"Decoded imported code '{shape}' as '{obj.name}'"


def fidelity_line(metrics: dict[str, Any]) -> str:
    """Chamfer distance and F-score at 0.01 of an evaluation, as the shape list shows them."""
    parts = []
    if metrics.get("chamfer") is not None:
        parts.append(f"CD {float(metrics['chamfer']):.2e}")
    if metrics.get("fscore@0.01") is not None:
        parts.append(f"F@0.01 {float(metrics['fscore@0.01']):.2f}")
    return ", ".join(parts) or "no metrics"


def record_fidelity(job: dict[str, Any], source_name: str | None, shape: str) -> str:
    """Keep an evaluation's figures on the shape's source object (saved with the .blend) and in the list."""
    line = fidelity_line((job.get("result") or {}).get("metrics") or {})
    src = bpy.data.objects.get(source_name) if source_name else None
    if src is not None:
        src[FIDELITY] = line
    item = state().shapes.get(shape)
    if item is not None:
        item.fidelity = line
    return f"Evaluated '{shape}': {line}"
