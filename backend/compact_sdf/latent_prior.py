"""Training terms that shape the latent space *between* training codes (issue 12, clean in-betweens).

An auto-decoder only ever sees its training codes; a blended code is decoded by a network that was
never asked what lies there, so in-betweens can come out as lumps with floating specks. Two terms
make the space between codes meaningful:

- **code prior** (``code_prior``): ``"norm"`` is the release's mean code norm; ``"gaussian"`` is
  DeepSDF's ``||z||^2 / sigma^2`` prior (sigma = the init std), which pulls codes towards a compact
  ball so that blends stay where the decoder was trained.
- **blended codes** (``blend_weight > 0``, mixup on codes): for each shape ``p`` of the batch and a
  partner ``q`` (the next one of a shuffled batch), a weight ``t ~ U(0, 1)`` and the blended code
  ``z_t`` (linear or slerp), the decoder is supervised at points of both shapes with the blend of
  the two shapes' SDFs: ``(1 - t) s_p + t s_q`` (``blend_target = "linear"``: the zero set morphs
  smoothly and stays inside the union) or ``min(s_p, s_q)`` (``"union"``). Each shape's own value
  at its own points is the ground truth; the partner's value there comes from the generalization
  branch of the current model (detached), which is the branch that is trustworthy away from a
  shape's surface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from compact_sdf.config import TrainConfig

if TYPE_CHECKING:
    from compact_sdf.model import DualSDF

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CODE_PRIORS = ("norm", "gaussian")
BLEND_TARGETS = ("linear", "union")
BLEND_BRANCHES = ("gen", "both")
BLEND_PATHS = ("linear", "slerp")


def code_prior(z: torch.Tensor, kind: str, sigma: float) -> torch.Tensor:
    """Mean over the batch of ``||z||`` (``norm``) or ``||z||^2 / sigma^2`` (``gaussian``)."""
    if kind == "norm":
        return z.norm(dim=-1).mean()
    if kind == "gaussian":
        return z.square().sum(dim=-1).mean() / (sigma * sigma)
    raise ValueError(f"train.code_prior must be one of {', '.join(CODE_PRIORS)}, got '{kind}'")


def blend_codes(za: torch.Tensor, zb: torch.Tensor, t: torch.Tensor, path: str) -> torch.Tensor:
    """Row-wise blends (P, d) of two code batches at weights ``t`` (P,); slerp blends norms linearly."""
    w = t[:, None]
    if path == "linear":
        return (1 - w) * za + w * zb
    if path != "slerp":
        raise ValueError(f"train.blend_path must be one of {', '.join(BLEND_PATHS)}, got '{path}'")
    na, nb = za.norm(dim=-1, keepdim=True), zb.norm(dim=-1, keepdim=True)
    ua, ub = za / na.clamp_min(1e-12), zb / nb.clamp_min(1e-12)
    omega = torch.acos((ua * ub).sum(-1, keepdim=True).clamp(-1 + 1e-6, 1 - 1e-6))
    so = torch.sin(omega)
    u = (torch.sin((1 - w) * omega) * ua + torch.sin(w * omega) * ub) / so
    return u * ((1 - w) * na + w * nb)


def blend_target(ya: torch.Tensor, yb: torch.Tensor, t: torch.Tensor, kind: str) -> torch.Tensor:
    """The SDF a blended code should decode to, from the two ends' values (P, N) at weights t (P,)."""
    if kind == "linear":
        return (1 - t[:, None]) * ya + t[:, None] * yb
    if kind == "union":
        return torch.minimum(ya, yb)
    raise ValueError(f"train.blend_target must be one of {', '.join(BLEND_TARGETS)}, got '{kind}'")


def partners(count: int, generator: torch.Generator) -> torch.Tensor:
    """For batch positions 0..count-1 a partner position != itself (a random cyclic shift pairing)."""
    order = torch.randperm(count, generator=generator)
    out = torch.empty(count, dtype=torch.long)
    out[order] = order.roll(-1)
    return out


def _branch(model: DualSDF, branch: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return model.sdf_gen if branch == "gen" else model.sdf_ovf


def blended_code_loss(
    model: DualSDF,
    idx: torch.Tensor,
    batch: dict[str, tuple[torch.Tensor, torch.Tensor]],
    cfg: TrainConfig,
    criterion: Criterion,
    generator: torch.Generator,
) -> torch.Tensor:
    """The mixup term for the shapes ``idx`` (B,) of one step; 0 when the batch has one shape.

    ``batch`` maps a branch name (``"gen"``, ``"ovf"``) to that branch's points (B, N, 3) and exact
    SDF values (B, N); the first ``blend_fraction * N`` samples of each shape are used (they are
    already random draws). Which branches get the term is ``cfg.blend_branches``.
    """
    if cfg.blend_branches not in BLEND_BRANCHES:
        raise ValueError(f"train.blend_branches must be one of {', '.join(BLEND_BRANCHES)}")
    count = len(idx)
    zero = model.codes.weight.new_zeros(())
    if count < 2:
        return zero
    partner = partners(count, generator).to(idx.device)
    t = torch.rand(count, generator=generator).to(model.codes.weight)
    z = model.codes(idx)
    zt = blend_codes(z, z[partner], t, cfg.blend_path)
    branches = ["gen"] if cfg.blend_branches == "gen" else ["gen", "ovf"]
    total = zero
    for branch in branches:
        x, y = batch[branch]
        m = max(1, int(cfg.blend_fraction * x.shape[1]))
        xa, ya = x[:, :m], y[:, :m]  # shape p's own points and exact values
        xb, yb = xa[partner], ya[partner]  # the partner's points and exact values
        with torch.no_grad():  # each shape's value at the other's points, from the smooth branch
            za, zb = z.detach(), z.detach()[partner]
            yb_at_a = model.sdf_gen(zb, xa)
            ya_at_b = model.sdf_gen(za, xb)
        pts = torch.cat([xa, xb], dim=1)
        end_a = torch.cat([ya, ya_at_b], dim=1)
        end_b = torch.cat([yb_at_a, yb], dim=1)
        target = blend_target(end_a, end_b, t, cfg.blend_target)
        total = total + criterion(_branch(model, branch)(zt, pts).float(), target)
    return total


def blend_ramp(cfg: TrainConfig, step: int) -> float:
    """Weight of the blended-code term at ``step``: 0 before ``blend_start``, then a linear ramp."""
    if cfg.blend_weight <= 0 or step < cfg.blend_start:
        return 0.0
    span = max(1, cfg.blend_warmup)
    return cfg.blend_weight * min(1.0, (step - cfg.blend_start + 1) / span)
