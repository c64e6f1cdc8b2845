"""Dense evaluation of the extraction definition in ``extract``: every field on every lattice vertex.

It is the reference the sparse extraction must reproduce (tests), the overfitting-only mode (whose
far field is exactly what that ablation measures, so nothing may be skipped), and the base of the
release-style baseline in ``bench/extract.py``. Memory is a few float32/bool volumes of (N+1)^3.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from compact_sdf.config import ExtractConfig
from compact_sdf.extract.handles import close_shallow_handles
from compact_sdf.extract.lattice import CORNERS, FieldFn, Lattice, evaluate, march, merge
from compact_sdf.extract.mesh import MeshArrays
from compact_sdf.progress import Progress
from compact_sdf.trained_region import KEEP_WITHIN as REGION_KEEP_WITHIN
from compact_sdf.trained_region import TrainedRegion

KEEP_WITHIN = 0.5  # distance fusion: a component must reach |s_g| <= this x width somewhere


def dense_volume(fn: FieldFn, cells: int, batch: int, device: torch.device | str) -> np.ndarray:
    """A field on all (cells+1)^3 lattice vertices, float32, indexed [i, j, k]."""
    lat = Lattice(cells)
    out = np.empty((lat.side,) * 3, dtype=np.float32)
    plane = np.indices((lat.side, lat.side)).reshape(2, -1).T
    slab = max(1, batch // (lat.side * lat.side))
    for i0 in range(0, lat.side, slab):
        i = np.arange(i0, min(i0 + slab, lat.side))
        ijk = np.concatenate([np.repeat(i, len(plane))[:, None], np.tile(plane, (len(i), 1))], axis=1)
        out[i0 : i0 + len(i)] = evaluate(fn, lat.points(ijk), batch, device).reshape(
            len(i), lat.side, lat.side
        )
    return out


def crossed_cells(volume: np.ndarray) -> np.ndarray:
    """Bool (N)^3: cells whose 8 corner values satisfy min <= 0 <= max."""
    n = volume.shape[0] - 1
    views = [volume[i : i + n, j : j + n, k : k + n] for i, j, k in CORNERS]
    lo, hi = np.minimum.reduce(views), np.maximum.reduce(views)
    return (lo <= 0.0) & (hi >= 0.0)


def band_mask(
    gen_volume: np.ndarray, cfg: ExtractConfig, width: float, region: TrainedRegion | None = None
) -> np.ndarray:
    """Bool (N+1)^3: the band of ``extract``'s definition, computed from the whole s_g volume.

    Paper fusion: vertices within Chebyshev distance ``cfg.band`` of a corner of an s_g-crossed
    cell. Distance fusion: those corners, every vertex with ``|s_g| <= width`` and, with a
    ``region``, every vertex in a cell where s_o was trained (``TrainedRegion.lattice_mask``).
    """
    cells = crossed_cells(gen_volume)
    n = cells.shape[0]
    corners = np.zeros(gen_volume.shape, dtype=bool)
    for i, j, k in CORNERS:
        corners[i : i + n, j : j + n, k : k + n] |= cells
    if cfg.fusion == "distance":
        trained = region.lattice_mask(cells.shape[0]) if region is not None else False
        return corners | (np.abs(gen_volume) <= width) | trained
    if cfg.band == 0:
        return corners
    return ndimage.binary_dilation(corners, structure=np.ones((3, 3, 3), bool), iterations=cfg.band)


def mesh_volume(volume: np.ndarray, block: int | None = None) -> MeshArrays:
    """Marching cubes at level 0 on a whole vertex volume (one call, or blocks to check blocking)."""
    cells = volume.shape[0] - 1
    if block is None:
        part = march(volume, (0, 0, 0), cells)
        verts, faces = merge([part] if part is not None else [])
    else:
        parts = []
        for lo in np.ndindex(*(-(-cells // block),) * 3):
            a = np.asarray(lo) * block
            sub = volume[a[0] : a[0] + block + 1, a[1] : a[1] + block + 1, a[2] : a[2] + block + 1]
            part = march(sub, (int(a[0]), int(a[1]), int(a[2])), cells)
            if part is not None:
                parts.append(part)
        verts, faces = merge(parts)
    return MeshArrays.from_lattice(verts, faces, cells)


def drop_band_artifacts(
    mesh: MeshArrays,
    gen_fn: FieldFn,
    width: float,
    batch: int,
    device: torch.device | str,
    min_volume: float = 0.0,
    region: TrainedRegion | None = None,
) -> MeshArrays:
    """The distance fusion's last step: drop every component that never comes near s_g's surface
    (with a ``region``: near the surface s_o was trained on), and every component enclosing less
    than ``min_volume`` (normalised units).

    Where s_o is wrong deep inside or outside the shape (few samples there), the band's edge at
    ``|s_g| = width`` cuts its wrong sign off against s_g's and leaves small closed shells (measured
    on the cow: bubbles inside the body with ``|s_g|`` 0.044-0.057 at every vertex, band 0.055). A
    component is kept when one of its vertices has ``|s_g| <= KEEP_WITHIN * width``; on the shared
    meshes over 99% of the true surface lies that close to s_g's zero set (docs/benchmarks/fidelity.md).
    ``min_volume`` is one cell of the training lattice or of the extraction lattice, whichever is
    larger (``speck_volume``): no sample can have put a closed part smaller than the first there,
    and one smaller than the second is a single lattice vertex that this resolution cannot shape.
    Measured: the shells it drops are one or two lattice vertices of the wrong sign (6-10
    vertices, on 5 of the 12 shared meshes); the smallest real parts measured (two scorpion leg
    tips cut off by thin necks) enclose 5.3 and 7.9 training cells (128 per side). With the
    paper's 512 training lattice, N = 256 voids of one vertex enclose 1.2-1.4 of its cells
    (docs/benchmarks/fidelity.md): the extraction voxel is the bound there.

    A ``region`` knows where the true surface is: a component is kept when it passes through a
    cell with a training sample within ``trained_region.KEEP_WITHIN`` band widths. Real parts s_g
    misses (thin walls and wings at the CPU presets) pass that test and not s_g's; s_o's far-field
    surfaces and the shells at the band's edge pass neither.
    """
    if len(mesh.faces) == 0:
        return mesh
    if region is not None:
        near = region.near(mesh.vertices, REGION_KEEP_WITHIN)
    else:
        near = np.abs(evaluate(gen_fn, mesh.vertices, batch, device)) <= KEEP_WITHIN * width
    label = mesh.component_labels()
    big = np.abs(mesh.component_volumes(label)) >= min_volume
    return mesh.keep_components(near & big[label], label)


def speck_volume(fine_cells: int, resolution: int) -> float:
    """One cell of the coarser of the training lattice (``fine_cells`` per side over [-1,1]) and
    the extraction lattice (``resolution`` per side): ``(2 / min(fine_cells, resolution))^3``."""
    return (2.0 / min(fine_cells, resolution)) ** 3


def dense_fused_volume(
    gen_fn: FieldFn,
    ovf_fn: FieldFn | None,
    cfg: ExtractConfig,
    device: torch.device | str,
    band_width: float = 0.0,
    region: TrainedRegion | None = None,
) -> np.ndarray:
    """The fused field of ``extract`` on the full lattice: s_o inside the band, s_g elsewhere.

    ``band_width``: the training band half-width the distance fusion's width multiplies.
    """
    gen = dense_volume(gen_fn, cfg.resolution, cfg.batch_points, device)
    if ovf_fn is None:
        return gen
    ovf = dense_volume(ovf_fn, cfg.resolution, cfg.batch_points, device)
    return np.where(band_mask(gen, cfg, cfg.width * band_width, region), ovf, gen)


def dense_mesh(
    fn: FieldFn,
    cfg: ExtractConfig,
    device: torch.device | str = "cpu",
    *,
    progress: Progress | None = None,
    ovf_fn: FieldFn | None = None,
    band_width: float = 0.0,
    min_volume: float = 0.0,
    handle_depth: float = 0.0,
    region: TrainedRegion | None = None,
) -> MeshArrays:
    """Mesh of ``fn`` alone, or of the fusion of ``fn`` (as s_g) with ``ovf_fn``, evaluated densely
    (the rules of ``extract.extract_field``, for the tests that compare the two)."""
    report: Progress = progress or (lambda stage, fraction: None)
    report("dense evaluation", 0.0)
    region = region if ovf_fn is not None and cfg.fusion == "distance" else None
    volume = dense_fused_volume(fn, ovf_fn, cfg, device, band_width, region)
    if ovf_fn is not None and cfg.fusion == "distance" and handle_depth > 0:
        close_shallow_handles(volume, handle_depth)
    report("marching cubes", 0.8)
    mesh = mesh_volume(volume)
    if ovf_fn is not None and cfg.fusion == "distance":
        width = cfg.width * band_width
        mesh = drop_band_artifacts(mesh, fn, width, cfg.batch_points, device, min_volume, region)
    report("done", 1.0)
    return mesh
