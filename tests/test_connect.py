"""Joining the parts a decoded field nearly joins (``connect.join_parts``), on analytic fields that
stress what in-betweens do: a feature fading along a blend pinches off at its neck first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compact_sdf.config import ExtractConfig
from compact_sdf.errors import InputError
from compact_sdf.extract.connect import join_parts
from compact_sdf.extract.dense import dense_mesh
from compact_sdf.extract.fusion import extract_field
from compact_sdf.extract.lattice import Lattice, evaluate
from compact_sdf.extract.mesh_quality import quality

CFG = ExtractConfig(resolution=64)


def balls(gap: float):
    """Two balls of radius 0.3 whose surfaces are ``gap`` apart."""

    def f(x: torch.Tensor) -> torch.Tensor:
        a = (x - torch.tensor([-0.3 - gap / 2, 0.0, 0.0])).norm(dim=-1) - 0.3
        b = (x - torch.tensor([0.3 + gap / 2, 0.0, 0.0])).norm(dim=-1) - 0.3
        return torch.minimum(a, b)

    return f


def capsule(x: torch.Tensor, a: list[float], b: list[float], r: float) -> torch.Tensor:
    pa, ba = x - torch.tensor(a), torch.tensor(b) - torch.tensor(a)
    t = ((pa @ ba) / (ba @ ba)).clamp(0, 1)
    return (pa - t[:, None] * ba).norm(dim=-1) - r


def eared(x: torch.Tensor) -> torch.Tensor:
    """A ball with an ear on a thin neck (the neck thinner than the ear), like a bunny's."""
    body = x.norm(dim=-1) - 0.45
    neck = capsule(x, [0.0, 0.4, 0.0], [0.0, 0.62, 0.0], 0.035)
    ear = capsule(x, [0.0, 0.62, 0.0], [0.0, 0.85, 0.0], 0.09)
    return torch.minimum(body, torch.minimum(neck, ear))


def box(x: torch.Tensor) -> torch.Tensor:
    q = x.abs() - torch.tensor([0.5, 0.35, 0.5])
    return q.clamp_min(0).norm(dim=-1) + q.max(dim=-1).values.clamp_max(0)


def blend(t: float):
    return lambda x: (1 - t) * eared(x) + t * box(x)


def parts(mesh) -> int:
    q = quality(mesh.vertices, mesh.faces)
    assert q.manifold and q.watertight
    return q.components


def test_parts_closer_than_the_gap_are_joined_further_ones_are_not() -> None:
    assert parts(extract_field(balls(0.05), None, CFG)) == 2
    assert parts(extract_field(balls(0.05), None, CFG, join_gap=0.15)) == 1
    assert parts(extract_field(balls(0.4), None, CFG, join_gap=0.15)) == 2


def test_a_fading_ear_stays_attached_along_a_blend() -> None:
    """The linear blend of the eared ball into a box pinches the neck while the ear still shows:
    without joining some in-between is in two parts; with it, every one is one body."""
    ts = np.linspace(0.1, 0.9, 9)
    plain = [parts(extract_field(blend(t), None, CFG)) for t in ts]
    joined = [parts(extract_field(blend(t), None, CFG, join_gap=0.15)) for t in ts]
    assert max(plain) >= 2, plain
    assert joined == [1] * len(ts), joined


def test_an_enclosed_void_is_filled() -> None:
    def shell(x: torch.Tensor) -> torch.Tensor:
        r = x.norm(dim=-1)
        return torch.maximum(r - 0.6, 0.4 - r)

    assert parts(extract_field(shell, None, CFG)) == 2
    assert parts(extract_field(shell, None, CFG, join_gap=0.1)) == 1


