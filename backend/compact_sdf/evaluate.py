"""Reconstruct a trained shape and score it against its ground truth; the fusion ablation.

The ablation runs every configuration on the same model and lattice, so differences come from
the branch choice alone: ``generalization`` (s_g everywhere), ``overfitting`` (s_o everywhere, the
authors' release at inference), ``paper_n3`` (the paper's fusion with a band of 3 voxel
layers) and ``fused`` (the default distance fusion, ``extract`` module docstring).

Besides the sample metrics each entry has the mesh's own figures in normalised units (area,
components, genus, watertight and manifold), so thin parts and holes can be checked against
the ground truth's (``surface_figures.shape_stats`` of the GT mesh).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import trimesh

from compact_sdf.config import ExtractConfig
from compact_sdf.extract.fusion import extract_shape
from compact_sdf.extract.mesh import MeshArrays
from compact_sdf.metrics import evaluate_meshes, normalized
from compact_sdf.progress import Progress
from compact_sdf.surface_figures import shape_stats

if TYPE_CHECKING:
    from compact_sdf.checkpoint import LoadedModel

ABLATION: dict[str, tuple[str, dict[str, Any]]] = {
    "generalization": ("generalization", {}),
    "overfitting": ("overfitting", {}),
    "paper_n3": ("fused", {"fusion": "paper", "band": 3}),
    "fused": ("fused", {"fusion": "distance"}),
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
    """Metrics (normalised with the model's stored placement of the shape) and the reconstruction.
    ``progress`` sees the extraction in [0, 0.5], then the metrics' stages."""
    mesh = extract_shape(loaded, name, cfg, mode, progress=_within(progress, "extract", 0.0, 0.5))
    norm = loaded.shapes[loaded.shape_index(name)].normalization
    out = evaluate_meshes(
        mesh.to_trimesh(),
        gt,
        normalization=norm,
        samples=samples,
        release_samples=min(samples, 100_000),
        seed=seed,
        progress=_within(progress, "metrics", 0.5, 1.0),
    )
    out.update(shape_stats(normalized(mesh.to_trimesh(), norm)))
    out.update({"shape": name, "mode": mode, "resolution": cfg.resolution, "band": cfg.band})
    out.update({"fusion": cfg.fusion, "width": cfg.width})
    return out, mesh


def _within(progress: Progress | None, stage: str, lo: float, hi: float) -> Progress | None:
    """``progress`` for one stage that takes [lo, hi] of the whole."""
    if progress is None:
        return None
    return lambda text, fraction: progress(f"{stage}: {text}" if text else stage, lo + (hi - lo) * fraction)


def ablate(
    loaded: LoadedModel,
    name: str,
    gt: trimesh.Trimesh,
    cfg: ExtractConfig,
    *,
    samples: int = 1_000_000,
    progress: Progress | None = None,
    sparse_overfitting: bool = False,
) -> dict[str, dict[str, Any]]:
    """One metrics entry per configuration of ``ABLATION`` (s_o alone through the sparse search
    when ``sparse_overfitting``: a dense s_o lattice at N = 256 is too slow for a CPU bench)."""
    results = {}
    for i, (key, (mode, settings)) in enumerate(ABLATION.items()):
        if progress is not None:
            progress(key, i / len(ABLATION))
        if mode == "overfitting" and sparse_overfitting:
            mode = "overfitting-sparse"
        run_cfg = replace(cfg, **settings)
        results[key] = evaluate_shape(loaded, name, gt, run_cfg, mode, samples=samples)[0]
    if progress is not None:
        progress("done", 1.0)
    return results
