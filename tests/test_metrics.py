"""Evaluation metrics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import CompactSDFError
from compact_sdf.metrics import chamfer, evaluate_meshes, nearest, normal_consistency, point_metrics


def test_point_metrics_by_hand() -> None:
    pred = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    gt = np.array([[0.0, 0.0, 0.1], [1.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    out = point_metrics(pred, gt, taus=(0.05, 0.2))
    # pred->gt: 0.1, 0 (mean sq 0.005); gt->pred: 0.1, 0, 2 (mean sq 4.01/3)
    assert out["chamfer"] == pytest.approx(0.005 + 4.01 / 3)
    assert out["precision@0.05"] == pytest.approx(0.5)
    assert out["recall@0.05"] == pytest.approx(1 / 3)
    assert out["fscore@0.05"] == pytest.approx(0.4)
    assert out["precision@0.2"] == pytest.approx(1.0)
    assert out["recall@0.2"] == pytest.approx(2 / 3)
    assert out["fscore@0.2"] == pytest.approx(0.8)


def test_chamfer_is_symmetric_sum_of_squares() -> None:
    a = np.array([[0.0, 0.0, 0.0]])
    b = np.array([[0.0, 3.0, 4.0], [0.0, 0.0, 1.0]])
    assert chamfer(nearest(a, b)[0], nearest(b, a)[0]) == pytest.approx(1.0 + (25.0 + 1.0) / 2)


def test_normal_consistency_by_hand() -> None:
    pred_n = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    gt_n = np.array([[0.0, 0.0, -1.0], [0.0, 0.6, 0.8]])
    # pred 0 -> gt 1 (|cos| 0.8), pred 1 -> gt 0 (0); gt 0 -> pred 0 (1), gt 1 -> pred 0 (0.8)
    value = normal_consistency(pred_n, gt_n, np.array([1, 0]), np.array([0, 0]))
    assert value == pytest.approx(((0.8 + 0.0) / 2 + (1.0 + 0.8) / 2) / 2)


def _square(z: float, side: float = 2.0) -> trimesh.Trimesh:
    h = side / 2
    v = [[-h, -h, z], [h, -h, z], [h, h, z], [-h, h, z]]
    return trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)


def test_parallel_planes_in_normalised_units() -> None:
    """Two squares 0.1 apart in own units; the GT's normalisation scales by 1.8/2, so d = 0.09."""
    gt, pred = _square(0.0), _square(0.1)
    out = evaluate_meshes(pred, gt, samples=200_000, release_samples=20_000)
    d = 0.1 * Normalization.fit(gt.vertices).scale
    assert d == pytest.approx(0.09)
    assert out["chamfer"] == pytest.approx(2 * d * d, rel=0.02)
    # Release protocol: GT vertices are the 4 corners, so reconstruction samples sit a mean squared
    # 2 * 0.9^2 / 3 = 0.54 (uniform in a 0.9 x 0.9 quadrant) plus d^2 from them; corners see d^2.
    assert out["chamfer_release"] == pytest.approx(0.54 + 2 * d * d, rel=0.02)
    assert out["fscore@0.01"] == 0.0
    assert out["normal_consistency"] == pytest.approx(1.0)


def test_mesh_against_itself_is_near_perfect() -> None:
    gt = trimesh.creation.icosphere(subdivisions=3, radius=3.0)
    out = evaluate_meshes(gt, gt, samples=200_000, release_samples=20_000)
    assert out["chamfer"] < 1e-4  # the 200k-sample noise floor (method.md section 6), not zero
    assert out["fscore@0.01"] > 0.99
    assert out["normal_consistency"] > 0.99


def test_empty_reconstruction_is_a_clear_error() -> None:
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=int))
    with pytest.raises(CompactSDFError, match="empty mesh"):
        evaluate_meshes(empty, _square(0.0), samples=100)
