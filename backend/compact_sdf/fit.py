"""New shapes for a trained model (method.md section 5).

- Code only (fast, coarse): grid and both MLPs frozen, a fresh code is fitted to the new shape's
  samples with both branch losses (Adam lr 5e-3, x0.1 at half, 800 iterations by default, balanced
  samples as in training) and appended to the model directory in one atomic checkpoint rewrite.
  A frozen grid has no features for detail it never saw, so this recovers the coarse shape.
- Full (detail): the shape joins the training set and the whole model continues training through
  ``train.train(..., resume=True)``, which first fits its code as above (a warm start); the
  previous shapes' samples are rebuilt from their source meshes (the sample cache makes that
  cheap).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from compact_sdf import band_check
from compact_sdf.checkpoint import ShapeInfo, model_from_payload, read_checkpoint
from compact_sdf.code_fit import FIT_ITERATIONS, fit_row
from compact_sdf.codes import update_codes
from compact_sdf.config import Config
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.device import resolve_device
from compact_sdf.errors import InputError
from compact_sdf.progress import Progress


@dataclass(frozen=True)
class FitResult:
    name: str
    mode: str  # "code" or "full"
    iterations: int  # code-fit iterations, or training steps run
    loss_gen: float
    loss_ovf: float
    elapsed_s: float
    step: int  # the model's training step after the fit
    # as TrainResult's: the shape(s) whose surface s_g leaves outside the fusion band (band_check.py)
    band_misses: dict[str, float] = field(default_factory=dict)
    band_advice: str = ""


def fit_shape(
    model_dir: str | Path,
    samples: ShapeSamples,
    cfg: Config | None = None,
    *,
    full: bool = False,
    iterations: int = FIT_ITERATIONS,
    extra_steps: int | None = None,
    cache_dir: str | Path | None = None,
    source: str | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Add ``samples`` as a new shape of the model in ``model_dir`` (code only, or ``full``)."""
    model_dir = Path(model_dir)
    data = read_checkpoint(model_dir)
    saved = Config.from_dict(data["config"])
    cfg = saved if cfg is None else replace(cfg, model=saved.model)
    names = [s["name"] for s in data["shapes"]]
    if samples.name in names:
        raise InputError(f"the model already has a shape named '{samples.name}'; choose another name")
    t0 = time.perf_counter()
    if full:
        return _fit_full(
            model_dir, data, samples, cfg, extra_steps, cache_dir, source, progress, should_stop, t0
        )
    model, _ = model_from_payload(data, resolve_device(cfg.train.device))
    model.add_shapes(1, torch.Generator().manual_seed(cfg.train.seed))
    index = model.num_shapes - 1
    lg, lo = fit_row(
        model, index, samples, cfg, iterations=iterations, progress=progress, should_stop=should_stop
    )
    gen_set = band_check.generalization_set(samples, next(model.parameters()).device)
    (coverage,) = band_check.band_coverage(model, [gen_set], cfg, [index])
    info = ShapeInfo(samples.name, samples.mesh_hash, samples.normalization, source)
    update_codes(model_dir, [(info, model.codes.weight[index].detach().cpu())], {info.name: asdict(coverage)})
    band_misses, band_advice = band_check.verdict({samples.name: coverage}, remedy="fit with --full")
    return FitResult(
        samples.name,
        "code",
        iterations,
        lg,
        lo,
        time.perf_counter() - t0,
        int(data["step"]),
        band_misses,
        band_advice,
    )


def _fit_full(
    model_dir: Path,
    data: dict,
    samples: ShapeSamples,
    cfg: Config,
    extra_steps: int | None,
    cache_dir: str | Path | None,
    source: str | None,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    t0: float,
) -> FitResult:
    from compact_sdf.data import prepare_mesh
    from compact_sdf.train import TrainProgress, train

    old = [ShapeInfo.from_dict(s) for s in data["shapes"]]
    shapes = []
    for i, info in enumerate(old):
        if not info.source or not Path(info.source).is_file():
            raise InputError(
                f"--full retrains on every shape, but the mesh of '{info.name}' is not at {info.source!r}"
            )
        if progress is not None:
            progress(f"samples of {info.name}", 0.1 * i / len(old))
        shapes.append(prepare_mesh(info.source, name=info.name, cfg=cfg.sampling, cache_dir=cache_dir))
    start = int(data["step"])
    steps = extra_steps if extra_steps is not None else cfg.train.steps
    cfg = replace(cfg, train=replace(cfg.train, steps=start + steps))

    def on_train(p: TrainProgress) -> None:
        if progress is not None:
            progress(f"train step {p.step}/{p.total_steps}", 0.1 + 0.9 * (p.step - start) / max(1, steps))

    sources = {s.name: s.source for s in old if s.source}
    if source:
        sources[samples.name] = source
    result = train(
        model_dir,
        [*shapes, samples],
        cfg,
        resume=True,
        progress=on_train,
        should_stop=should_stop,
        sources=sources,
    )
    return FitResult(
        samples.name,
        "full",
        result.step - start,
        result.loss_gen,
        result.loss_ovf,
        time.perf_counter() - t0,
        result.step,
        result.band_misses,
        result.band_advice,
    )
