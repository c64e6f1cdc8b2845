"""Add to Model: new shapes for a trained model (method.md section 5).

- Code only (fast, coarse): grid and both MLPs frozen, a code is fitted to the new shape's
  samples, starting from the model's code that fits them best (``code_inversion.nearest_code``),
  with both branch losses (Adam lr 5e-3, x0.1 at half, at most 800 iterations by default, fewer
  once it stops improving; balanced samples as in training) and appended to the model directory
  in one atomic checkpoint rewrite.
  A frozen grid has no features for detail it never saw, so this recovers the coarse shape.
- Full (detail): the shape joins the training set and the whole model continues training through
  ``train.train(..., resume=True)``, which first fits its code as above (a warm start); the
  previous shapes' samples are rebuilt from their source meshes (the sample cache makes that
  cheap).
- Auto (the default of every front end): the code fit first; when the band check says it does not
  hold the shape (a shape unlike the model's: s_g leaves part of its surface outside the fusion
  band, so the fused mesh loses it), the full fine-tune follows, warm-started from that code.
  A shape like the model's costs a code fit; an unlike one is not left at F-score 0.06 in silence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from compact_sdf.checkpoint import ShapeInfo, model_from_payload, read_checkpoint
from compact_sdf.codes_io import update_codes
from compact_sdf.config import PRESETS, Config
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.device import resolve_device
from compact_sdf.errors import InputError
from compact_sdf.extract import band_check
from compact_sdf.progress import Progress, span
from compact_sdf.training.code_inversion import FIT_ITERATIONS, CodeFit, fit_row

MODES = ("auto", "code", "full")
AUTO_CODE_SHARE = 0.2  # of an auto fit's progress bar: the code fit (the fine-tune takes the rest)
CODE_REMEDY = "add it with the full fit (fit --mode full; in Blender, Mode: Full), which fine-tunes the model"


@dataclass(frozen=True)
class FitResult:
    name: str
    mode: str  # what ran: "code", or "full" (also an auto fit whose code fit did not hold the shape)
    iterations: int  # code-fit iterations run (it stops once it stops improving), or training steps run
    loss_gen: float
    loss_ovf: float
    elapsed_s: float
    step: int  # the model's training step after the fit
    # as TrainResult's: the shape(s) whose surface s_g leaves outside the fusion band (band_check.py)
    band_misses: dict[str, float] = field(default_factory=dict)
    band_advice: str = ""
    # auto: the code fit's misses that started the fine-tune ({} when it held the shape or did not run)
    code_misses: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Job:
    """What every stage of one fit shares."""

    model_dir: Path
    data: dict
    samples: ShapeSamples
    cfg: Config
    source: str | None
    progress: Progress | None
    should_stop: Callable[[], bool] | None
    t0: float


def fit_shape(
    model_dir: str | Path,
    samples: ShapeSamples,
    cfg: Config | None = None,
    *,
    mode: str,
    iterations: int = FIT_ITERATIONS,
    extra_steps: int | None = None,
    cache_dir: str | Path | None = None,
    source: str | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Add ``samples`` as a new shape of the model in ``model_dir``: ``mode`` "code", "full" or "auto"
    (code, then full where the band check says the code fit does not hold the shape)."""
    if mode not in MODES:
        raise InputError(f"unknown fit mode '{mode}'; choose one of: {', '.join(MODES)}")
    model_dir = Path(model_dir)
    data = read_checkpoint(model_dir)
    saved = Config.from_dict(data["config"])
    cfg = saved if cfg is None else replace(cfg, model=saved.model)
    if samples.name in [s["name"] for s in data["shapes"]]:
        raise InputError(f"the model already has a shape named '{samples.name}'; choose another name")
    job = _Job(model_dir, data, samples, cfg, source, progress, should_stop, time.perf_counter())
    if mode == "full":
        return _fit_full(job, extra_steps, cache_dir, None)
    share = 1.0 if mode == "code" else AUTO_CODE_SHARE
    code, coverage, fit = _fit_code(replace(job, progress=span(progress, 0.0, share)), iterations)
    misses, advice = band_check.verdict({samples.name: coverage}, remedy=CODE_REMEDY)
    if mode == "auto" and misses:
        full = _fit_full(replace(job, progress=span(progress, share, 1.0)), extra_steps, cache_dir, code)
        return replace(full, code_misses=misses)
    info = ShapeInfo.of(samples, source)
    update_codes(model_dir, [(info, code)], {info.name: asdict(coverage)})
    if progress is not None:
        progress("code fit held the shape" if mode == "auto" else "code fit done", 1.0)
    elapsed = time.perf_counter() - job.t0
    losses = (fit.loss_gen, fit.loss_ovf)
    return FitResult(
        samples.name, "code", fit.iterations, *losses, elapsed, int(data["step"]), misses, advice
    )


