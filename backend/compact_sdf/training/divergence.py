"""Tell a loss spike that recovers from a branch that has stopped learning.

A paper-preset run on an H200 (bf16, six shapes, docs/benchmarks/fidelity.md) spiked at step 530:
s_g came back within 40 steps, but s_o's loss jumped from 4e-6 to 3.1e-4, about the variance of
its targets, and stayed there for the remaining 3,470 steps: its ReLUs had died and it output a
constant, so the fused extraction found no surface at all on one shape. Nothing in the loss is
non-finite, so only the loss's history can tell. The training loop goes back to its last
checkpoint with half the learning rate when this watch says so (``train.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BRANCHES = ("loss_gen", "loss_ovf")
# A window is bad when a branch's mean loss is SPIKE times its lowest window so far. On that run
# the spikes that recovered reached 12-18x for one window; the dead s_o stayed at 75x.
SPIKE = 10.0
# Bad windows for at least this many steps in a row mean divergence; the recovering spikes of that
# run were over in 10-20 steps, and a run of 600 steps loses at most this much before going back.
PATIENCE = 50


@dataclass
class DivergenceWatch:
    """Fed the mean losses of each log window; ``diverged`` once a spike has outlasted PATIENCE."""

    lowest: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BRANCHES, math.inf))
    bad_since: int | None = None  # first step of the current run of bad windows
    last_step: int = 0

    def update(self, step: int, means: dict[str, float]) -> None:
        """Take the window that ended at ``step`` (means of at least the two branch losses)."""
        bad = any(means[k] > SPIKE * self.lowest[k] for k in BRANCHES)
        for k in BRANCHES:
            self.lowest[k] = min(self.lowest[k], means[k])
        if not bad:
            self.bad_since = None
        elif self.bad_since is None:
            self.bad_since = self.last_step
        self.last_step = step

    @property
    def healthy(self) -> bool:
        """No bad window is open: the model may be saved as a checkpoint to come back to."""
        return self.bad_since is None

    @property
    def diverged(self) -> bool:
        return self.bad_since is not None and self.last_step - self.bad_since >= PATIENCE

    def restart(self, step: int) -> None:
        """After going back to ``step``: the lowest losses stay, the open spike is forgotten."""
        self.bad_since, self.last_step = None, step
