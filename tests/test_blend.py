"""Blends of shapes (``blend.py``) on an analytic two-branch model: the sparse mesh equals a dense
evaluation of the same field, an end is exactly that shape's fused field, the field moves
continuously with the weights, and the lattice memo evaluates each end vertex once."""

from __future__ import annotations

import numpy as np
import torch
from compact_sdf.config import ExtractConfig
from compact_sdf.extract.blend import EndMemo, blend_fields
from compact_sdf.extract.dense import dense_mesh
from compact_sdf.extract.fusion import extract_field
from compact_sdf.extract.lattice import Lattice
from test_extract_fusion import assert_same_mesh

WIDTH = 0.05
CFG = ExtractConfig(resolution=64, width=1.0)


class Analytic(torch.nn.Module):
    """s_g: a ball whose radius and x position follow the code; s_o: s_g plus ripples scaled by z[2]."""

    def __init__(self) -> None:
        super().__init__()
        self.ovf_points = 0

    @staticmethod
    def _code(z: torch.Tensor) -> torch.Tensor:
        return z[:, None, :] if z.dim() == 2 else z

    def sdf_gen(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        c = self._code(z)
        shift = torch.zeros_like(x)
        shift[..., 0] = 0.2 * c[..., 1]
        return (x - shift).norm(dim=-1) - (0.4 + 0.1 * c[..., 0])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*x.shape[:-1], 1)

    def sdf_ovf(self, z: torch.Tensor, x: torch.Tensor, feats: torch.Tensor | None = None) -> torch.Tensor:
        self.ovf_points += x[..., 0].numel()
        ripple = torch.sin(25 * x[..., 0]) * torch.cos(21 * x[..., 1])
        return self.sdf_gen(z, x) + 0.008 * self._code(z)[..., 2] * ripple


ENDS = torch.tensor([[0.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-0.5, 0.5, 0.5]])


def fields(weights: list[float], memos: list[EndMemo] | None = None):
    w = torch.tensor(weights)
    return blend_fields(Analytic(), w @ ENDS, ENDS, w, WIDTH, memos)


def test_the_sparse_blend_equals_its_dense_evaluation() -> None:
    gen, fused = fields([0.5, 0.3, 0.2])
    sparse = extract_field(gen, fused, CFG, band_width=WIDTH)
    dense = dense_mesh(gen, CFG, ovf_fn=fused, band_width=WIDTH)
    assert len(sparse.faces) > 1000
    assert_same_mesh(sparse, dense, tol=1e-5)
    memos = [EndMemo(CFG.resolution) for _ in ENDS]
    assert_same_mesh(extract_field(*fields([0.5, 0.3, 0.2], memos), CFG, band_width=WIDTH), dense, tol=1e-5)


def test_an_end_is_exactly_that_shapes_fused_field() -> None:
    model = Analytic()
    x = torch.rand(20_000, 3) * 2 - 1
    _, fused = fields([0.0, 1.0, 0.0])
    g, o = model.sdf_gen(ENDS[1], x), model.sdf_ovf(ENDS[1], x)
    want = torch.where(g.abs() <= WIDTH, o, g)
    assert torch.allclose(fused(x), want, atol=1e-6)


def test_the_field_moves_continuously_with_the_weights() -> None:
    x = torch.rand(20_000, 3) * 2 - 1
    _, at_end = fields([1.0, 0.0, 0.0])
    steps = []
    for eps in (1e-1, 1e-2, 1e-3):
        _, near = fields([1.0 - eps, eps, 0.0])
        steps.append(float((near(x) - at_end(x)).abs().max()))
    # Lipschitz in the weights: a thousandth of a step moves the field by about a thousandth as much
    assert steps[2] < 2e-3 and steps[2] < steps[1] < steps[0]
    assert steps[2] <= 0.02 * steps[0]


def test_the_memo_evaluates_each_end_vertex_once() -> None:
    memos = [EndMemo(CFG.resolution) for _ in ENDS]
    lat = Lattice(CFG.resolution)
    x = torch.from_numpy(lat.points(np.argwhere(np.ones((CFG.resolution + 1,) * 3, bool))[::97]))
    model = Analytic()
    first = memos[0].fields(model, ENDS[0], x)
    evaluated = model.ovf_points
    again = memos[0].fields(model, ENDS[0], x)
    assert model.ovf_points == evaluated == len(x)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
