"""Analytic training sets (sphere, box) built directly as ShapeSamples: model/train tests need no meshes."""

from __future__ import annotations

import numpy as np
from compact_sdf.config import Config, get_preset
from compact_sdf.data.normalize import Normalization
from compact_sdf.data.samples import ShapeSamples


def sphere_sdf(p: np.ndarray, r: float = 0.6) -> np.ndarray:
    return np.linalg.norm(p, axis=1) - r


def box_sdf(p: np.ndarray, h: tuple[float, float, float] = (0.7, 0.45, 0.3)) -> np.ndarray:
    q = np.abs(p) - np.asarray(h)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return outside + inside


def analytic_samples(name: str, sdf, n: int = 6000, seed: int = 0) -> ShapeSamples:
    """Half uniform in [-1,1]^3, half near the zero set (uniform points pulled onto it plus noise)."""
    rng = np.random.default_rng(seed)
    uni = rng.uniform(-1, 1, (n, 3))
    # near-surface points: project uniform points along the numerical gradient, then jitter
    p = rng.uniform(-1, 1, (n, 3))
    for _ in range(6):
        eps = 1e-4
        grad = np.stack([(sdf(p + eps * e) - sdf(p - eps * e)) / (2 * eps) for e in np.eye(3)], axis=1)
        grad /= np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-9)
        p = p - sdf(p)[:, None] * grad
    near = p + rng.normal(0, 0.03, p.shape)
    pts = np.concatenate([uni, near]).astype(np.float32)
    vals = sdf(pts.astype(np.float64)).astype(np.float32)
    return ShapeSamples(
        name=name,
        mesh_hash=f"analytic-{name}",
        normalization=Normalization(center=(0.0, 0.0, 0.0), scale=1.0),
        ovf_points=pts,
        ovf_sdf=vals,
        gen_points=pts[::-1].copy(),
        gen_sdf=vals[::-1].copy(),
    )


def sphere_and_box() -> list[ShapeSamples]:
    return [analytic_samples("sphere", sphere_sdf, seed=1), analytic_samples("box", box_sdf, seed=2)]


def tiny_config(**train: object) -> Config:
    """The tiny preset, CPU, small batches; ``train`` overrides TrainConfig fields."""
    base = {"device": "cpu", "samples_per_shape": 512, "shapes_per_batch": 2, "log_every": 5}
    base.update(train)
    return get_preset("tiny").override({f"train.{k}": v for k, v in base.items()})
