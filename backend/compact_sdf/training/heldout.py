"""A held-out check of every shape during training: s_o's error on band points it never saw.

The training loss is measured on the points being fitted, and it kept falling while shapes got
worse (docs/benchmarks/fidelity.md). Before training, ``HELD`` points per shape are drawn (seeded,
so a resumed run draws the same ones) from the generalization set's points within the training
band, where the fusion uses s_o and the distances are exact off the lattice; they are removed from
both branches' training sets. The check of a shape is s_o's mean absolute error on them.
``train`` measures it at every checkpoint (and a resumed run at its start), keeps ``best.pt``,
the state with the lowest mean check, beside the last, and reports the shapes whose check ended
more than ``WORSE`` times their lowest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from compact_sdf.data.samples import ShapeSamples
from compact_sdf.model import DualSDF

HELD = 2048  # points per shape
WORSE = 1.1  # a last check this many times the run's lowest is reported as worse


@dataclass(frozen=True)
class Held:
    """One shape's held-out points ``(H, 3)`` and their signed distances ``(H,)``."""

    points: torch.Tensor
    sdf: torch.Tensor


def split(s: ShapeSamples, band_width: float, seed: int, device: torch.device) -> tuple[ShapeSamples, Held]:
    """The shape's training samples without its held-out points, and those points.

    At most a quarter of the band's generalization points are held out (a tiny test set keeps
    its training points).
    """
    near = np.flatnonzero(np.abs(s.gen_sdf) <= band_width)
    rng = np.random.default_rng(seed)
    held = rng.choice(near, size=min(HELD, len(near) // 4), replace=False)
    keep = np.ones(len(s.gen_sdf), dtype=bool)
    keep[held] = False
    kept = replace(s, gen_points=s.gen_points[keep], gen_sdf=s.gen_sdf[keep])
    points = torch.as_tensor(s.gen_points[held], dtype=torch.float32, device=device)
    return kept, Held(points, torch.as_tensor(s.gen_sdf[held], dtype=torch.float32, device=device))


@torch.no_grad()
def measure(model: DualSDF, held: list[Held]) -> list[float]:
    """Each shape's check: s_o's mean |error| on its held-out points (NaN when it has none)."""
    was_training = model.training
    model.eval()
    out = []
    for index, h in enumerate(held):
        if len(h.sdf) == 0:
            out.append(float("nan"))
            continue
        error = (model.sdf_ovf(model.codes.weight[index], h.points) - h.sdf).abs().mean()
        out.append(float(error))
    model.train(was_training)
    return out


def got_worse(lowest: dict[str, float], last: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Shapes whose last check is over ``WORSE`` times their lowest: name -> (lowest, last)."""
    return {
        name: (lowest[name], value)
        for name, value in last.items()
        if name in lowest and value > WORSE * lowest[name]
    }


@dataclass
class Checks:
    """The checks of a run: each shape's last and lowest, and the lowest mean (``best.pt``'s)."""

    last: dict[str, float] = field(default_factory=dict)
    lowest: dict[str, float] = field(default_factory=dict)  # this run's
    best_mean: float = math.inf  # over runs, unless a resume added shapes
    best_step: int | None = None

    def update(self, names: list[str], values: list[float], step: int) -> bool:
        """Record one measurement; True when its mean is the lowest yet (a new ``best.pt``)."""
        self.last = dict(zip(names, values, strict=True))
        for name, value in self.last.items():
            if value < self.lowest.get(name, math.inf):
                self.lowest[name] = value
        finite = [v for v in values if math.isfinite(v)]
        mean = sum(finite) / len(finite) if finite else math.inf
        if mean < self.best_mean:
            self.best_mean, self.best_step = mean, step
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        best = self.best_mean if math.isfinite(self.best_mean) else None
        return {"last": self.last, "lowest": self.lowest, "best_mean": best, "best_step": self.best_step}

    @classmethod
    def carried(cls, data: dict[str, Any] | None) -> Checks:
        """A resumed run's start: the checkpoint's best (its own lowest start again)."""
        data = data or {}
        best = data.get("best_mean")
        return cls(best_mean=math.inf if best is None else float(best), best_step=data.get("best_step"))
