"""The per-step 50/25/25 sampler."""

from __future__ import annotations

import pytest
import torch
from compact_sdf.data.sampler import BalancedSampler


def test_shares_are_half_near_quarter_outside_quarter_inside() -> None:
    sdf = torch.cat([torch.full((900,), 0.5), torch.full((50,), -0.4), torch.linspace(-0.05, 0.05, 50)])
    sampler = BalancedSampler(sdf, near_threshold=0.1)
    assert sampler.counts(1000) == [500, 250, 250]
    idx = sampler.sample(1000, torch.Generator().manual_seed(0))
    assert idx.dtype == torch.long and idx.shape == (1000,)
    picked = sdf[idx]
    assert (picked[:500].abs() <= 0.1).all()
    assert (picked[500:750] > 0).all() and (picked[750:] < 0).all()


def test_with_replacement_from_small_pools() -> None:
    sdf = torch.tensor([0.05, 0.5, -0.5])
    idx = BalancedSampler(sdf, 0.1).sample(400)
    assert set(idx.tolist()) == {0, 1, 2}


def test_empty_pool_gives_its_share_to_the_others() -> None:
    sdf = torch.tensor([0.01, 0.3, 0.7, 0.9])  # nothing inside
    sampler = BalancedSampler(sdf, 0.1)
    assert sampler.counts(1001) == [668, 333, 0]
    assert (sdf[sampler.sample(1001)] >= 0).all()
    assert BalancedSampler(torch.tensor([0.5, 0.6]), 0.1).counts(10) == [0, 10, 0]


def test_same_generator_seed_same_draw() -> None:
    sampler = BalancedSampler(torch.linspace(-1, 1, 101), 0.2)
    a = sampler.sample(64, torch.Generator().manual_seed(3))
    b = sampler.sample(64, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_empty_set_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty training set"):
        BalancedSampler(torch.zeros(0), 0.1)
