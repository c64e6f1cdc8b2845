"""Interpolation of latent codes: weights, endpoints, and spherical interpolation by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import InputError
from compact_sdf.extract.interpolate import interpolate_codes, interpolate_normalizations, path_weights


def test_path_weights_walk_through_the_shapes() -> None:
    assert np.allclose(path_weights(2, 3), np.array([[1, 0], [0.5, 0.5], [0, 1]]))
    expected = np.array([[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1]])
    assert np.allclose(path_weights(3, 5), expected)


@pytest.mark.parametrize("mode", ["linear", "slerp"])
def test_endpoints_are_the_codes_themselves(mode: str) -> None:
    codes = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    out = interpolate_codes(codes, 7, mode)
    assert out.shape == (7, 16)
    assert torch.equal(out[0], codes[0]) and torch.equal(out[-1], codes[1])


def test_linear_midpoint() -> None:
    codes = torch.tensor([[0.0, 2.0], [4.0, 0.0]])
    assert torch.allclose(interpolate_codes(codes, [[0.25, 0.75]], "linear"), torch.tensor([[3.0, 0.5]]))


def test_slerp_by_hand() -> None:
    """Unit x and 2 * unit y: at t the direction turns by t * 90 degrees, the norm goes 1 -> 2."""
    codes = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    for t in (0.25, 0.5, 0.9):
        z = interpolate_codes(codes, [[1 - t, t]], "slerp")[0]
        r = (1 - t) * 1.0 + t * 2.0
        angle = t * math.pi / 2
        expected = torch.tensor([r * math.cos(angle), r * math.sin(angle), 0.0], dtype=torch.float64)
        assert torch.allclose(z, expected, atol=1e-9)


def test_slerp_of_three_codes_is_symmetric() -> None:
    codes = torch.eye(3, dtype=torch.float64)
    z = interpolate_codes(codes, [[1 / 3, 1 / 3, 1 / 3]], "slerp")[0]
    assert torch.allclose(z, torch.full((3,), 1 / math.sqrt(3), dtype=torch.float64), atol=1e-9)


def test_bad_weights_and_modes() -> None:
    codes = torch.randn(2, 4)
    with pytest.raises(InputError, match="sum to 1"):
        interpolate_codes(codes, [[0.5, 0.6]])
    with pytest.raises(InputError, match="one per shape"):
        interpolate_codes(codes, [[0.2, 0.3, 0.5]])
    with pytest.raises(InputError, match="mode"):
        interpolate_codes(codes, 3, "cubic")
    with pytest.raises(InputError, match="at least 2 steps"):
        interpolate_codes(codes, 1)


def test_normalisations_blend_centres_linearly_and_scales_geometrically() -> None:
    a = Normalization(center=(0.0, 0.0, 0.0), scale=1.0)
    b = Normalization(center=(2.0, 4.0, -2.0), scale=4.0)
    mid = interpolate_normalizations([a, b], np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]))
    assert mid[0] == a and mid[2] == b
    assert mid[1].center == pytest.approx((1.0, 2.0, -1.0)) and mid[1].scale == pytest.approx(2.0)
