"""Sparse signed-distance fusion and marching cubes (method.md section 5).

Definition (the one ``extract_dense`` computes densely and the tests compare against). On the
lattice of ``N = cfg.resolution`` cells per side over [-1,1]^3:

1. A cell is *crossed* by a field when its 8 corner values satisfy ``min <= 0 <= max``.
2. The band ``B`` is every lattice vertex within Chebyshev distance ``n = cfg.band`` (in vertices)
   of a corner of a cell crossed by ``s_g``.
3. The fused field is ``s_o`` on ``B`` and ``s_g`` elsewhere; marching cubes (scikit-image,
   Lewiner) at level 0 meshes it.

Sparse evaluation. ``s_g`` is evaluated on a coarse lattice (``cfg.coarse_cells`` per side) and
refined by halving the cell size up to ``N``. A cell is dropped, with everything inside it, when
all its corners have the same strict sign and one corner has ``|s| > L * d`` (``d`` the cell
diagonal, ``L = cfg.lipschitz``): for an L-Lipschitz field every point of the cell then keeps that
sign, so no zero crossing hides inside (thin parts included, unlike a corner sign test). ``s_o`` is
evaluated only on ``B``; ``s_g`` additionally on the one-vertex shell around ``B`` so every cell
touching ``B`` has exact values. Each other vertex only needs the right sign for marching cubes:
it gets +-1 with the sign of the dropped cell that contains it (an int8 sign lattice, upsampled
level by level). No such cell is crossed by the fused field (its corners are all outside ``B``,
where the fused field is ``s_g``, and a crossed ``s_g`` cell has its corners in ``B``), so marching
cubes, run block by block on the blocks that touch ``B``, gives the dense result exactly whenever
``s_g`` is L-Lipschitz where cells were dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from compact_sdf.config import ExtractConfig
from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import CompactSDFError, InputError
from compact_sdf.lattice import CORNERS, FieldFn, Lattice, SparseValues, crossed, evaluate, march, merge

if TYPE_CHECKING:
    import trimesh

    from compact_sdf.checkpoint import LoadedModel

Mode = Literal["fused", "generalization", "overfitting"]
MODES: tuple[str, ...] = ("fused", "generalization", "overfitting")
Progress = Callable[[str, float], None]
MESH_SUFFIXES = (".ply", ".obj", ".glb")


@dataclass
class MeshArrays:
    """A triangle mesh as plain arrays (what the service serialises and the add-on rebuilds)."""

    vertices: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int64
    normals: np.ndarray  # (V, 3) float32, unit length, outward

    @classmethod
    def from_lattice(cls, verts: np.ndarray, faces: np.ndarray, cells: int) -> MeshArrays:
        """Build from marching-cubes output in lattice units: drop unused vertices, map to [-1,1]."""
        used, faces = np.unique(faces, return_inverse=True)
        unit = verts[used] * (2.0 / cells) - 1.0
        faces = faces.reshape(-1, 3).astype(np.int64)
        return cls(unit.astype(np.float32), faces, vertex_normals(unit, faces))

    def transformed(self, normalization: Normalization) -> MeshArrays:
        """The same mesh in the shape's own coordinates (undo the unit-cube normalisation)."""
        verts = normalization.from_unit(self.vertices).astype(np.float32)
        return MeshArrays(verts, self.faces, self.normals.copy())

    def to_trimesh(self) -> trimesh.Trimesh:
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, vertex_normals=self.normals, process=False)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted face normals summed at each vertex, normalised (float32)."""
    v = np.asarray(vertices, dtype=np.float64)
    out = np.zeros_like(v)
    if len(faces):
        cross = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
        for corner in range(3):
            np.add.at(out, faces[:, corner], cross)
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(length > 0, length, 1.0)).astype(np.float32)


def save_mesh(mesh: MeshArrays, path: str | Path) -> Path:
    """Write .ply / .obj / .glb by suffix (with vertex normals)."""
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(f"cannot write '{path.name}': use one of {', '.join(MESH_SUFFIXES)}")
    if len(mesh.faces) == 0:
        raise CompactSDFError("the mesh is empty: the field has no zero level set in [-1,1]^3")
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.to_trimesh().export(path)
    return path


def level_sizes(resolution: int, coarse_cells: int) -> list[int]:
    """Cells per side of each refinement level, coarse to fine, halving while N stays divisible."""
    sizes = [resolution]
    while sizes[-1] % 2 == 0 and sizes[-1] // 2 >= coarse_cells:
        sizes.append(sizes[-1] // 2)
    return sizes[::-1]


@dataclass
class _CoarseSurface:
    crossed_cells: np.ndarray  # (K, 3) lowest vertices of cells crossed by s_g at resolution N
    values: SparseValues  # s_g at every vertex evaluated on the finest level
    sign: np.ndarray  # (N+1)^3 int8: the sign of s_g everywhere (exact where evaluated)


def _sign(values: np.ndarray) -> np.ndarray:
    return np.where(values >= 0.0, 1, -1).astype(np.int8)


def _keep_cells(lo: np.ndarray, hi: np.ndarray, bound: float) -> np.ndarray:
    """Cells that may hold a zero crossing, from their corner min/max (the Lipschitz rule above)."""
    same_sign = (lo > 0.0) | (hi < 0.0)
    far = np.maximum(np.abs(lo), np.abs(hi)) > bound
    return ~(same_sign & far)


def _coarse_surface(gen_fn: FieldFn, cfg: ExtractConfig, device: torch.device | str) -> _CoarseSurface:
    """Hierarchical search for the cells that s_g crosses at the output resolution."""
    sizes = level_sizes(cfg.resolution, cfg.coarse_cells)
    lat = Lattice(sizes[0])
    grid = np.indices((lat.side,) * 3).reshape(3, -1).T
    volume = evaluate(gen_fn, lat.points(grid), cfg.batch_points, device).reshape((lat.side,) * 3)
    sign = _sign(volume)
    lo, hi = _corner_range(volume)
    if len(sizes) == 1:
        cells = np.argwhere((lo <= 0.0) & (hi >= 0.0))
        return _CoarseSurface(cells, SparseValues(lat.linear(grid), volume.reshape(-1)), sign)
    cells = np.argwhere(_keep_cells(lo, hi, lat.cell_diagonal() * cfg.lipschitz))
    values = SparseValues(lat.linear(grid), volume.reshape(-1))
    del volume, grid
    for level, cells_per_side in enumerate(sizes[1:], start=1):
        fine = Lattice(cells_per_side)
        cells = (cells[:, None, :] * 2 + CORNERS[None, :, :]).reshape(-1, 3)
        needed = np.unique(fine.cell_corners(cells))
        carried = SparseValues(fine.linear(lat.coords(values.index) * 2), values.value)
        found, vals = carried.lookup(needed)
        missing = needed[~found]
        vals[~found] = evaluate(gen_fn, fine.points(fine.coords(missing)), cfg.batch_points, device)
        values = SparseValues(needed, vals)
        up = np.arange(fine.side) // 2
        sign = sign[np.ix_(up, up, up)]
        sign.reshape(-1)[missing] = _sign(vals[~found])
        _, corner_values = values.lookup(fine.cell_corners(cells))
        if level == len(sizes) - 1:
            cells = cells[crossed(corner_values)]
        else:
            bound = fine.cell_diagonal() * cfg.lipschitz
            cells = cells[_keep_cells(corner_values.min(axis=1), corner_values.max(axis=1), bound)]
        lat = fine
    return _CoarseSurface(cells, values, sign)


def _corner_range(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell min and max over the 8 corners of a dense float32 vertex volume."""
    n = volume.shape[0] - 1
    views = [volume[i : i + n, j : j + n, k : k + n] for i, j, k in CORNERS]
    return np.minimum.reduce(views), np.maximum.reduce(views)


