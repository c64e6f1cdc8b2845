"""DualSDF: tensor shapes, geometric init (sphere of radius ~0.5), trilinear features, sparse gradients."""

from __future__ import annotations

import pytest
import torch
from compact_sdf.config import get_preset
from compact_sdf.model import DualSDF, pe_dim, positional_encoding

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_model() -> DualSDF:
    torch.manual_seed(0)
    return DualSDF(get_preset("tiny").model, num_shapes=3)


def test_tensor_shapes(tiny_model: DualSDF) -> None:
    cfg = tiny_model.cfg
    d, c = cfg.code_dim, cfg.grid_channels
    assert tiny_model.codes.weight.shape == (3, d)
    assert tiny_model.grid.weight.shape == (cfg.grid_res**3, c)
    assert tiny_model.gen.hidden[0].in_features == d + 3 + pe_dim(cfg.pe_freqs)
    assert tiny_model.ovf.hidden[0].in_features == d + c + 3
    assert tiny_model.gen.hidden[cfg.skip_layer].in_features == cfg.hidden + d + 3 + pe_dim(cfg.pe_freqs)
    assert len(tiny_model.gen.hidden) == cfg.layers
    x = torch.rand(7, 3) * 2 - 1
    assert positional_encoding(x, cfg.pe_freqs).shape == (7, pe_dim(cfg.pe_freqs))
    z = tiny_model.codes.weight[0]
    assert tiny_model.sdf_gen(z, x).shape == (7,)
    assert tiny_model.sdf_ovf(z, x).shape == (7,)
    assert tiny_model.features(x).shape == (7, c)
    xb = torch.rand(2, 5, 3) * 2 - 1
    zb = tiny_model.codes.weight[:2]
    assert tiny_model.sdf_gen(zb, xb).shape == (2, 5)
    assert tiny_model.sdf_ovf(zb, xb).shape == (2, 5)
    s_gen, s_ovf, feats = tiny_model(torch.tensor([0, 2]), xb, torch.rand(2, 4, 3))
    assert s_gen.shape == (2, 5) and s_ovf.shape == (2, 4) and feats.shape == (2, 4, c)


