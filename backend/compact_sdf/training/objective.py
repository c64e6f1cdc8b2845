"""What one optimisation step minimises, shared by training (``train``) and code fitting (``fit``).

A step draws a :class:`Batch` (balanced samples per branch for a few shapes), computes the named
loss terms with :func:`losses` and minimises their weighted sum (:func:`total`):
``L_gen + L_ovf + w(step) * (reg_code * L_z + reg_feature * L_c)``. A new term is one more entry
in ``losses`` and one more weight in ``loss_weights``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from compact_sdf.config import Config, SamplingConfig, TrainConfig
from compact_sdf.data.sampler import BalancedSampler
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.errors import InputError
from compact_sdf.model import DualSDF

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Batch:
    """Shape indices ``(B,)``; per branch, points ``(B, S, 3)`` and their signed distances ``(B, S)``."""

    idx: torch.Tensor
    gen_x: torch.Tensor
    gen_y: torch.Tensor
    ovf_x: torch.Tensor
    ovf_y: torch.Tensor


class DeviceShape:
    """One shape's two sample sets as tensors on the training device.

    With ``sampling.ovf_off_lattice`` the overfitting set also holds the generalization points
    inside the band: the lattice alone never shows s_o a wall or gap thinner than one of its cells.
    """

    def __init__(self, s: ShapeSamples, device: torch.device, sampling: SamplingConfig) -> None:
        if len(s.ovf_sdf) == 0 or len(s.gen_sdf) == 0:
            raise InputError(f"shape '{s.name}' has no training samples")
        ovf_points, ovf_sdf = s.ovf_points, s.ovf_sdf
        if sampling.ovf_off_lattice:
            band = np.abs(s.gen_sdf) <= sampling.band_width
            ovf_points = np.concatenate([ovf_points, s.gen_points[band]])
            ovf_sdf = np.concatenate([ovf_sdf, s.gen_sdf[band]])
        self.ovf_x = torch.as_tensor(ovf_points, dtype=torch.float32).to(device)
        self.ovf_y = torch.as_tensor(ovf_sdf, dtype=torch.float32).to(device)
        self.gen_x = torch.as_tensor(s.gen_points, dtype=torch.float32).to(device)
        self.gen_y = torch.as_tensor(s.gen_sdf, dtype=torch.float32).to(device)
        self.ovf_pool = BalancedSampler(self.ovf_y, sampling.near_threshold)
        self.gen_pool = BalancedSampler(self.gen_y, sampling.near_threshold)

    def draw(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        io = self.ovf_pool.sample(n, gen)
        ig = self.gen_pool.sample(n, gen)
        return self.gen_x[ig], self.gen_y[ig], self.ovf_x[io], self.ovf_y[io]


def draw_batch(shapes: dict[int, DeviceShape], n: int, gen: torch.Generator, device: torch.device) -> Batch:
    """``n`` balanced samples per branch for each shape, keyed by its index in the model's codes."""
    draws = [shape.draw(n, gen) for shape in shapes.values()]
    xg, yg, xo, yo = (torch.stack(parts) for parts in zip(*draws, strict=True))
    return Batch(torch.tensor(list(shapes), device=device), xg, yg, xo, yo)


def criterion(kind: str) -> Criterion:
    """The per-point loss named by ``train.loss``."""
    if kind == "mse":
        return lambda p, y: (p - y).square().mean()
    if kind == "l1":
        return lambda p, y: (p - y).abs().mean()
    raise ValueError(f"train.loss must be 'mse' or 'l1', got '{kind}'")


def _clamped(pred: torch.Tensor, target: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Both clamped to [-delta, delta] when ``delta > 0``: errors beyond it cost nothing.

    Except for a shape whose every prediction of a target inside the clamp lies past it (rows of
    ``pred``): the clamp gives no gradient there, so an untrained s_o (a sphere) further than
    delta from all of a shape's band never learned (a lone table in `preview`: loss flat at
    0.0102). Those predictions stay unclamped until some come inside. Wider rules (never clamp the
    prediction of a target inside; no clamp in the first steps) gave every shape of twelve a
    higher CD (docs/benchmarks/fidelity.md): s_o does best ignoring what it predicts as far.
    """
    if delta <= 0:
        return pred, target
    inside = target.abs() < delta
    lost = (inside & (pred.abs() <= delta)).sum(-1, keepdim=True) == 0
    keep = inside & lost
    return torch.where(keep, pred, pred.clamp(-delta, delta)), target.clamp(-delta, delta)


def losses(
    model: DualSDF,
    batch: Batch,
    cfg: Config,
    *,
    net: nn.Module | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> dict[str, torch.Tensor]:
    """The named loss terms of one step; ``net`` is the (DDP-wrapped) forward, default ``model``."""
    tc = cfg.train
    with autocast if autocast is not None else contextlib.nullcontext():
        s_gen, s_ovf, feats = (net or model)(batch.idx, batch.gen_x, batch.ovf_x)
    crit = criterion(tc.loss)
    return {
        "loss_gen": crit(s_gen.float(), batch.gen_y),
        "loss_ovf": crit(*_clamped(s_ovf.float(), batch.ovf_y, tc.ovf_clamp * cfg.sampling.band_width)),
        "loss_z": model.codes.weight[batch.idx].norm(dim=-1).mean(),
        "loss_c": feats.float().norm(dim=-1).mean(),
    }


def loss_weights(cfg: TrainConfig, step: int) -> dict[str, float]:
    """Weight of each term at ``step``: the regularisers ramp up linearly over ``reg_warmup`` steps."""
    w = 1.0 if cfg.reg_warmup <= 0 else min(1.0, (step + 1) / cfg.reg_warmup)
    return {
        "loss_gen": 1.0,
        "loss_ovf": 1.0,
        "loss_z": w * cfg.reg_code,
        "loss_c": w * cfg.reg_feature,
    }


def total(terms: dict[str, torch.Tensor], cfg: TrainConfig, step: int) -> torch.Tensor:
    """The weighted sum that is minimised."""
    weights = loss_weights(cfg, step)
    return sum(weights[k] * v for k, v in terms.items())  # type: ignore[return-value]
