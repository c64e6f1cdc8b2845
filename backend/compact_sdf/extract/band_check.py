"""The distance fusion's assumption, measured on the trained model that relies on it.

``extract.py`` uses s_o only where ``|s_g| <= w`` (``w = extract.width x sampling.band_width``):
a true surface that s_g puts further from its zero set than ``w`` is taken from s_g alone, and
s_o's detail there is lost. So the fusion assumes that s_g holds each shape's whole surface
inside that band. On the shared meshes it holds for 99.8-100% of every surface at the default
width (docs/benchmarks/fidelity.md), but a model stopped early, or a shape that s_g fits badly,
may break it; then a user should know, since the fix (more steps, a wider ``extract.width``)
is theirs to choose.

The surface here is the training set's generalization points within ``w / 8`` of it (area-uniform
surface samples plus small offsets, exact distances): no mesh is needed, so the check runs at
the end of every training run, also for meshes that are no longer on disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from compact_sdf.config import Config
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.model import DualSDF

GenSet = tuple[torch.Tensor, torch.Tensor]  # a shape's generalization points (P, 3) and their sdf (P,)

COVERAGE_GOAL = 0.99  # below this share the fusion replaces a visible part of s_o's surface
MAX_POINTS = 10_000  # per shape: the share to within about 0.1%, in well under a second on a CPU
SURFACE_TOLERANCE = 1.0 / 8.0  # points within this fraction of w of the surface stand for it
_FAR = 1e6


def fusion_half_width(cfg: Config) -> float:
    """``w`` of the default extraction of a model trained with ``cfg`` (normalised units)."""
    return cfg.extract.width * cfg.sampling.band_width


@dataclass(frozen=True)
class Coverage:
    share: float  # of the shape's near-surface points with |s_g| <= w
    width: float  # the extract.width (multiple of the band) that would hold COVERAGE_GOAL of them


def generalization_set(samples: ShapeSamples, device: torch.device) -> GenSet:
    """The points band_coverage reads, without building a training set (DeviceShape) around them."""
    return torch.as_tensor(samples.gen_points, device=device), torch.as_tensor(samples.gen_sdf, device=device)


@torch.no_grad()
def band_coverage(
    model: DualSDF, sets: list[GenSet], cfg: Config, codes: list[int] | None = None
) -> list[Coverage]:
    """Per shape, how much of its surface s_g holds inside the fusion band; ``sets`` are the shapes'
    generalization points (``DeviceShape.gen_x, gen_y`` or ``generalization_set``), ``codes`` their
    rows in the model (default: their order).

    A shape with no point that near (none in its set) counts as covered: there is nothing to measure.
    """
    rows = list(range(len(sets))) if codes is None else codes
    width = fusion_half_width(cfg)
    out = []
    for i, (points, sdf) in zip(rows, sets, strict=True):
        near = torch.nonzero(sdf.abs() <= SURFACE_TOLERANCE * width).flatten()
        if len(near) == 0:
            out.append(Coverage(1.0, cfg.extract.width))
            continue
        pick = near[torch.linspace(0, len(near) - 1, min(len(near), MAX_POINTS), device=near.device).long()]
        gen = model.sdf_gen(model.codes.weight[i], points[pick].float()).float().abs()
        gen = torch.nan_to_num(gen, nan=_FAR, posinf=_FAR)  # a non-finite value is outside any band
        # "higher": the width returned holds the goal itself, so it is wider than w whenever w does not
        needed = float(torch.quantile(gen, COVERAGE_GOAL, interpolation="higher")) / cfg.sampling.band_width
        out.append(Coverage(float((gen <= width).float().mean()), needed))
    return out


def recorded(summary: dict[str, Any]) -> dict[str, Coverage]:
    """The coverage a checkpoint recorded (``band_coverage``); entries that do not parse are skipped."""
    out = {}
    for name, c in (summary or {}).items():
        try:
            out[str(name)] = Coverage(float(c["share"]), float(c["width"]))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def misses(names: list[str], coverage: list[Coverage]) -> dict[str, Coverage]:
    """The shapes whose share is under ``COVERAGE_GOAL``."""
    return {n: c for n, c in zip(names, coverage, strict=True) if c.share < COVERAGE_GOAL}


RESUME = "train longer (train --resume with a higher --steps)"


def verdict(coverage: dict[str, Coverage], remedy: str = RESUME) -> tuple[dict[str, float], str]:
    """``band_misses`` (name -> share) and ``band_advice`` ("" when none) of a train or fit result."""
    missed = misses(list(coverage), list(coverage.values()))
    return {n: c.share for n, c in missed.items()}, advice(missed, remedy) if missed else ""


def advice(missed: dict[str, Coverage], remedy: str = RESUME) -> str:
    """One line for the CLI, the job result and Blender: which shapes, and what to do.

    A wider extraction band is offered only up to the training band (width 1): s_o saw no samples
    beyond it, so a band that needs more than that cannot keep detail, only more of s_o's errors.
    """
    worst = sorted(missed.items(), key=lambda kv: kv[1].share)
    listed = ", ".join(f"{n} {100 * c.share:.1f}%" for n, c in worst[:5]) + (" ..." if len(worst) > 5 else "")
    wider = math.ceil(max(c.width for c in missed.values()) * 20.0) / 20.0
    alternative = f", or extract with --set extract.width={wider:g}" if wider <= 1.0 else ""
    return (
        f"the generalization branch puts less than {100 * COVERAGE_GOAL:.0f}% of the surface of "
        f"{len(missed)} shape(s) inside the fusion band ({listed}), so the fused mesh takes those parts "
        f"from it alone and loses their detail: {remedy}{alternative}"
    )
