"""Baselines for collections at the same parameter budget: codes-only and one model per shape.

- **Codes-only** (DeepSDF-style auto-decoder): the generalization branch alone, one code per shape
  and one MLP, with the MLP widened until its parameter count matches the dual model's (grid +
  both MLPs + codes). It sees the same samples per step as the dual model (both sample sets of a
  shape go through its one branch) and the same Adam groups and schedule.
- **Per shape**: one small dual model for each shape, the budget split evenly; built by the same
  ``train`` as the collection model (``per_shape_config``), so it differs in sharing only.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from compact_sdf.config import Config, ModelConfig
from compact_sdf.data.sampler import BalancedSampler
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.model import SkipMLP, pe_dim, positional_encoding
from torch import nn


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def mlp_parameters(in_dim: int, hidden: int, layers: int, skip_layer: int) -> int:
    """Parameters of a ``SkipMLP`` (weights and biases, the skip concatenation included)."""
    skip = in_dim * hidden if 0 < skip_layer < layers else 0
    return (in_dim + 1) * hidden + (layers - 1) * (hidden + 1) * hidden + skip + hidden + 1


def dual_parameters(cfg: ModelConfig, n_shapes: int) -> int:
    """Parameters of a ``DualSDF``: grid + both MLPs + codes."""
    d, c, pe = cfg.code_dim, cfg.grid_channels, pe_dim(cfg.pe_freqs)
    mlps = mlp_parameters(d + 3 + pe, cfg.hidden, cfg.layers, cfg.skip_layer)
    mlps += mlp_parameters(d + c + 3, cfg.hidden, cfg.layers, cfg.skip_layer)
    return cfg.grid_res**3 * c + mlps + n_shapes * d


class CodesOnlySDF(nn.Module):
    """One code per shape and the generalization MLP on ``[z, x, PE(x)]``."""

    def __init__(self, code_dim: int, hidden: int, layers: int, pe_freqs: int, n_shapes: int) -> None:
        super().__init__()
        self.pe_freqs = pe_freqs
        self.codes = nn.Embedding(n_shapes, code_dim)
        nn.init.normal_(self.codes.weight, 0.0, 1.0 / 16.0)
        d = code_dim
        self.mlp = SkipMLP(d + 3 + pe_dim(pe_freqs), hidden, layers, layers // 2, list(range(d, d + 6)))

    def sdf(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``z`` (d,) with ``x`` (N,3), or (B,d) with (B,N,3)."""
        zz = (
            z.expand(*x.shape[:-1], z.shape[-1])
            if z.dim() == 1
            else z.unsqueeze(-2).expand(*x.shape[:-1], -1)
        )
        return self.mlp(torch.cat([zz, x, positional_encoding(x, self.pe_freqs)], dim=-1))


def codes_only_width(cfg: ModelConfig, n_shapes: int, budget: int) -> int:
    """The widest hidden layer whose codes-only model stays within ``budget`` parameters."""
    lo, hi = 8, 8192
    while lo < hi:
        mid = (lo + hi + 1) // 2
        size = _codes_only_size(cfg, n_shapes, mid)
        lo, hi = (mid, hi) if size <= budget else (lo, mid - 1)
    return lo


