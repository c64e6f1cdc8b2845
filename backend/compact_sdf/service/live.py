"""One mesh of a trained model in one request: what the resident process answers a live request with.

A single shape is its fused reconstruction (``tasks.extract``); several shapes with weights are
their blend (``tasks.interpolate`` with one row of weights: ``extract.extract_blend``). The same
functions as the CLI and the queued jobs; only the answer differs (bytes instead of a result file).
"""

from __future__ import annotations

import time
from typing import Any

from compact_sdf import model_cache, tasks
from compact_sdf.extract.mesh import mesh_bytes
from compact_sdf.service.paths import DataDir


def mesh_for(data: DataDir, device: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params``: model_id, shapes, weights (one per shape, or None for one shape), resolution, mode,
    join_gap, format. Returns the body, its counts, what is wrong with the mesh in words (a
    reconstruction against its source, a blend against its ends: ``tasks.Reconstruction``), the
    seconds spent and whether the model was read."""
    start = time.perf_counter()
    cache = model_cache.active()
    loads = cache.loads if cache is not None else 0
    model_dir = str(data.model_dir(params["model_id"]))
    shapes = tuple(params["shapes"])
    if len(shapes) == 1:
        req = tasks.ExtractRequest(model_dir, shapes[0], resolution=params["resolution"], device=device)
        out = tasks.extract(req)
    else:
        (out,) = tasks.interpolate(
            tasks.InterpolateRequest(
                model_dir,
                shapes,
                weights=(tuple(params["weights"]),),
                mode=params["mode"],
                join_gap=params["join_gap"],
                resolution=params["resolution"],
                device=device,
            )
        )
    mesh = out.mesh
    return {
        "body": mesh_bytes(mesh, params["format"]),
        "vertices": len(mesh.vertices),
        "faces": len(mesh.faces),
        "lost": list(out.lost),
        "seconds": time.perf_counter() - start,
        "loaded": cache is not None and cache.loads > loads,
    }
