"""The loss terms: the overfitting branch's clamp (``train.ovf_clamp``) spends nothing far away."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _train_helpers import tiny_config
from compact_sdf.model import DualSDF
from compact_sdf.objective import Batch, losses

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _loss_ovf(clamp: float, scale: float) -> float:
    """loss_ovf when every target is ``scale`` times the model's own prediction of s_o."""
    cfg = tiny_config()
    cfg = replace(cfg, train=replace(cfg.train, ovf_clamp=clamp))
    torch.manual_seed(0)
    model = DualSDF(cfg.model, num_shapes=1)
    x = torch.rand(1, 512, 3) * 2 - 1
    idx = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        pred = model(idx, x, x)[1]
    delta = clamp * cfg.sampling.band_width
    far = pred.abs() > 2 * delta  # both the prediction and the target lie beyond the clamp
    assert far.float().mean() > 0.5  # the untrained sphere: most of the cube is far from it
    target = torch.where(far, scale * pred, pred)
    with torch.no_grad():
        return float(losses(model, Batch(idx, x, pred, x, target), cfg)["loss_ovf"])


def test_clamp_ignores_far_values_but_not_far_signs() -> None:
    assert _loss_ovf(0.0, 3.0) > 1e-3  # unclamped: far values count
    assert _loss_ovf(1.0, 3.0) == 0.0  # clamped: a right sign beyond the clamp costs nothing
    band = tiny_config().sampling.band_width
    assert _loss_ovf(1.0, -3.0) >= 0.5 * (2 * band) ** 2  # a wrong sign costs (2 delta)^2 per point
