"""The search's rules read only the kept cells; they must equal the same rules over the whole lattice.

The references below are the whole-lattice forms (every cell, every corner view), written out
plainly; the search uses per-cell gathers of the kept cells and 64-bit reads of 8-flag rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from compact_sdf.extract.lattice import CORNERS, Lattice, corner_views
from compact_sdf.extract.search import _children_kept, _keep_cells, _slope_around, same_sign, steepest_slope


def _field(n: int, seed: int) -> np.ndarray:
    """A sphere's distance with noise and some vertices not evaluated (NaN), float32."""
    rng = np.random.default_rng(seed)
    p = np.indices((n + 1,) * 3).reshape(3, -1).T * (2.0 / n) - 1.0
    f = (np.linalg.norm(p, axis=1) - 0.5 + rng.normal(0, 0.02, len(p))).astype(np.float32)
    f[rng.random(len(f)) < 0.1] = np.nan
    return f.reshape((n + 1,) * 3)


def _beyond_ref(v: np.ndarray, margin: float, widths: tuple[float, float]) -> np.ndarray:
    return (v > margin + widths[0]) | (v < -(margin + widths[1]))


WIDTHS = [(0.0, 0.0), (0.05, 0.05), (0.08, 0.0)]


@pytest.mark.parametrize("widths", WIDTHS)
def test_keep_cells_equals_the_whole_lattice_rule(widths: tuple[float, float]) -> None:
    field = _field(24, 0)
    cells = np.random.default_rng(1).random((24,) * 3) < 0.6
    far = np.logical_or.reduce([_beyond_ref(v, 0.1, widths) for v in corner_views(field)])
    assert np.array_equal(_keep_cells(field, cells, 0.1, widths), cells & ~(same_sign(field) & far))


@pytest.mark.parametrize("widths", WIDTHS)
def test_children_kept_equals_the_whole_lattice_rule(widths: tuple[float, float]) -> None:
    parent_field = _field(16, 2)
    parents = np.random.default_rng(3).random((16,) * 3) < 0.7
    fine = Lattice(32)
    views, certain = corner_views(parent_field), same_sign(parent_field) & parents
    expected = np.zeros((32,) * 3, dtype=bool)
    for o in CORNERS:
        ruled_out = np.zeros_like(certain)
        for q, value in zip(CORNERS, views, strict=True):
            reach = (2.0 / 32) * float(np.sqrt(np.sum(np.where(o == q, 1.0, 4.0))))
            ruled_out |= _beyond_ref(value, 1.7 * reach, widths)
        expected[o[0] :: 2, o[1] :: 2, o[2] :: 2] = parents & ~(certain & ruled_out)
    assert np.array_equal(_children_kept(parent_field, parents, fine, 1.7, widths), expected)


def test_the_slope_around_new_vertices_is_the_slope_of_every_evaluated_edge() -> None:
    coarse = _field(16, 4)
    fine = np.full((33,) * 3, np.nan, dtype=np.float32)
    fine[::2, ::2, ::2] = coarse
    new = np.random.default_rng(5).random(fine.shape) < 0.3
    new[::2, ::2, ::2] = False
    fine[new] = _field(32, 6)[new]
    index = np.flatnonzero(new & ~np.isnan(fine))
    assert _slope_around(fine, index, 32) == pytest.approx(steepest_slope(fine, 32), rel=1e-6)
