"""Ground truth against analytic SDFs and a brute-force exact reference; sign conventions."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from compact_sdf.data.groundtruth import point_triangle_distance, signed_distance, unsigned_distance


def _points(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 3))


def test_box_matches_analytic_sdf_exactly() -> None:
    half = np.array([0.5, 0.3, 0.2])
    box = trimesh.creation.box(extents=2 * half)
    p = _points(20_000)
    q = np.abs(p) - half
    exact = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)
    got = signed_distance(box.vertices, box.faces, p, coherent=False)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, exact, atol=1e-6)


def test_sphere_matches_analytic_sdf_within_tessellation_error() -> None:
    r = 0.5
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=r)
    p = _points(20_000, seed=1)
    exact = np.linalg.norm(p, axis=1) - r
    got = signed_distance(sphere.vertices, sphere.faces, p, coherent=False)
    # the polyhedron lies inside the sphere by at most its chord sag (< 3e-4 for 20k faces at r=0.5)
    assert np.abs(got - exact).max() < 3e-4
    clear = np.abs(exact) > 3e-4
    assert np.array_equal(got[clear] < 0, exact[clear] < 0)


def test_torus_matches_analytic_sdf_and_inside_is_negative() -> None:
    big, small = 0.6, 0.2
    torus = trimesh.creation.torus(
        major_radius=big, minor_radius=small, major_sections=256, minor_sections=128
    )
    p = _points(20_000, seed=2)
    exact = np.hypot(np.hypot(p[:, 0], p[:, 1]) - big, p[:, 2]) - small
    got = signed_distance(torus.vertices, torus.faces, p, coherent=False)
    assert np.abs(got - exact).max() < 5e-4
    clear = np.abs(exact) > 5e-4
    assert np.array_equal(got[clear] < 0, exact[clear] < 0)
    assert (exact < -5e-4).sum() > 100  # the test really has inside points


def test_magnitude_matches_brute_force_exact_distance() -> None:
    mesh = trimesh.creation.capsule(height=0.6, radius=0.3, count=(16, 16))
    p = _points(300, seed=3)
    reference = point_triangle_distance(p, mesh.vertices[mesh.faces]).min(axis=1)
    for sign in ("pseudonormal", "winding"):
        got = signed_distance(mesh.vertices, mesh.faces, p, sign=sign)
        np.testing.assert_allclose(np.abs(got), reference, atol=1e-6, err_msg=sign)
    np.testing.assert_allclose(unsigned_distance(mesh.vertices, mesh.faces, p), reference, atol=1e-6)


def test_brute_force_reference_handles_every_region() -> None:
    tri = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    p = np.array(
        [
            [0.2, 0.2, 0.5],
            [-1.0, -1.0, 0.0],
            [2.0, 0.0, 0.0],
            [0.0, 2.0, 0.0],
            [0.5, -1.0, 0.0],
            [-1.0, 0.5, 0.0],
            [1.0, 1.0, 0.0],
        ]
    )
    want = [0.5, np.sqrt(2), 1.0, 1.0, 1.0, 1.0, np.sqrt(0.5)]
    np.testing.assert_allclose(point_triangle_distance(p, tri)[:, 0], want, atol=1e-12)


def test_winding_sign_survives_a_hole() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    keep = sphere.triangles_center[:, 2] < 0.48  # cut a small cap off the top
    open_sphere = trimesh.Trimesh(sphere.vertices, sphere.faces[keep])
    assert not open_sphere.is_watertight
    p = np.array([[0.0, 0.0, 0.0], [0.1, 0.1, -0.2], [0.0, 0.0, 0.8], [0.7, 0.0, 0.0]])
    got = signed_distance(open_sphere.vertices, open_sphere.faces, p, sign="winding")
    assert list(got < 0) == [True, True, False, False]


def test_unknown_sign_mode_is_refused() -> None:
    box = trimesh.creation.box()
    with pytest.raises(ValueError, match="unknown sign mode"):
        signed_distance(box.vertices, box.faces, np.zeros((1, 3)), sign="parity")  # type: ignore[arg-type]
