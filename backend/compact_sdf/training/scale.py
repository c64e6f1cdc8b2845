"""Scale a preset to a collection: fixed step cost, more steps and a wider grid as shapes are added.

The paper trains collections with 15 shapes per step (50k samples each, half its single-shape
batch): a step draws a subset of the shapes, so its time and memory do not depend on the
collection's size. Here a collection larger than the preset's batch is drawn 15 shapes per step
with the preset's per-step sample total spread over them, so a step's sample count is the
preset's. Three things change with the number of shapes ``n`` (docs/benchmarks/collection.md
has the runs behind each):

- **Steps**: each shape gets ``SAMPLE_SHARE`` of the samples the preset gives one shape alone,
  so the step count grows linearly with ``n`` (never below the preset's). At 50 shapes of
  ``preview`` that is 3000 steps; the earlier ``sqrt`` rule's 1500 steps scored median F@0.01
  0.870 against 0.910 on the same 10 shapes, both with the wider grid.
- **Decay**: the learning-rate decay interval stretches by half the steps' factor (never less
  than the preset's), so a long collection run halves its rates more often than the preset's one
  decay: at 50 shapes of ``preview`` at steps 1000 and 2000. Against one decay at 2000 the loss
  sat on a plateau from step 1200, and all 50 shapes scored median F@0.01 0.936 against 0.960.
- **Grid channels**: the grid is shared, so its width is the capacity every shape draws on.
  The channels grow by ``sqrt(n / preset batch)`` rounded up to a power of two: at 50 shapes of
  ``preview``, 16 x 4 = 64, which beat 16 (0.772) and 128 (0.851, and 26% slower per step).

MLP and code sizes are the preset's; every value can still be overridden after scaling.
"""

from __future__ import annotations

import math
from dataclasses import replace

from compact_sdf.config import Config

PAPER_SHAPES_PER_BATCH = 15
SAMPLE_SHARE = 0.8  # of the preset's per-shape samples: 50 preview shapes fit 15 min on 2 cores (2 ranks)


def steps_factor(n_shapes: int, shapes_per_batch: int) -> float:
    """How many times the preset's steps a collection of ``n_shapes`` gets (>= 1).

    Alone, each of the preset's shapes draws ``samples_per_shape`` per step; in a collection with
    the same per-step total each draws ``batch / n`` of that on average.
    """
    return max(1.0, SAMPLE_SHARE * n_shapes / max(1, shapes_per_batch))


def channels_factor(n_shapes: int, shapes_per_batch: int) -> int:
    """How many times the preset's grid channels: sqrt(n / batch) rounded up to a power of two."""
    growth = math.sqrt(max(1, n_shapes) / max(1, shapes_per_batch))
    return 1 if growth <= 1 else 2 ** math.ceil(math.log2(growth))


def for_collection(cfg: Config, n_shapes: int) -> Config:
    """``cfg`` with the batch, steps, decay, checkpoint interval and grid width set for ``n_shapes``."""
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
        steps=_ceil(tc.steps * factor),
        decay_every=_ceil(tc.decay_every * max(1.0, factor / 2)),
        checkpoint_every=_ceil(tc.checkpoint_every * factor),
    )
    model = replace(
        cfg.model, grid_channels=cfg.model.grid_channels * channels_factor(n_shapes, tc.shapes_per_batch)
    )
    return replace(cfg, model=model, train=train)


def _ceil(x: float) -> int:
    """Round up, but not past a float's noise (600 x 0.8 x 12 / 8 is 720.0000000000001)."""
    return math.ceil(round(x, 6))