def test_join_parts_changes_only_the_gap_and_the_void() -> None:
    """On a dense lattice: the body away from the tube keeps its values; the report counts."""
    lat = Lattice(48)
    idx = np.indices((49,) * 3).reshape(3, -1).T
    field = evaluate(balls(0.08), lat.points(idx), 1 << 16, "cpu").reshape((49,) * 3)
    out = join_parts(field, 0.15)
    assert len(out.levels) == 1 and out.apart == 0 and out.voids == 0
    assert 0.0 < out.levels[0] <= 0.15
    np.testing.assert_array_equal(out.field[~out.touched], field[~out.touched])
    ys = np.argwhere(out.touched)
    assert np.all(np.abs(lat.points(ys)[:, 0]) < 0.2)  # only near the gap between the balls


def test_sparse_join_equals_dense_join() -> None:
    """The sparse search keeps exact values out to the gap, so joining its field gives the dense result."""
    lat = Lattice(CFG.resolution)
    idx = np.indices((CFG.resolution + 1,) * 3).reshape(3, -1).T
    f = blend(0.5)
    dense = evaluate(f, lat.points(idx), 1 << 16, "cpu").reshape((CFG.resolution + 1,) * 3)
    joined = join_parts(dense, 0.15)
    expect = dense_mesh(lambda x: torch.from_numpy(_lookup(joined.field, x, CFG.resolution)), CFG, "cpu")
    got = extract_field(f, None, CFG, join_gap=0.15)
    assert parts(got) == parts(expect) == 1
    assert len(got.faces) == len(expect.faces)
    np.testing.assert_allclose(np.sort(got.vertices, axis=0), np.sort(expect.vertices, axis=0), atol=1e-5)


def _lookup(field: np.ndarray, x: torch.Tensor, cells: int) -> np.ndarray:
    ijk = np.rint((x.numpy().astype(np.float64) + 1.0) * cells / 2.0).astype(np.int64)
    return field[tuple(ijk.T)]


def test_a_fused_field_joins_as_its_generalization_field_does() -> None:
    """With s_o = s_g the fused field is s_g everywhere, so the blend's join (the fused path) must
    give exactly the s_g path's joined mesh: one body from two balls 0.05 apart."""
    alone = extract_field(balls(0.05), None, CFG, join_gap=0.1)
    fused = extract_field(balls(0.05), balls(0.05), CFG, band_width=0.02, join_gap=0.1)
    assert parts(alone) == parts(fused) == 1
    assert len(fused.faces) == len(alone.faces)
    np.testing.assert_allclose(np.sort(fused.vertices, axis=0), np.sort(alone.vertices, axis=0), atol=1e-5)
    assert parts(extract_field(balls(0.05), balls(0.05), CFG, band_width=0.02)) == 2  # no join asked


def test_the_interpolate_request_bounds_the_gap() -> None:
    from compact_sdf.tasks import InterpolateRequest

    assert InterpolateRequest("m", ("a", "b"), join_gap=0.0).join_gap == 0.0
    for bad in (0.9, -0.1, float("nan")):
        with pytest.raises(InputError, match="join_gap"):
            InterpolateRequest("m", ("a", "b"), join_gap=bad)


def test_the_memory_estimate_covers_the_join() -> None:
    """``footprint.JOIN_BYTES_PER_VERTEX`` (what the service adds for joined in-betweens) bounds the
    join's measured peak on a lattice where a part is joined and a void filled."""
    import tracemalloc

    from compact_sdf import footprint
    from compact_sdf.config import Config

    n = 64
    idx = np.indices((n + 1,) * 3).reshape(3, -1).T
    field = evaluate(balls(0.08), Lattice(n).points(idx), 1 << 16, "cpu").reshape((n + 1,) * 3)
    tracemalloc.start()
    try:
        out = join_parts(field, 0.15)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(out.levels) == 1
    assert peak <= footprint.JOIN_BYTES_PER_VERTEX * (n + 1) ** 3
    cfg = Config()
    plain, joined = (footprint.extract_estimate(cfg, 256, join=j).total for j in (False, True))
    assert joined - plain == footprint.JOIN_BYTES_PER_VERTEX * 257**3