def _fit_code(job: _Job, iterations: int) -> tuple[torch.Tensor, band_check.Coverage, CodeFit]:
    """The new code fitted on the frozen decoder (nothing written yet), its band coverage, the fit."""
    model, _ = model_from_payload(job.data, resolve_device(job.cfg.train.device))
    model.add_shapes(1, torch.Generator().manual_seed(job.cfg.train.seed))
    index = model.num_shapes - 1
    fit = fit_row(
        model,
        index,
        job.samples,
        job.cfg,
        iterations=iterations,
        progress=job.progress,
        should_stop=job.should_stop,
    )
    gen_set = band_check.generalization_set(job.samples, next(model.parameters()).device)
    (coverage,) = band_check.band_coverage(model, [gen_set], job.cfg, [index])
    return model.codes.weight[index].detach().cpu(), coverage, fit


def _fit_full(
    job: _Job, extra_steps: int | None, cache_dir: str | Path | None, warm: torch.Tensor | None
) -> FitResult:
    """Continue training the whole model with the new shape added (its code ``warm`` when fitted)."""
    from compact_sdf.training.train import TrainProgress, train

    shapes = _old_shapes(job, cache_dir)
    start = int(job.data["step"])
    steps = extra_steps if extra_steps is not None else fine_tune_steps(job.cfg)
    cfg = replace(job.cfg, train=replace(job.cfg.train, steps=start + steps))
    progress = job.progress

    def on_train(p: TrainProgress) -> None:
        if progress is not None:
            left = f", {p.eta_s:.0f} s left" if p.eta_s == p.eta_s else ""  # NaN: not measured yet
            text = f"fine-tune step {p.step - start}/{steps}{left}"
            progress(text, 0.1 + 0.9 * (p.step - start) / max(1, steps))

    sources = {s["name"]: s["source"] for s in job.data["shapes"] if s.get("source")}
    if job.source:
        sources[job.samples.name] = job.source
    result = train(
        job.model_dir,
        [*shapes, job.samples],
        cfg,
        resume=True,
        progress=on_train,
        should_stop=job.should_stop,
        sources=sources,
        warm_codes=None if warm is None else {job.samples.name: warm},
    )
    return FitResult(
        job.samples.name,
        "full",
        result.step - start,
        result.loss_gen,
        result.loss_ovf,
        time.perf_counter() - job.t0,
        result.step,
        result.band_misses,
        result.band_advice,
    )


def fine_tune_steps(cfg: Config) -> int:
    """A fine-tune's default length: the named preset's own steps (600 for preview), not the total a
    collection was scaled to (3000 for 50 shapes): the new shape fills half of every batch, and 600
    joint steps added 5 shapes to a 50-shape model with lower CDs, old and new, than retraining all
    55 (some old shapes still lost detail; docs/benchmarks/collection.md)."""
    base = PRESETS.get(cfg.preset)
    return cfg.train.steps if base is None else min(cfg.train.steps, base.train.steps)


def _old_shapes(job: _Job, cache_dir: str | Path | None) -> list[ShapeSamples]:
    """The model's shapes' samples, rebuilt from their recorded meshes (first tenth of the bar)."""
    from compact_sdf.data import prepare_mesh

    old = [ShapeInfo.from_dict(s) for s in job.data["shapes"]]
    shapes = []
    for i, info in enumerate(old):
        if not info.source or not Path(info.source).is_file():
            raise InputError(
                f"the full fit retrains on every shape, but the mesh of '{info.name}' "
                f"is not at {info.source!r}"
            )
        if job.progress is not None:
            job.progress(f"samples of {info.name} ({i + 1}/{len(old)})", 0.1 * i / len(old))
        shapes.append(prepare_mesh(info.source, name=info.name, cfg=job.cfg.sampling, cache_dir=cache_dir))
    return shapes