def _codes_only_size(cfg: ModelConfig, n_shapes: int, hidden: int) -> int:
    in_dim = cfg.code_dim + 3 + pe_dim(cfg.pe_freqs)
    return mlp_parameters(in_dim, hidden, cfg.layers, cfg.layers // 2) + n_shapes * cfg.code_dim


@dataclass(frozen=True)
class CodesOnlyResult:
    model: CodesOnlySDF
    seconds: float
    parameters: int
    steps: int


def train_codes_only(
    shapes: list[ShapeSamples], cfg: Config, budget: int, should_stop: Callable[[], bool] | None = None
) -> CodesOnlyResult:
    """Train the codes-only baseline with the dual model's batch, schedule and step count.

    ``should_stop`` (checked before each step) ends it early, e.g. at the dual model's training time.
    """
    tc, mc = cfg.train, cfg.model
    torch.manual_seed(tc.seed)
    model = CodesOnlySDF(
        mc.code_dim, codes_only_width(mc, len(shapes), budget), mc.layers, mc.pe_freqs, len(shapes)
    )
    opt = torch.optim.Adam(
        [
            {"params": model.codes.parameters(), "lr": tc.lr_codes},
            {"params": model.mlp.parameters(), "lr": tc.lr_mlp},
        ]
    )
    base = [g["lr"] for g in opt.param_groups]
    near = cfg.sampling.near_threshold
    data = [_pools(s, near) for s in shapes]
    gen = torch.Generator().manual_seed(tc.seed)
    per_step = min(tc.shapes_per_batch, len(shapes))
    started, done = time.perf_counter(), 0
    for step in range(tc.steps):
        if should_stop is not None and should_stop():
            break
        done = step + 1
        for group, lr in zip(opt.param_groups, base, strict=True):
            group["lr"] = lr * tc.decay_factor ** (step // max(1, tc.decay_every))
        idx = torch.randperm(len(shapes), generator=gen)[:per_step]
        xs, ys = zip(*(_draw(data[i], tc.samples_per_shape, gen) for i in idx.tolist()), strict=True)
        x, y = torch.stack(xs), torch.stack(ys)
        z = model.codes(idx)
        pred = model.sdf(z, x)
        loss = (pred - y).square().mean() + tc.reg_code * z.norm(dim=-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.codes.weight.copy_(torch.renorm(model.codes.weight, 2, 0, mc.code_max_norm))
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"codes-only training diverged at step {step + 1}")
    return CodesOnlyResult(model, time.perf_counter() - started, parameter_count(model), done)


def _pools(s: ShapeSamples, near: float) -> list[tuple[torch.Tensor, torch.Tensor, BalancedSampler]]:
    out = []
    for pts, sdf in ((s.gen_points, s.gen_sdf), (s.ovf_points, s.ovf_sdf)):
        x, y = torch.as_tensor(pts, dtype=torch.float32), torch.as_tensor(sdf, dtype=torch.float32)
        out.append((x, y, BalancedSampler(y, near)))
    return out


def _draw(pools: list, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` balanced samples from each set: the same points per step as both dual branches see."""
    parts = [(x[i], y[i]) for x, y, sampler in pools for i in [sampler.sample(n, gen)]]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def per_shape_config(cfg: Config, budget: int, n_shapes: int) -> Config:
    """A one-shape dual model of at most ``budget / n_shapes`` parameters, trained on the same
    samples per shape: ``steps * shapes_per_batch / n_shapes`` steps of one shape each."""
    share = budget // n_shapes
    best = None
    for res, channels, hidden, layers in itertools.product(
        (2, 3, 5, 7, 9, 11, 13, 17, 21, 25, 33),
        (2, 4, 8, 16),
        (8, 12, 16, 24, 32, 48, 64, 96, 128),
        (2, 3, 4),
    ):
        mc = replace(
            cfg.model,
            grid_res=res,
            grid_channels=channels,
            hidden=hidden,
            code_dim=8,
            layers=layers,
            skip_layer=layers // 2,
        )
        size = dual_parameters(mc, 1)
        key = (layers == min(cfg.model.layers, 4), size)  # the preset's depth when it fits, then the largest
        if size <= share and (best is None or key > best[0]):
            best = (key, mc)
    if best is None:
        raise ValueError(f"no per-shape model fits {share} parameters")
    tc = cfg.train
    per = min(tc.shapes_per_batch, n_shapes)
    steps = max(1, round(tc.steps * per / n_shapes))
    train = replace(
        tc, steps=steps, shapes_per_batch=1, decay_every=max(1, round(tc.decay_every * per / n_shapes))
    )
    return replace(cfg, model=best[1], train=train)
