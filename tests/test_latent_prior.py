"""The latent-space terms: blends, the code prior, and that blended-code training does what it says."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_helpers import analytic_samples, box_sdf, sphere_sdf, tiny_config
from compact_sdf.config import get_preset
from compact_sdf.latent_prior import (
    blend_codes,
    blend_ramp,
    blend_target,
    blended_code_loss,
    code_prior,
    partners,
)
from compact_sdf.model import DualSDF


def _mse(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (p - y).square().mean()


@pytest.mark.parametrize("path", ["linear", "slerp"])
def test_blends_start_and_end_at_the_codes(path: str) -> None:
    g = torch.Generator().manual_seed(0)
    za, zb = (
        torch.randn(5, 8, generator=g, dtype=torch.float64),
        torch.randn(5, 8, generator=g, dtype=torch.float64),
    )
    assert torch.allclose(blend_codes(za, zb, torch.zeros(5, dtype=torch.float64), path), za, atol=1e-6)
    assert torch.allclose(blend_codes(za, zb, torch.ones(5, dtype=torch.float64), path), zb, atol=1e-6)


def test_slerp_turns_the_direction_and_blends_the_norm() -> None:
    za = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    zb = torch.tensor([[0.0, 3.0]], dtype=torch.float64)
    z = blend_codes(za, zb, torch.tensor([0.5], dtype=torch.float64), "slerp")[0]
    assert z.norm().item() == pytest.approx(2.0)
    assert math.atan2(z[1].item(), z[0].item()) == pytest.approx(math.pi / 4)


def test_blend_targets() -> None:
    ya, yb, t = torch.tensor([[1.0, -1.0]]), torch.tensor([[-3.0, 1.0]]), torch.tensor([0.25])
    assert torch.allclose(blend_target(ya, yb, t, "linear"), torch.tensor([[0.0, -0.5]]))
    assert torch.allclose(blend_target(ya, yb, t, "union"), torch.tensor([[-3.0, -1.0]]))


def test_partners_never_pair_a_shape_with_itself() -> None:
    g = torch.Generator().manual_seed(3)
    for count in range(2, 9):
        p = partners(count, g)
        assert sorted(p.tolist()) == list(range(count)) and (p != torch.arange(count)).all()


def test_code_priors() -> None:
    z = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    assert code_prior(z, "norm", 0.5).item() == pytest.approx(3.0)
    assert code_prior(z, "gaussian", 0.5).item() == pytest.approx((25 + 1) / 2 / 0.25)


def test_ramp() -> None:
    cfg = get_preset("tiny").train
    assert blend_ramp(cfg, 50) == 0.0  # off by default
    on = (
        get_preset("tiny")
        .override(["train.blend_weight=2", "train.blend_start=10", "train.blend_warmup=4"])
        .train
    )
    assert [blend_ramp(on, s) for s in (9, 10, 11, 13, 40)] == [0.0, 0.5, 1.0, 2.0, 2.0]


@pytest.mark.parametrize("branches", ["gen", "both"])
def test_the_term_reaches_the_chosen_branches_and_the_codes(branches: str) -> None:
    cfg = get_preset("tiny").override([f"train.blend_branches={branches}", "train.blend_weight=1"])
    torch.manual_seed(0)
    model = DualSDF(cfg.model, 3)
    with torch.no_grad():  # geometric init gives the code columns zero weight: wake them up
        for w in (*model.gen.parameters(), *model.ovf.parameters()):
            w.add_(0.05 * torch.randn_like(w))
    x = torch.rand(3, 64, 3) * 2 - 1
    y = x.norm(dim=-1) - 0.5
    loss = blended_code_loss(
        model, torch.arange(3), {"gen": (x, y), "ovf": (x, y)}, cfg.train, _mse, torch.Generator()
    )
    loss.backward()
    assert model.codes.weight.grad is not None and model.codes.weight.grad.abs().sum() > 0
    ovf_grad = model.ovf.out.weight.grad
    assert (ovf_grad is not None and ovf_grad.abs().sum() > 0) == (branches == "both")
    single = blended_code_loss(
        model, torch.arange(1), {"gen": (x[:1], y[:1])}, cfg.train, _mse, torch.Generator()
    )
    assert single.item() == 0.0


def _offset_sphere(p: np.ndarray) -> np.ndarray:
    return sphere_sdf(p - np.array([0.35, 0.0, 0.0]), 0.35)


def _midpoint_error(model_dir: Path) -> float:
    """RMS of s_g at the mid code against the mean of the two exact SDFs, on a fixed point set."""
    from compact_sdf.checkpoint import load_model

    loaded = load_model(model_dir, device="cpu")
    z = 0.5 * (loaded.code("a") + loaded.code("b"))
    p = np.random.default_rng(7).uniform(-0.9, 0.9, (4000, 3))
    want = 0.5 * (box_sdf(p) + _offset_sphere(p))
    with torch.no_grad():
        got = loaded.model.sdf_gen(z, torch.as_tensor(p, dtype=torch.float32)).numpy()
    return float(np.sqrt(np.mean((got - want) ** 2)))


@pytest.mark.usefixtures("one_torch_thread")
def test_blended_code_training_decodes_the_blend_of_the_ends(tmp_path: Path) -> None:
    """Without the term the mid code decodes to whatever; with it, to the SDF blend of the two ends."""
    from compact_sdf.train import train

    shapes = [analytic_samples("a", box_sdf, seed=1), analytic_samples("b", _offset_sphere, seed=2)]
    errors = {}
    for weight in (0.0, 1.0):
        cfg = tiny_config(steps=300, blend_weight=weight, blend_fraction=1.0, blend_warmup=20)
        train(tmp_path / f"w{weight}", shapes, cfg)
        errors[weight] = _midpoint_error(tmp_path / f"w{weight}")
    assert errors[1.0] < 0.5 * errors[0.0], errors
