"""Scale a preset to a collection: the step cost stays fixed, the step count grows sub-linearly.

The paper trains collections with 15 shapes per step (50k samples each, half its single-shape
batch): a step draws a subset of the shapes, so its time and memory do not depend on the
collection's size. Here a collection larger than the preset's batch is drawn 15 shapes per step
with the preset's per-step sample total spread over them, so a step costs what the preset's step
costs. What grows is the number of steps needed for every shape to be visited often enough.
Shapes share the grid and both MLPs, so each extra shape needs fewer visits than the first ones;
the rule gives ``n`` shapes ``steps * sqrt(n / shapes_per_batch)`` steps (never fewer than the
preset's), with the learning-rate decay stretched by the same factor. Grid, MLP and code sizes
are the preset's; every value can still be overridden after scaling.
"""

from __future__ import annotations

import math
from dataclasses import replace

from compact_sdf.config import Config

PAPER_SHAPES_PER_BATCH = 15


def steps_factor(n_shapes: int, shapes_per_batch: int) -> float:
    """How many times the preset's steps a collection of ``n_shapes`` gets (>= 1)."""
    return max(1.0, math.sqrt(n_shapes / max(1, shapes_per_batch)))


def for_collection(cfg: Config, n_shapes: int) -> Config:
    """``cfg`` with the batch, steps, decay and checkpoint interval set for ``n_shapes``."""
    if n_shapes < 1:
        raise ValueError("a collection needs at least one shape")
    tc = cfg.train
    if n_shapes <= tc.shapes_per_batch:
        return cfg
    per_batch = min(max(tc.shapes_per_batch, PAPER_SHAPES_PER_BATCH), n_shapes)
    factor = steps_factor(n_shapes, tc.shapes_per_batch)
    train = replace(
        tc,
        shapes_per_batch=per_batch,
        samples_per_shape=max(1, round(tc.samples_per_shape * tc.shapes_per_batch / per_batch)),
        steps=math.ceil(tc.steps * factor),
        decay_every=math.ceil(tc.decay_every * factor),
        checkpoint_every=math.ceil(tc.checkpoint_every * factor),
    )
    return replace(cfg, train=train)
