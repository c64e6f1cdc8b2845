"""Bandwidth-constrained training sets with exact signed distances (method.md section 3).

Overfitting set: the uniform (coarse_cells+1)^3 lattice plus every fine-lattice point with
|sdf| <= band_width, without duplicates. The band is found exactly and without per-point work on
the whole 513^3 lattice: each triangle is covered by points no further than half a fine voxel apart,
their voxels are marked and dilated by the band width plus that slack (a provable superset of the
band), and only those candidates get an exact distance query, in lattice order, which the AABB
tree answers several times faster than scattered points. Candidates outside the band are dropped
(or reused for coinciding coarse points). Mesh vertices play no part, so long triangles leave no holes.
Coarse points outside the band get their distance from fcpw (faster far from the surface) and
their sign from the connected region of the lattice they lie in (see ``flood_fill_sdf``).

Generalization set: area-uniform surface samples with N(0, sigma) offsets plus uniform points,
clipped to [-1,1]^3.
"""

from __future__ import annotations

import math

import numpy as np
import trimesh
from scipy import ndimage

from compact_sdf.config import SamplingConfig
from compact_sdf.data.groundtruth import SignMode, signed_distance, unsigned_distance
from compact_sdf.data.load import mesh_hash
from compact_sdf.data.normalize import Normalization
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.progress import Progress


def prepare_samples(
    mesh: trimesh.Trimesh, cfg: SamplingConfig, name: str, progress: Progress | None = None
) -> ShapeSamples:
    """Normalise the mesh and build both training sets with exact signed distances."""
    report = _staged(progress)
    norm = Normalization.fit(mesh.vertices)
    vertices = norm.to_unit(mesh.vertices)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    sign: SignMode = "pseudonormal" if mesh.is_watertight else "winding"
    if mesh.is_watertight and mesh.volume < 0:  # inward normals: flip so inside stays negative
        faces = faces[:, ::-1].copy()
    band_idx, band_sdf, cand_idx, cand_sdf = band_samples(vertices, faces, cfg, sign, report)
    coarse_pts, coarse_sdf = coarse_samples(vertices, faces, cfg, sign, cand_idx, cand_sdf, report)
    ovf_points = np.concatenate([lattice_points(band_idx, cfg.fine_cells), coarse_pts])
    ovf_sdf = np.concatenate([band_sdf, coarse_sdf])
    gen_points, gen_sdf = generalization_samples(vertices, faces, cfg, sign, report)
    report("done", 1.0)
    return ShapeSamples(
        name=name,
        mesh_hash=mesh_hash(mesh),
        normalization=norm,
        ovf_points=ovf_points,
        ovf_sdf=ovf_sdf,
        gen_points=gen_points,
        gen_sdf=gen_sdf,
    )


# each stage's stretch of the one bar prepare_samples reports (about their share of the time)
STAGES = {
    "band: covering the surface": (0.0, 0.05),
    "band: dilating": (0.05, 0.1),
    "band: exact distance": (0.1, 0.55),
    "coarse lattice: exact distance": (0.55, 0.7),
    "generalization set": (0.7, 1.0),
    "done": (1.0, 1.0),
}


def _staged(progress: Progress | None) -> Progress:
    """``progress`` with each stage's own 0..1 mapped into its stretch (``STAGES``), so the bar only grows."""
    if progress is None:
        return lambda stage, fraction: None

    def report(stage: str, fraction: float) -> None:
        lo, hi = STAGES.get(stage, (0.0, 1.0))
        progress(stage, lo + (hi - lo) * min(max(fraction, 0.0), 1.0))

    return report


