"""Bandwidth-constrained sampling: the band covers the surface, is exact, has no duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from compact_sdf.config import SamplingConfig
from compact_sdf.data.groundtruth import signed_distance
from compact_sdf.data.load import load_mesh
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.data.sampling import area_samples, prepare_samples, surface_cover

FINE = 256
CFG = SamplingConfig(
    coarse_cells=32,
    fine_cells=FINE,
    band_width=4.5 * 2 / FINE,
    surface_samples=20_000,
    uniform_samples=10_000,
)


@pytest.fixture(scope="module")
def knight(shared_meshes: Path) -> trimesh.Trimesh:
    return load_mesh(shared_meshes / "knight_small.ply")


@pytest.fixture(scope="module")
def prepared(knight: trimesh.Trimesh) -> ShapeSamples:
    return prepare_samples(knight, CFG, "knight")


def fine_index(points: np.ndarray, cells: int) -> np.ndarray:
    """Flat fine-lattice index of each point; asserts the points sit on that lattice."""
    k = np.rint((points.astype(np.float64) + 1.0) * cells / 2.0).astype(np.int64)
    assert np.allclose(-1.0 + k * 2.0 / cells, points, atol=1e-6)
    return np.ravel_multi_index(tuple(k.T), (cells + 1,) * 3)


def unit_mesh(samples: ShapeSamples, mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    return samples.normalization.to_unit(mesh.vertices), np.asarray(mesh.faces)


def check_band_covers_surface(samples: ShapeSamples, mesh: trimesh.Trimesh, cfg: SamplingConfig) -> None:
    """All 8 corners of the fine voxel around every area-uniform surface sample are in the set."""
    v, f = unit_mesh(samples, mesh)
    surface = area_samples(v, f, 50_000, np.random.default_rng(7))
    n = cfg.fine_cells
    base = np.floor((surface + 1.0) * n / 2.0).astype(np.int64)
    present = fine_index(samples.ovf_points, n)
    for corner in np.ndindex(2, 2, 2):
        flat = np.ravel_multi_index(tuple((base + np.array(corner)).T), (n + 1,) * 3)
        assert np.isin(flat, present).all(), f"voxel corner {corner} missing for some surface samples"


def test_normalisation_fits_the_unit_cube(prepared: ShapeSamples, knight: trimesh.Trimesh) -> None:
    unit = prepared.normalization.to_unit(knight.vertices)
    assert np.ptp(unit, axis=0).max() == pytest.approx(1.8)
    assert np.abs(unit).max() == pytest.approx(0.9)
    np.testing.assert_allclose(prepared.normalization.from_unit(unit), knight.vertices, atol=1e-12)


def test_band_covers_every_surface_sample(prepared: ShapeSamples, knight: trimesh.Trimesh) -> None:
    check_band_covers_surface(prepared, knight, CFG)


@pytest.mark.slow
def test_band_covers_surface_at_512(knight: trimesh.Trimesh) -> None:
    cfg = SamplingConfig(
        coarse_cells=16, fine_cells=512, band_width=2.0 * 2 / 512, surface_samples=10, uniform_samples=10
    )
    check_band_covers_surface(prepare_samples(knight, cfg, "knight"), knight, cfg)


def test_band_is_exactly_the_distance_test(prepared: ShapeSamples, knight: trimesh.Trimesh) -> None:
    """Every lattice point near the surface with |sdf| <= band_width is present, none beyond it."""
    v, f = unit_mesh(prepared, knight)
    n, w = CFG.fine_cells, CFG.band_width
    rng = np.random.default_rng(3)
    around = area_samples(v, f, 4_000, rng) + rng.uniform(-1.5 * w, 1.5 * w, (4_000, 3))
    k = np.unique(np.rint((around + 1.0) * n / 2.0).astype(np.int64), axis=0)
    sdf = signed_distance(v, f, -1.0 + k * 2.0 / n)
    flat = np.ravel_multi_index(tuple(k.T), (n + 1,) * 3)
    present = fine_index(prepared.ovf_points, n)
    inside_band = np.abs(sdf) <= w
    assert inside_band.sum() > 1000 and (~inside_band).sum() > 1000
    assert np.isin(flat[inside_band], present).all()
    coarse_step = n // CFG.coarse_cells
    off_coarse = (k % coarse_step != 0).any(axis=1)  # only coarse-lattice points may lie outside the band
    assert not np.isin(flat[~inside_band & off_coarse], present).any()


def test_all_signed_distances_are_exact(prepared: ShapeSamples, knight: trimesh.Trimesh) -> None:
    v, f = unit_mesh(prepared, knight)
    rng = np.random.default_rng(5)
    for points, sdf in ((prepared.ovf_points, prepared.ovf_sdf), (prepared.gen_points, prepared.gen_sdf)):
        pick = rng.choice(len(points), 3000, replace=False)
        np.testing.assert_allclose(sdf[pick], signed_distance(v, f, points[pick], coherent=False), atol=1e-6)
    assert prepared.ovf_points.dtype == prepared.ovf_sdf.dtype == np.float32
    assert (prepared.ovf_sdf < 0).sum() > 1000  # inside is negative and present


@pytest.mark.parametrize(("coarse", "fine"), [(32, 128), (64, 96)])
def test_overfitting_set_has_no_duplicates(knight: trimesh.Trimesh, coarse: int, fine: int) -> None:
    cfg = SamplingConfig(
        coarse_cells=coarse, fine_cells=fine, band_width=3 * 2 / fine, surface_samples=10, uniform_samples=10
    )
    s = prepare_samples(knight, cfg, "k")
    rounded = np.round(s.ovf_points.astype(np.float64) * 1e5).astype(np.int64)
    assert len(np.unique(rounded, axis=0)) == len(rounded)
    on_fine = np.isclose(
        (s.ovf_points + 1.0) * fine / 2.0, np.rint((s.ovf_points + 1.0) * fine / 2.0), atol=1e-4
    ).all(1)
    band = on_fine & (np.abs(s.ovf_sdf) <= cfg.band_width)
    shared = band & np.isclose(
        (s.ovf_points + 1.0) * coarse / 2.0, np.rint((s.ovf_points + 1.0) * coarse / 2.0), atol=1e-4
    ).all(1)
    assert shared.sum() > 0  # the lattices really overlap, so dedupe was exercised
    assert len(s.ovf_points) == band.sum() + (coarse + 1) ** 3 - shared.sum()


def test_generalization_set(prepared: ShapeSamples) -> None:
    assert len(prepared.gen_points) == CFG.surface_samples + CFG.uniform_samples
    assert np.abs(prepared.gen_points).max() <= 1.0
    near = np.abs(prepared.gen_sdf[: CFG.surface_samples])
    far = np.abs(prepared.gen_sdf[CFG.surface_samples :])
    assert np.median(near) < CFG.surface_sigma < np.median(far)


def test_inverted_mesh_gives_the_same_signs(knight: trimesh.Trimesh) -> None:
    cfg = SamplingConfig(
        coarse_cells=16, fine_cells=32, band_width=3 * 2 / 32, surface_samples=500, uniform_samples=500
    )
    flipped = trimesh.Trimesh(knight.vertices, knight.faces[:, ::-1], process=False)
    a, b = prepare_samples(knight, cfg, "a"), prepare_samples(flipped, cfg, "b")
    np.testing.assert_array_equal(a.ovf_sdf, b.ovf_sdf)
    np.testing.assert_array_equal(a.gen_sdf, b.gen_sdf)


def test_open_mesh_gets_winding_sign() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3)
    open_sphere = trimesh.Trimesh(
        sphere.vertices, sphere.faces[sphere.triangles_center[:, 2] < 0.9], process=False
    )
    cfg = SamplingConfig(
        coarse_cells=16,
        fine_cells=32,
        band_width=3 * 2 / 32,
        surface_samples=500,
        uniform_samples=500,
        allow_open=True,
    )
    s = prepare_samples(open_sphere, cfg, "open")
    own = s.normalization.from_unit(s.ovf_points)  # the sphere's own units
    radius = np.linalg.norm(own, axis=1)
    clear = (np.abs(radius - 1.0) > 0.05) & (own[:, 2] < 0.6)  # the winding number is ~1/2 in the hole
    assert (radius[clear] < 1.0).sum() > 100
    assert np.array_equal((s.ovf_sdf < 0)[clear], (radius < 1.0)[clear])


def test_progress_reports_stages_in_order(knight: trimesh.Trimesh) -> None:
    seen: list[tuple[str, float]] = []
    cfg = SamplingConfig(
        coarse_cells=16, fine_cells=32, band_width=3 * 2 / 32, surface_samples=500, uniform_samples=500
    )
    prepare_samples(knight, cfg, "k", progress=lambda stage, fraction: seen.append((stage, fraction)))
    assert all(0.0 <= fraction <= 1.0 for _, fraction in seen)
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions)  # one bar over every stage: it never goes back
    assert seen[-1] == ("done", 1.0)
    stages = list(dict.fromkeys(stage for stage, _ in seen))
    assert stages.index("band: exact distance") < stages.index("generalization set")


def test_surface_cover_spacing_bound() -> None:
    """Every point of a sliver and of a fat triangle lies within the spacing of a cover point."""
    v = np.array([[0, 0, 0], [1.0, 0, 0], [0.5, 0.003, 0], [0, 0.4, 0.2]])
    f = np.array([[0, 1, 2], [0, 1, 3]])
    spacing = 0.02
    cover = surface_cover(v, f, spacing)
    probe = area_samples(v, f, 20_000, np.random.default_rng(0))
    from scipy.spatial import cKDTree

    assert cKDTree(cover).query(probe)[0].max() <= spacing
    assert len(cover) < 4 * (1.0 / spacing) ** 2  # slivers stay cheap


def test_coarse_points_outside_the_band_are_exact(prepared: ShapeSamples, knight: trimesh.Trimesh) -> None:
    """The flood-fill sign + fcpw distance path agrees with the direct libigl query."""
    v, f = unit_mesh(prepared, knight)
    far = np.abs(prepared.ovf_sdf) > CFG.band_width  # only coarse points lie outside the band
    assert far.sum() > 20_000
    direct = signed_distance(v, f, prepared.ovf_points[far])
    np.testing.assert_allclose(prepared.ovf_sdf[far], direct, atol=1e-6)


def test_cavity_keeps_its_own_sign() -> None:
    """A hollow ball: the cavity is outside the solid though enclosed, so its region sign is +."""
    outer = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    inner = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    inner.invert()
    hollow = trimesh.util.concatenate([outer, inner])
    assert hollow.is_watertight and hollow.volume > 0
    cfg = SamplingConfig(
        coarse_cells=16, fine_cells=32, band_width=3 * 2 / 32, surface_samples=10, uniform_samples=10
    )
    s = prepare_samples(hollow, cfg, "hollow")
    radius = np.linalg.norm(s.normalization.from_unit(s.ovf_points), axis=1)
    clear = (np.abs(radius - 1.0) > 0.05) & (np.abs(radius - 0.5) > 0.05)
    want_inside = (radius > 0.5) & (radius < 1.0)
    assert (clear & (radius < 0.45)).sum() > 10  # the cavity really has lattice points
    assert np.array_equal((s.ovf_sdf < 0)[clear], want_inside[clear])


def test_preparing_several_meshes_names_each_and_never_goes_back(knight: trimesh.Trimesh, tmp_path) -> None:
    """What a train job's preparation shows: the shape being prepared, and a bar that only grows."""
    from compact_sdf.config import get_preset
    from compact_sdf.tasks import load_samples

    paths = [tmp_path / "horse.ply", tmp_path / "ball.ply"]
    knight.export(paths[0])
    trimesh.creation.icosphere(subdivisions=2).export(paths[1])
    cfg = get_preset("tiny").override({"sampling.surface_samples": 2000, "sampling.uniform_samples": 500})
    seen: list[tuple[str, float]] = []
    load_samples([(None, str(paths[0])), ("ball", str(paths[1]))], cfg, str(tmp_path / "cache"),
                 lambda stage, fraction: seen.append((stage, fraction)))  # fmt: skip
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(stage.startswith(("horse (1/2): ", "ball (2/2): ")) for stage, _ in seen)
    assert any(stage.startswith("ball (2/2): band") for stage, _ in seen)
