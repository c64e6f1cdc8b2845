"""Decode shapes between trained ones by blending their latent codes (method.md section 5).

The grid and both MLPs stay fixed; only ``z`` moves. ``linear`` blends codes directly.
``slerp`` blends directions on the sphere (the weighted spherical mean, which for two codes is
exactly spherical linear interpolation) and code norms linearly, so a path between two codes of
similar norm does not shrink towards the origin where no training shape lives.

An interpolated shape also needs a place in the world: its normalisation is blended with the same
weights, centres linearly and scales geometrically, so step 0 and the last step sit exactly where
the two source shapes are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from compact_sdf import bounds
from compact_sdf.config import ExtractConfig
from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import InputError
from compact_sdf.extract.blend import extract_blend
from compact_sdf.extract.connect import JOIN_GAP
from compact_sdf.extract.fusion import MODES, extract_shape
from compact_sdf.extract.mesh import MeshArrays
from compact_sdf.extract.mesh_quality import keep_large_components
from compact_sdf.progress import Progress

if TYPE_CHECKING:
    from compact_sdf.checkpoint import LoadedModel

INTERPOLATION_MODES = ("linear", "slerp")
# how an in-between is meshed: "blend" (default, extract_blend), any extract mode, or "same" as the ends
BETWEEN_MODES = ("blend", *MODES, "same")


def path_weights(shapes: int, steps: int) -> np.ndarray:
    """(steps, shapes) weights walking through the shapes in order, evenly spaced, ends included."""
    if shapes < 2:
        raise InputError("interpolation needs at least two shapes")
    if steps < 2:
        raise InputError(f"interpolation needs at least 2 steps, got {steps}")
    pos = np.linspace(0.0, shapes - 1, steps)
    seg = np.minimum(pos.astype(int), shapes - 2)
    t = pos - seg
    w = np.zeros((steps, shapes))
    w[np.arange(steps), seg] = 1.0 - t
    w[np.arange(steps), seg + 1] += t
    return w


def check_weights(weights: np.ndarray | Sequence[Sequence[float]], shapes: int) -> np.ndarray:
    """Validate explicit weights: (S, K), non-negative, each row summing to 1."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != shapes or len(w) == 0:
        raise InputError(f"weights must be a list of steps with {shapes} values each (one per shape)")
    if not np.isfinite(w).all() or (w < 0).any() or not np.allclose(w.sum(axis=1), 1.0, atol=1e-6):
        raise InputError("the weights of each step must be non-negative and sum to 1")
    return w


def _spherical_mean(directions: torch.Tensor, weights: torch.Tensor, iterations: int = 50) -> torch.Tensor:
    """Weighted Karcher mean of unit vectors (K, d) on the sphere (Buss and Fillmore)."""
    mean = weights @ directions
    if mean.norm() < 1e-12:
        raise InputError("slerp is undefined for opposite codes with equal weights; use linear")
    mean = mean / mean.norm()
    for _ in range(iterations):
        cos = (directions @ mean).clamp(-1.0, 1.0)
        angle = torch.acos(cos)
        tangent = directions - cos[:, None] * mean[None, :]
        norm = tangent.norm(dim=1).clamp_min(1e-12)
        log = tangent * (angle / norm)[:, None]  # log map of each direction at the mean
        step = weights @ log
        length = step.norm()
        if length < 1e-10:
            break
        mean = torch.cos(length) * mean + torch.sin(length) * step / length
        mean = mean / mean.norm()
    return mean


def interpolate_codes(
    codes: torch.Tensor, weights_or_steps: np.ndarray | Sequence[Sequence[float]] | int, mode: str = "linear"
) -> torch.Tensor:
    """Blend K codes (K, d) into S codes (S, d) by explicit (S, K) weights or by a step count."""
    if mode not in INTERPOLATION_MODES:
        raise InputError(
            f"unknown interpolation mode '{mode}'; choose one of: {', '.join(INTERPOLATION_MODES)}"
        )
    k = codes.shape[0]
    if isinstance(weights_or_steps, int):
        w_np = path_weights(k, weights_or_steps)
    else:
        w_np = check_weights(weights_or_steps, k)
    z = codes.detach().to(torch.float64)
    w = torch.from_numpy(w_np).to(z)
    if mode == "linear":
        return (w @ z).to(codes.dtype)
    norms = z.norm(dim=1)
    if (norms < 1e-12).any():
        raise InputError("slerp needs non-zero codes; use linear")
    directions = z / norms[:, None]
    rows = []
    for row in w:
        live = row > 0
        if live.sum() == 1:  # an endpoint: return the code itself, exactly
            rows.append(z[live][0])
            continue
        rows.append(_spherical_mean(directions[live], row[live]) * (row @ norms))
    return torch.stack(rows).to(codes.dtype)