def band_samples(
    vertices: np.ndarray, faces: np.ndarray, cfg: SamplingConfig, sign: SignMode, report: Progress
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fine-lattice flat indices with |sdf| <= band_width and their sdf; also all candidates tested."""
    n = cfg.fine_cells
    h = 2.0 / n
    report("band: covering the surface", 0.0)
    cover = surface_cover(vertices, faces, spacing=h / 2)
    radius = math.floor((cfg.band_width + h / 2) / h + 0.5 + 1e-9)
    k = np.clip(np.rint((cover + 1.0) / h).astype(np.int64), 0, n)
    del cover
    # Work in the lattice box around the surface (plus the dilation) rather than all (n+1)^3.
    lo = np.maximum(k.min(axis=0) - radius, 0)
    hi = np.minimum(k.max(axis=0) + radius, n)
    mask = np.zeros(tuple(hi - lo + 1), dtype=np.uint8)
    k -= lo
    mask[k[:, 0], k[:, 1], k[:, 2]] = 1
    del k
    report("band: dilating", 0.0)
    for axis in range(3):
        mask = ndimage.maximum_filter1d(mask, 2 * radius + 1, axis=axis, mode="constant")
    local = np.nonzero(mask)
    del mask
    cand_idx = np.ravel_multi_index(tuple(ax + o for ax, o in zip(local, lo, strict=True)), (n + 1,) * 3)
    del local
    cand_sdf = signed_distance(
        vertices, faces, lattice_points(cand_idx, n), sign=sign, progress=report, stage="band: exact distance"
    )
    keep = np.abs(cand_sdf) <= cfg.band_width
    return cand_idx[keep], cand_sdf[keep], cand_idx, cand_sdf


def coarse_samples(
    vertices: np.ndarray,
    faces: np.ndarray,
    cfg: SamplingConfig,
    sign: SignMode,
    cand_idx: np.ndarray,
    cand_sdf: np.ndarray,
    report: Progress,
) -> tuple[np.ndarray, np.ndarray]:
    """The uniform coarse lattice minus points already in the band; reuses computed candidates."""
    c, n = cfg.coarse_cells, cfg.fine_cells
    coarse = np.arange((c + 1) ** 3, dtype=np.int64)
    i, j, k = np.unravel_index(coarse, (c + 1,) * 3)
    ijk = np.stack([i, j, k], axis=1)
    points = (-1.0 + ijk * (2.0 / c)).astype(np.float32)
    sdf = np.full(len(coarse), np.nan, dtype=np.float32)
    on_fine = np.flatnonzero(((ijk * n) % c == 0).all(axis=1))  # coarse points that are fine points too
    fine = np.ravel_multi_index(tuple((ijk[on_fine] * n // c).T), (n + 1,) * 3)
    pos = np.minimum(np.searchsorted(cand_idx, fine), max(len(cand_idx) - 1, 0))
    found = cand_idx[pos] == fine if len(cand_idx) else np.zeros(len(fine), dtype=bool)
    sdf[on_fine[found]] = cand_sdf[pos[found]]
    drop = np.zeros(len(coarse), dtype=bool)
    drop[on_fine[found]] = np.abs(cand_sdf[pos[found]]) <= cfg.band_width  # already in the band set
    todo = np.isnan(sdf)  # never dropped: every coarse point in the band was a candidate
    stage = "coarse lattice: exact distance"
    if sign == "pseudonormal" and n % c == 0 and cfg.band_width >= 1.0 / c:
        sdf[todo] = flood_fill_sdf(vertices, faces, points, todo, c, report, stage)
    else:
        sdf[todo] = signed_distance(vertices, faces, points[todo], sign=sign, progress=report, stage=stage)
    return points[~drop], sdf[~drop]


def flood_fill_sdf(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    unknown: np.ndarray,
    cells: int,
    report: Progress,
    stage: str,
) -> np.ndarray:
    """Signed distance of the coarse points outside the band: fast unsigned query, sign by region.

    Two 6-neighbours with opposite signs straddle the surface, so one of them lies within half a
    coarse cell of it, inside the band (band_width >= 1/cells), and is already known. Hence the
    sign is constant on each 6-connected region of unknown points, and one exact query per region
    (outside, inside, each cavity) gives it. Only valid for closed meshes.
    """
    labels, _ = ndimage.label(unknown.reshape((cells + 1,) * 3))
    region = labels.reshape(-1)[unknown]  # 1..count for each unknown point
    first = np.unique(region, return_index=True)[1]  # one representative per region, in label order
    pts = points[unknown]
    region_sign = np.sign(signed_distance(vertices, faces, pts[first], coherent=False))
    return unsigned_distance(vertices, faces, pts, progress=report, stage=stage) * region_sign[region - 1]


def generalization_samples(
    vertices: np.ndarray, faces: np.ndarray, cfg: SamplingConfig, sign: SignMode, report: Progress
) -> tuple[np.ndarray, np.ndarray]:
    """Surface samples with Gaussian offsets plus uniform points in [-1,1]^3, with exact sdf."""
    rng = np.random.default_rng(cfg.seed)
    surface = area_samples(vertices, faces, cfg.surface_samples, rng)
    near = surface + rng.normal(0.0, cfg.surface_sigma, surface.shape)
    uniform = rng.uniform(-1.0, 1.0, (cfg.uniform_samples, 3))
    points = np.clip(np.concatenate([near, uniform]), -1.0, 1.0)
    sdf = signed_distance(
        vertices, faces, points, sign=sign, coherent=False, progress=report, stage="generalization set"
    )
    return points.astype(np.float32), sdf


def lattice_points(flat: np.ndarray, cells: int) -> np.ndarray:
    """Coordinates (float32) of flat indices into the (cells+1)^3 lattice over [-1,1]^3."""
    ijk = np.stack(np.unravel_index(flat, (cells + 1,) * 3), axis=1)
    return (-1.0 + ijk * (2.0 / cells)).astype(np.float32)


def area_samples(vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points uniform by area on the surface (float64)."""
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    which = rng.choice(len(faces), size=count, p=area / area.sum())
    r1 = np.sqrt(rng.random(count))[:, None]
    r2 = rng.random(count)[:, None]
    t = tri[which]
    return (1 - r1) * t[:, 0] + r1 * (1 - r2) * t[:, 1] + r1 * r2 * t[:, 2]


def surface_cover(vertices: np.ndarray, faces: np.ndarray, spacing: float) -> np.ndarray:
    """Points such that every point of every triangle lies within ``spacing`` of one of them.

    Each triangle gets a grid a + (i/n1) e1 + (j/n2) e2 along its two shorter edges (from the
    corner opposite the longest edge, so slivers stay cheap) with steps <= spacing; every grid
    cell that meets the triangle keeps its corners, so any surface point is within half a cell
    diagonal (<= spacing) of a kept corner. Corners may lie just outside the triangle.
    """
    tri = vertices[faces]
    lengths = np.stack(
        [np.linalg.norm(tri[:, (k + 2) % 3] - tri[:, (k + 1) % 3], axis=1) for k in range(3)], 1
    )
    apex = lengths.argmax(axis=1)  # corner opposite the longest edge
    rows = np.arange(len(tri))
    a = tri[rows, apex]
    e1 = tri[rows, (apex + 1) % 3] - a
    e2 = tri[rows, (apex + 2) % 3] - a
    n1 = np.maximum(np.ceil(np.linalg.norm(e1, axis=1) / spacing), 1).astype(np.int64)
    n2 = np.maximum(np.ceil(np.linalg.norm(e2, axis=1) / spacing), 1).astype(np.int64)
    out = []
    batch = 1 << 22  # grid points per batch bounds the temporaries
    per_tri = (n1 + 1) * (n2 + 1)
    start = 0
    while start < len(tri):
        stop = start + max(1, int(np.searchsorted(np.cumsum(per_tri[start:]), batch)))
        sel = slice(start, stop)
        counts = per_tri[sel]
        owner = np.repeat(np.arange(stop - start), counts)
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        m2 = n2[sel][owner] + 1
        i, j = local // m2, local % m2
        u = i / n1[sel][owner]
        w = j / n2[sel][owner]
        lower_u = np.maximum(i - 1, 0) / n1[sel][owner]
        lower_w = np.maximum(j - 1, 0) / n2[sel][owner]
        keep = lower_u + lower_w <= 1.0 + 1e-12
        owner, u, w = owner[keep], u[keep], w[keep]
        out.append(a[sel][owner] + u[:, None] * e1[sel][owner] + w[:, None] * e2[sel][owner])
        start = stop
    return np.concatenate(out) if out else np.zeros((0, 3))
