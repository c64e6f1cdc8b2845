"""Fit one shape's code to its samples with the decoder frozen (method.md section 5).

Used by ``add_shape`` (a new shape, code only) and by ``train`` (the warm start of the codes a resumed
run adds); its own module so that neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

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
START_POINTS = 4096  # generalization points that choose a fit's starting code and watch its progress
CHECK_EVERY = 100  # iterations between two looks at the fit's error on those points
PLATEAU = 0.01  # a look that improved the error by less than this share ends the phase


class CodeFit(NamedTuple):
    loss_gen: float  # the last iteration's losses
    loss_ovf: float
    iterations: int  # run (fewer than asked when the fit stopped improving)


def _probe(samples: ShapeSamples, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``START_POINTS`` of the shape's generalization points (evenly strided) and their sdf."""
    points = torch.as_tensor(samples.gen_points, device=device).float()
    sdf = torch.as_tensor(samples.gen_sdf, device=device).float()
    pick = torch.linspace(0, len(points) - 1, min(len(points), START_POINTS), device=device).long()
    return points[pick], sdf[pick]


@torch.no_grad()
def _error(model: DualSDF, row: int, probe: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Mean |s_g - sdf| of code ``row`` on the probe points."""
    points, sdf = probe
    return float((model.sdf_gen(model.codes.weight[row], points).float() - sdf).abs().mean())


@torch.no_grad()
def nearest_code(
    model: DualSDF, rows: int, samples: ShapeSamples, probe: tuple[torch.Tensor, torch.Tensor] | None = None
) -> int:
    """Of the model's first ``rows`` codes, the one whose s_g fits ``samples``' generalization
    points best (mean |s_g - sdf|).

    Why a fit starts there and not at a random draw (research/code_fit_init.py, preview): a shape
    the model already holds (an edited copy, say) is fitted before the first step: a trained shape
    added again reached its F@0.01 in 50 iterations from there, where a random start needed 800
    for the same. For 8 shapes unlike the model's, after the default 800 iterations the band share
    differed by -0.003 to +0.045 and F@0.01 by -0.006 to +0.012 from the random start's.
    """
    probe = probe if probe is not None else _probe(samples, next(model.parameters()).device)
    errors = [_error(model, i, probe) for i in range(rows)]
    return min(range(rows), key=errors.__getitem__)


def fit_row(
    model: DualSDF,
    index: int,
    samples: ShapeSamples,
    cfg: Config,
    *,
    iterations: int = FIT_ITERATIONS,
    lr: float = FIT_LR,
    from_nearest: bool = True,
    until_plateau: bool = True,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CodeFit:
    """Fit code ``index`` of ``model`` to ``samples`` with every other parameter frozen.

    The fit starts from the best of the codes before ``index`` (``nearest_code``; from the row as it
    is when it is the first, or ``from_nearest`` is off). The training objective (its regulariser at
    full weight), the training sampler and the code projection; only Adam's schedule differs: ``lr``
    for the first half of ``iterations``, a tenth of it for the rest. With ``until_plateau`` a phase
    also ends when ``CHECK_EVERY`` iterations improved the error on the probe points by less than
    ``PLATEAU`` (the second phase's end ends the fit). Measured (research/code_fit_init.py, preview,
    10 shapes: 2 the model holds, 8 unlike it): the fits stopped after 200-500 of 800 iterations,
    1.4-3.4x sooner, with the band share within 0.008 and F@0.01 within 0.002 of the full run's.
    The model's modes and gradient flags are restored afterwards, so a training run can warm-start
    the codes it adds and go on (``train.py``).
    """
    if iterations < 1:
        raise InputError(f"a code fit needs at least 1 iteration, got {iterations}")
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(cfg.train.seed)
    was_training, flags = model.training, [p.requires_grad for p in model.parameters()]
    model.eval()
    model.requires_grad_(False)
    probe = _probe(samples, device) if len(samples.gen_points) > 0 else None
    if from_nearest and index > 0 and probe is not None:
        with torch.no_grad():
            model.codes.weight[index] = model.codes.weight[nearest_code(model, index, samples, probe)]
    probe = probe if until_plateau else None  # what the schedule watches
    codes = model.codes.weight.requires_grad_(True)  # only row ``index`` receives a gradient
    opt = torch.optim.Adam([codes], lr=lr)
    warm = max(cfg.train.reg_warmup, 0)  # a step past the warm-up
    shape = {index: DeviceShape(samples, device, cfg.sampling)}
    terms: dict[str, torch.Tensor] = {}
    low_from, last = iterations // 2, _error(model, index, probe) if probe is not None else 0.0
    ran = 0
    try:
        for it in range(iterations):
            if should_stop is not None and should_stop():
                raise Cancelled("code fit cancelled; the model is unchanged")
            for group in opt.param_groups:
                group["lr"] = lr * (0.1 if it >= low_from else 1.0)
            batch = draw_batch(shape, cfg.train.samples_per_shape, gen, device)
            terms = objective.losses(model, batch, cfg)
            opt.zero_grad(set_to_none=True)
            objective.total(terms, cfg.train, warm).backward()
            opt.step()
            model.project_codes()
            ran = it + 1
            if progress is not None and (it % 20 == 0 or ran == iterations):
                progress(f"code fit {ran}/{iterations}", ran / iterations)
            if probe is not None and ran % CHECK_EVERY == 0:
                error = _error(model, index, probe)
                if error > (1.0 - PLATEAU) * last:  # this phase stopped improving
                    if ran > low_from:
                        break
                    low_from = ran
                last = error
    finally:
        codes.grad = None
        for param, flag in zip(model.parameters(), flags, strict=True):
            param.requires_grad_(flag)
        model.train(was_training)
    if progress is not None and ran < iterations:
        progress(f"code fit done after {ran} iterations (it stopped improving)", 1.0)
    return CodeFit(terms["loss_gen"].item(), terms["loss_ovf"].item(), ran)