def _fill_missing(
    fn: FieldFn,
    lat: Lattice,
    index: np.ndarray,
    known: SparseValues,
    cfg: ExtractConfig,
    device: torch.device | str,
) -> SparseValues:
    """Values of ``fn`` at ``index``, reusing ``known`` ones and evaluating the rest."""
    found, vals = known.lookup(index)
    if (~found).any():
        vals[~found] = evaluate(fn, lat.points(lat.coords(index[~found])), cfg.batch_points, device)
    return SparseValues(index, vals)


def extract_field(
    gen_fn: FieldFn,
    ovf_fn: FieldFn | None,
    cfg: ExtractConfig,
    device: torch.device | str = "cpu",
    *,
    progress: Progress | None = None,
) -> MeshArrays:
    """Fused mesh of two fields in unit coordinates; ``ovf_fn=None`` meshes ``s_g`` alone."""
    _check_config(cfg)
    report = progress or (lambda stage, fraction: None)
    lat = Lattice(cfg.resolution)
    report("coarse surface", 0.0)
    coarse = _coarse_surface(gen_fn, cfg, device)
    report("band", 0.4)
    corners = np.unique(lat.cell_corners(coarse.crossed_cells))
    band = lat.dilate(corners, cfg.band if ovf_fn is not None else 0)
    shell = np.setdiff1d(lat.dilate(band, 1), band, assume_unique=True)
    known = SparseValues.empty() if ovf_fn is not None else coarse.values
    band_values = _fill_missing(ovf_fn or gen_fn, lat, band, known, cfg, device)
    exact = _fill_missing(gen_fn, lat, shell, coarse.values, cfg, device).merged(band_values)
    report("marching cubes", 0.8)
    parts = _march_blocks(lat, band, exact, coarse.sign, cfg.block_cells)
    verts, faces = merge(parts)
    report("done", 1.0)
    return MeshArrays.from_lattice(verts, faces, cfg.resolution)