def interpolate_normalizations(norms: Sequence[Normalization], weights: np.ndarray) -> list[Normalization]:
    """Centres blended linearly, scales geometrically, one per row of ``weights``."""
    centers = np.array([n.center for n in norms])
    log_scales = np.log([n.scale for n in norms])
    out = []
    for row in weights:
        c = row @ centers
        out.append(
            Normalization(
                center=(float(c[0]), float(c[1]), float(c[2])), scale=float(np.exp(row @ log_scales))
            )
        )
    return out


def drop_small_parts(mesh: MeshArrays, fraction: float) -> MeshArrays:
    """The mesh without components smaller than ``fraction`` of the largest (by area)."""
    if fraction <= 0:
        return mesh
    kept, faces = keep_large_components(mesh.vertices, mesh.faces, fraction)
    return MeshArrays(mesh.vertices[kept], faces, mesh.normals[kept])


def interpolate_shapes(
    loaded: LoadedModel,
    names: Sequence[str],
    steps: int | np.ndarray | Sequence[Sequence[float]],
    mode: str = "linear",
    cfg: ExtractConfig | None = None,
    *,
    extract_mode: str = "fused",
    between_mode: str = "blend",
    keep_fraction: float = 0.0,
    join_gap: float = JOIN_GAP,
    progress: Progress | None = None,
) -> list[MeshArrays]:
    """One mesh per step between the named shapes, each in its blended own coordinates.

    A step that *is* one of the shapes (a weight of 1) is meshed with ``extract_mode``; a step
    between shapes with ``between_mode`` (``"same"`` = ``extract_mode``). The default, ``blend``,
    is ``extract.extract_blend``: s_g at the blended code plus each end's overfitting residual
    faded by its weight, so the mesh changes continuously from a fused end into the in-betweens
    (s_o itself is never evaluated at a blended code: it was trained only at the shapes' own
    codes, and there its band holds floating specks; docs/benchmarks/interpolation.md).
    ``generalization`` meshes in-betweens with s_g alone. A fading feature pinches off before it
    is gone, so parts that the field joins below ``join_gap`` are joined by a thin tube
    (``connect.join_parts``; 0 turns it off). ``keep_fraction > 0`` is an opt-in clean-up:
    components with less than that fraction of the largest one's area are dropped (off by default).
    """
    try:
        bounds.check("join_gap", join_gap, float, bounds.request_bound("interpolate", "join_gap"))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if between_mode not in BETWEEN_MODES:
        raise InputError(f"unknown between_mode '{between_mode}'; choose one of: {', '.join(BETWEEN_MODES)}")
    cfg = cfg or loaded.config.extract
    names = list(names)
    indices = [loaded.shape_index(n) for n in names]
    weights = path_weights(len(names), steps) if isinstance(steps, int) else check_weights(steps, len(names))
    codes = torch.stack([loaded.code(n) for n in names])
    blended = interpolate_codes(codes, weights, mode)
    placements = interpolate_normalizations([loaded.shapes[i].normalization for i in indices], weights)
    meshes = []
    for i, (z, norm, row) in enumerate(zip(blended, placements, weights, strict=True)):
        if progress is not None:
            progress(f"step {i + 1}/{len(blended)}", i / len(blended))
        end = row.max() >= 1.0 - 1e-9
        how = extract_mode if end or between_mode == "same" else between_mode
        if how == "blend":
            mesh = extract_blend(loaded, names, z, row, cfg, norm, join_gap=join_gap)
        else:
            gap = join_gap if how == "generalization" and not end else 0.0
            # an end is that shape's own reconstruction (with the record of where its s_o was trained)
            source = names[int(row.argmax())] if end else z
            mesh = extract_shape(loaded, source, cfg, how, normalization=norm, join_gap=gap)
        meshes.append(drop_small_parts(mesh, keep_fraction))
    if progress is not None:
        progress("done", 1.0)
    return meshes
