"""The loss terms and their samples: s_o's clamp (``train.ovf_clamp``) spends nothing far away,
its set reaches off the lattice (``sampling.ovf_off_lattice``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from _train_helpers import tiny_config
from compact_sdf.data.normalize import Normalization
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.model import DualSDF
from compact_sdf.training.objective import Batch, DeviceShape, losses

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


def _samples(**arrays: np.ndarray) -> ShapeSamples:
    return ShapeSamples(
        name="s", mesh_hash="0" * 64, normalization=Normalization((0.0, 0.0, 0.0), 1.0), **arrays
    )


def test_overfitting_set_takes_the_generalization_points_inside_the_band() -> None:
    """s_o sees exact distances between lattice nodes: a sub-cell wall is then not invisible to it."""
    sampling = tiny_config().sampling
    band = sampling.band_width
    ovf_x = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]], dtype=np.float32)
    ovf_y = np.array([0.0, 0.4], dtype=np.float32)
    gen_x = np.array([[0.01, 0.02, 0.03], [0.2, 0.2, 0.2], [0.3, 0.1, 0.0]], dtype=np.float32)
    gen_y = np.array([-0.5 * band, band, 1.5 * band], dtype=np.float32)
    s = _samples(ovf_points=ovf_x, ovf_sdf=ovf_y, gen_points=gen_x, gen_sdf=gen_y)
    on = DeviceShape(s, torch.device("cpu"), sampling)
    assert on.ovf_x.tolist() == np.concatenate([ovf_x, gen_x[:2]]).tolist()
    assert on.ovf_y.tolist() == np.concatenate([ovf_y, gen_y[:2]]).tolist()
    off = DeviceShape(s, torch.device("cpu"), replace(sampling, ovf_off_lattice=False))
    assert off.ovf_y.tolist() == ovf_y.tolist()
    assert on.gen_y.tolist() == off.gen_y.tolist() == gen_y.tolist()


def test_a_shape_whose_band_is_all_past_the_clamp_still_learns() -> None:
    """The clamp gives no gradient where the prediction is past it, so an untrained s_o further than
    the clamp from every point of a shape's band never moved (a lone table in `preview`, found in a
    per-shape baseline run). Such a shape's inside targets are not clamped until one comes in."""
    cfg = tiny_config()
    delta = cfg.train.ovf_clamp * cfg.sampling.band_width
    torch.manual_seed(0)
    model = DualSDF(cfg.model, num_shapes=1)
    x = torch.rand(1, 256, 3) * 0.1 + 0.85  # a corner of the cube: the initial sphere is far away
    idx = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        pred = model(idx, x, x)[1]
    assert bool((pred > 2 * delta).all())

    def grad(target: torch.Tensor) -> float:
        model.zero_grad()
        losses(model, Batch(idx, x, target, x, target), cfg)["loss_ovf"].backward()
        assert model.ovf.out.weight.grad is not None
        return float(model.ovf.out.weight.grad.abs().sum())

    assert grad(torch.zeros(1, 256)) > 0  # the surface runs through here: learn it
    assert grad(torch.full((1, 256), 3 * delta)) == 0.0  # far, and predicted far: nothing to learn
