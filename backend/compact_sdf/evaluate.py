"""Reconstruct a trained shape and score it against its ground truth; the fusion ablation.

The ablation runs every configuration on the same model and lattice, so differences come from
the branch choice alone: ``generalization`` (s_g everywhere), ``overfitting`` (s_o everywhere, the
authors' release at inference) and ``fused_n1/3/6`` (the paper's fusion with a band of 1, 3, 6
voxel layers).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import trimesh

from compact_sdf.config import ExtractConfig
from compact_sdf.extract import extract_shape
from compact_sdf.mesh import MeshArrays
from compact_sdf.metrics import evaluate_meshes
from compact_sdf.progress import Progress

if TYPE_CHECKING:
    from compact_sdf.checkpoint import LoadedModel

ABLATION: dict[str, tuple[str, int | None]] = {
    "generalization": ("generalization", None),
    "overfitting": ("overfitting", None),
    "fused_n1": ("fused", 1),
    "fused_n3": ("fused", 3),
    "fused_n6": ("fused", 6),
}


def evaluate_shape(
    loaded: LoadedModel,
    name: str,
    gt: trimesh.Trimesh,
    cfg: ExtractConfig,
    mode: str = "fused",
    *,
    samples: int = 1_000_000,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], MeshArrays]:
    """Metrics (normalised with the model's stored placement of the shape) and the reconstruction."""
    mesh = extract_shape(loaded, name, cfg, mode, progress=progress)
    norm = loaded.shapes[loaded.shape_index(name)].normalization
    out = evaluate_meshes(
        mesh.to_trimesh(),
        gt,
        normalization=norm,
        samples=samples,
        release_samples=min(samples, 100_000),
        seed=seed,
    )
    out.update({"shape": name, "mode": mode, "resolution": cfg.resolution, "band": cfg.band})
    return out, mesh


def ablate(
    loaded: LoadedModel,
    name: str,
    gt: trimesh.Trimesh,
    cfg: ExtractConfig,
    *,
    samples: int = 1_000_000,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """One metrics entry per configuration of ``ABLATION``."""
    results = {}
    for i, (key, (mode, band)) in enumerate(ABLATION.items()):
        if progress is not None:
            progress(key, i / len(ABLATION))
        run_cfg = cfg if band is None else replace(cfg, band=band)
        results[key] = evaluate_shape(loaded, name, gt, run_cfg, mode, samples=samples)[0]
    if progress is not None:
        progress("done", 1.0)
    return results
