"""Fit one shape's code to its samples with the decoder frozen (method.md section 5).

Used by ``add_shape`` (a new shape, code only) and by ``train`` (the warm start of the codes a resumed
run adds); its own module so that neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from compact_sdf.config import Config
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.errors import Cancelled, InputError
from compact_sdf.model import DualSDF
from compact_sdf.progress import Progress
from compact_sdf.training import objective
from compact_sdf.training.objective import DeviceShape, draw_batch

FIT_LR = 5e-3
FIT_ITERATIONS = 800


def fit_row(
    model: DualSDF,
    index: int,
    samples: ShapeSamples,
    cfg: Config,
    *,
    iterations: int = FIT_ITERATIONS,
    lr: float = FIT_LR,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[float, float]:
    """Fit code ``index`` of ``model`` to ``samples`` with every other parameter frozen; returns the
    last (loss_gen, loss_ovf).

    The training objective (its regulariser at full weight), the training sampler and the code
    projection; only Adam's schedule differs. The model's modes and gradient flags are restored
    afterwards, so a training run can warm-start the codes it adds and go on (``train.py``).
    """
    if iterations < 1:
        raise InputError(f"a code fit needs at least 1 iteration, got {iterations}")
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(cfg.train.seed)
    was_training, flags = model.training, [p.requires_grad for p in model.parameters()]
    model.eval()
    model.requires_grad_(False)
    codes = model.codes.weight.requires_grad_(True)  # only row ``index`` receives a gradient
    opt = torch.optim.Adam([codes], lr=lr)
    warm = max(cfg.train.reg_warmup, 0)  # a step past the warm-up
    shape = {index: DeviceShape(samples, device, cfg.sampling)}
    terms: dict[str, torch.Tensor] = {}
    try:
        for it in range(iterations):
            if should_stop is not None and should_stop():
                raise Cancelled("code fit cancelled; the model is unchanged")
            for group in opt.param_groups:
                group["lr"] = lr * (0.1 if it >= iterations // 2 else 1.0)
            batch = draw_batch(shape, cfg.train.samples_per_shape, gen, device)
            terms = objective.losses(model, batch, cfg)
            opt.zero_grad(set_to_none=True)
            objective.total(terms, cfg.train, warm).backward()
            opt.step()
            model.project_codes()
            if progress is not None and (it % 20 == 0 or it == iterations - 1):
                progress(f"code fit {it + 1}/{iterations}", (it + 1) / iterations)
    finally:
        codes.grad = None
        for param, flag in zip(model.parameters(), flags, strict=True):
            param.requires_grad_(flag)
        model.train(was_training)
    return terms["loss_gen"].item(), terms["loss_ovf"].item()