def _zero_radius(fn, u: torch.Tensor) -> torch.Tensor:
    """Bisection for the first sign change of fn along rays t*u, t in [0, 1.5]."""
    lo, hi = torch.zeros(len(u)), torch.full((len(u),), 1.5)
    with torch.no_grad():
        assert bool((fn(hi[:, None] * u) > 0).all()), "the init field must be positive far out"
        for _ in range(24):
            mid = (lo + hi) / 2
            inside = fn(mid[:, None] * u) < 0
            lo = torch.where(inside, mid, lo)
            hi = torch.where(inside, hi, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize("preset", ["tiny", "preview"])
def test_init_is_sphere_of_radius_half(preset: str) -> None:
    torch.manual_seed(1)
    model = DualSDF(get_preset(preset).model, num_shapes=2)
    u = torch.randn(400, 3, generator=torch.Generator().manual_seed(5))
    u = u / u.norm(dim=1, keepdim=True)
    with torch.no_grad():
        for k in range(2):  # the real (non-zero) codes must not move the surface
            z = model.codes.weight[k]
            assert abs(float(model.sdf_gen(z, torch.zeros(1, 3))) + 0.5) < 1e-5
            for fn in (lambda p, z=z: model.sdf_gen(z, p), lambda p, z=z: model.sdf_ovf(z, p)):
                r = _zero_radius(fn, u)
                assert 0.47 < float(r.mean()) < 0.53, float(r.mean())
                # a finite-width random net is a lumpy sphere (hidden 64: radii about 0.3..0.9)
                assert float(r.min()) > 0.25 and float(r.max()) < 0.95
                assert float(r.std() / r.mean()) < 0.3


def test_codes_start_small_and_bounded() -> None:
    cfg = get_preset("tiny").model.__class__(code_dim=256, grid_res=3, grid_channels=2, hidden=16, layers=2)
    torch.manual_seed(0)
    model = DualSDF(cfg, num_shapes=200)
    w = model.codes.weight.detach()
    assert abs(float(w.std()) - 1 / 16) < 0.005
    assert float(w.norm(dim=1).max()) <= cfg.code_max_norm + 1e-6
    with torch.no_grad():
        model.codes.weight.mul_(10)
    model.project_codes()
    assert float(model.codes.weight.detach().norm(dim=1).max()) <= cfg.code_max_norm + 1e-6


def _vertex(model: DualSDF, i: int, j: int, k: int) -> torch.Tensor:
    r = model.cfg.grid_res
    return torch.tensor([[-1 + 2 * i / (r - 1), -1 + 2 * j / (r - 1), -1 + 2 * k / (r - 1)]])


def test_trilinear_matches_hand_computation(tiny_model: DualSDF) -> None:
    model = DualSDF(tiny_model.cfg, 1)
    r = model.cfg.grid_res
    with torch.no_grad():
        model.grid.weight.copy_(torch.randn_like(model.grid.weight))
    table = model.grid.weight.detach().reshape(r, r, r, -1)
    with torch.no_grad():
        for i, j, k in [(0, 0, 0), (3, 7, 11), (r - 1, r - 1, r - 1), (r - 1, 0, 5)]:
            assert torch.allclose(model.features(_vertex(model, i, j, k))[0], table[i, j, k], atol=1e-5)
        # cell centre: the mean of the 8 corners
        centre = (_vertex(model, 4, 5, 6) + _vertex(model, 5, 6, 7)) / 2
        want = table[4:6, 5:7, 6:8].reshape(8, -1).mean(0)
        assert torch.allclose(model.features(centre)[0], want, atol=1e-5)
        # face mid-point between two vertices along x
        mid = (_vertex(model, 2, 9, 3) + _vertex(model, 3, 9, 3)) / 2
        assert torch.allclose(model.features(mid)[0], (table[2, 9, 3] + table[3, 9, 3]) / 2, atol=1e-5)
        # a general point: the explicit trilinear formula
        a, b, c = 0.2, 0.7, 0.4
        p = _vertex(model, 1, 2, 3) + torch.tensor([[a, b, c]]) * 2 / (r - 1)
        want = sum(
            (a if di else 1 - a) * (b if dj else 1 - b) * (c if dk else 1 - c) * table[1 + di, 2 + dj, 3 + dk]
            for di in (0, 1)
            for dj in (0, 1)
            for dk in (0, 1)
        )
        assert torch.allclose(model.features(p)[0], want, atol=1e-5)
        # outside [-1,1] the features are those of the clamped point
        out = torch.tensor([[1.7, -3.0, 0.1]])
        assert torch.allclose(model.features(out), model.features(out.clamp(-1, 1)))


def test_grid_gradient_touches_only_corner_rows(tiny_model: DualSDF) -> None:
    model = DualSDF(tiny_model.cfg, 2, sparse_grid=True)
    x = torch.rand(1, 10, 3) * 2 - 1
    _, s_ovf, _ = model(torch.tensor([1]), x)
    s_ovf.sum().backward()
    grad = model.grid.weight.grad
    assert grad is not None and grad.is_sparse
    rows = grad.coalesce().indices()[0].unique()
    assert 0 < rows.numel() <= 80
    dense = DualSDF(tiny_model.cfg, 2, sparse_grid=False)
    dense.load_state_dict(model.state_dict())
    _, s_dense, _ = dense(torch.tensor([1]), x)
    s_dense.sum().backward()
    assert torch.allclose(dense.grid.weight.grad, grad.to_dense(), atol=1e-6)


def test_add_shapes_keeps_old_codes() -> None:
    torch.manual_seed(0)
    model = DualSDF(get_preset("tiny").model, 2)
    old = model.codes.weight.detach().clone()
    model.add_shapes(3, torch.Generator().manual_seed(0))
    assert model.num_shapes == 5
    assert torch.equal(model.codes.weight[:2].detach(), old)
    new = model.codes.weight[2:].detach()
    assert float(new.abs().sum()) > 0 and float(new.norm(dim=1).max()) <= model.cfg.code_max_norm + 1e-6