def _march_blocks(
    lat: Lattice, band: np.ndarray, exact: SparseValues, sign: np.ndarray, block: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Marching cubes on every block of ``block``^3 cells that holds a cell touching the band."""
    ijk = lat.coords(band)
    blocks_per_side = -(-lat.cells // block)
    ids = [
        _block_ids(np.clip(ijk - offset, 0, lat.cells - 1) // block, blocks_per_side) for offset in CORNERS
    ]
    parts = []
    for flat in np.unique(np.concatenate(ids)):
        b = np.array(np.unravel_index(flat, (blocks_per_side,) * 3))
        lo = b * block
        hi = np.minimum(lo + block, lat.cells)
        vol = sign[lo[0] : hi[0] + 1, lo[1] : hi[1] + 1, lo[2] : hi[2] + 1].astype(np.float32)
        local = np.indices(vol.shape).reshape(3, -1).T + lo
        found, vals = exact.lookup(lat.linear(local))
        flat_vol = vol.reshape(-1)
        flat_vol[found] = vals[found]
        part = march(vol, (int(lo[0]), int(lo[1]), int(lo[2])))
        if part is not None:
            parts.append(part)
    return parts


def _block_ids(block_ijk: np.ndarray, per_side: int) -> np.ndarray:
    return np.unique((block_ijk[:, 0] * per_side + block_ijk[:, 1]) * per_side + block_ijk[:, 2])


def _check_config(cfg: ExtractConfig) -> None:
    if cfg.resolution < 2:
        raise InputError(f"resolution must be at least 2 cells per side, got {cfg.resolution}")
    if cfg.band < 0:
        raise InputError(f"band must be 0 or more voxel layers, got {cfg.band}")
    if not cfg.lipschitz >= 1.0:
        raise InputError(f"extract.lipschitz must be >= 1 (an SDF is 1-Lipschitz), got {cfg.lipschitz}")
    if cfg.block_cells < 2 or cfg.batch_points < 1 or cfg.coarse_cells < 1:
        raise InputError("extract.block_cells must be >= 2, batch_points and coarse_cells >= 1")


def extract_shape(
    loaded: LoadedModel,
    code_or_name: str | torch.Tensor,
    cfg: ExtractConfig,
    mode: str = "fused",
    normalization: Normalization | None = None,
    *,
    progress: Progress | None = None,
) -> MeshArrays:
    """Mesh of one shape of a trained model in the shape's own coordinates.

    A name takes the code and normalisation stored with the model; a raw code (an interpolated
    one, say) uses ``normalization`` when given and stays in unit coordinates otherwise.
    """
    from compact_sdf.extract_dense import dense_mesh

    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'; choose one of: {', '.join(MODES)}")
    model = loaded.model
    device = next(model.parameters()).device
    if isinstance(code_or_name, str):
        z = loaded.code(code_or_name).to(device)
        if normalization is None:
            normalization = loaded.shapes[loaded.shape_index(code_or_name)].normalization
    else:
        z = code_or_name.to(device)
    model.eval()

    def gen_fn(x: torch.Tensor) -> torch.Tensor:
        return model.sdf_gen(z, x)

    def ovf_fn(x: torch.Tensor) -> torch.Tensor:
        return model.sdf_ovf(z, x)

    if mode == "fused":
        mesh = extract_field(gen_fn, ovf_fn, cfg, device, progress=progress)
    elif mode == "generalization":
        mesh = extract_field(gen_fn, None, cfg, device, progress=progress)
    else:  # s_o is not a distance far from the surface, so no cell may be skipped: dense
        mesh = dense_mesh(ovf_fn, cfg, device, progress=progress)
    if len(mesh.faces) == 0:
        raise CompactSDFError(f"no surface found for mode '{mode}' at resolution {cfg.resolution}")
    return mesh.transformed(normalization) if normalization is not None else mesh
