"""The time left of a training run, from the wall time its steps take.

A run's first step pays one-off costs: optimiser state allocated on first use, kernels chosen and
loaded (on CUDA also the context), caches filled. It can take many times a later step, and the
average of step speeds this replaces was seeded by it, so the first estimates could be several
times too long (the panel once showed 2.9x). So the first step of each run is not counted: until
a second one ends there is no estimate (NaN). The per-step time is the wall time between steps,
so what runs between them (checkpoints, the loss log, progress reports) counts too: leaving it
out made the estimates too short (0.85x through the service, preview, 3 shapes, one thread;
1.03x with this clock). It is smoothed so that a slower phase (the blend loss switching on)
shows within some tens of steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WARMUP_STEPS = 1  # steps of each run whose time is not counted
SMOOTHING = 0.1  # weight of the newest step in the running mean


@dataclass
class StepClock:
    """Call ``start`` when the run starts, ``tick`` when each step ends; ``eta`` is the time left."""

    last: float = math.nan  # when the previous step ended (or the run started)
    ticks: int = 0  # steps ended in this run
    per_step: float = math.nan  # smoothed seconds per step after the warm-up

    def start(self, now: float) -> None:
        self.last, self.ticks, self.per_step = now, 0, math.nan

    def tick(self, now: float) -> None:
        dt, self.last = now - self.last, now
        self.ticks += 1
        if self.ticks <= WARMUP_STEPS or not math.isfinite(dt):
            return
        self.per_step = dt if math.isnan(self.per_step) else (1 - SMOOTHING) * self.per_step + SMOOTHING * dt

    def eta(self, steps_left: int) -> float:
        """Seconds for ``steps_left`` more steps; NaN until a step after the warm-up was timed."""
        return max(steps_left, 0) * self.per_step
