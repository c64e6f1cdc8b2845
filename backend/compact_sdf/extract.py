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
sign, so no zero crossing hides inside (thin parts included, unlike a corner sign test). The same
bound, applied to each child from its parent's corners before the child is evaluated, drops most
children far from the surface without evaluating their corners. ``s_o`` is
evaluated only on ``B``; ``s_g`` additionally on the one-vertex shell around ``B`` so every cell
touching ``B`` has exact values. Each other vertex only needs the right sign for marching cubes:
it gets +-1 with the sign of the dropped cell that contains it (an int8 sign lattice, upsampled
level by level). No such cell is crossed by the fused field (its corners are all outside ``B``,
where the fused field is ``s_g``, and a crossed ``s_g`` cell has its corners in ``B``), so marching
cubes, run block by block on the blocks that touch ``B``, gives the dense result exactly whenever
``s_g`` is L-Lipschitz where cells were dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from compact_sdf.config import ExtractConfig
from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import CompactSDFError, InputError
from compact_sdf.extract_dense import dense_mesh
from compact_sdf.lattice import (
    CORNERS,
    FieldFn,
    Lattice,
    cell_corners,
    corner_views,
    dilate,
    evaluate,
    march,
    merge,
)
from compact_sdf.mesh import MeshArrays
from compact_sdf.progress import Progress

if TYPE_CHECKING:
    from compact_sdf.checkpoint import LoadedModel

Mode = Literal["fused", "generalization", "overfitting"]
MODES: tuple[str, ...] = ("fused", "generalization", "overfitting")


def level_sizes(resolution: int, coarse_cells: int) -> list[int]:
    """Cells per side of each refinement level, coarse to fine, halving while N stays divisible."""
    sizes = [resolution]
    while sizes[-1] % 2 == 0 and sizes[-1] // 2 >= coarse_cells:
        sizes.append(sizes[-1] // 2)
    return sizes[::-1]


@dataclass
class _CoarseSurface:
    crossed: np.ndarray  # bool (N)^3: the cells crossed by s_g at resolution N
    field: np.ndarray  # float32 (N+1)^3: s_g where it was evaluated (any level), NaN elsewhere
    sign: np.ndarray  # int8 (N+1)^3: the sign of s_g everywhere (exact where evaluated)


def _sign(values: np.ndarray) -> np.ndarray:
    return np.where(values >= 0.0, 1, -1).astype(np.int8)


def _same_sign(field: np.ndarray) -> np.ndarray:
    """Bool per cell: all 8 corners > 0 or all < 0 (bool passes, no float min/max volumes)."""
    views = corner_views(field)
    positive = np.logical_and.reduce([v > 0.0 for v in views])
    negative = np.logical_and.reduce([v < 0.0 for v in views])
    return positive | negative


def _keep_cells(field: np.ndarray, bound: float) -> np.ndarray:
    """Cells that may hold a zero crossing: the Lipschitz rule of the module docstring."""
    far = np.logical_or.reduce([np.abs(v) > bound for v in corner_views(field)])
    return ~(_same_sign(field) & far)


def _refine(a: np.ndarray, cut: int) -> np.ndarray:
    """Nearest-lower upsampling by 2 along every axis, cut to ``cut`` entries per side."""
    for axis in range(3):
        a = np.repeat(a, 2, axis=axis)
    return a[:cut, :cut, :cut]


def _children_may_cross(
    parent_field: np.ndarray, parents: np.ndarray, fine: Lattice, cfg: ExtractConfig
) -> np.ndarray:
    """Bool (2n)^3: children of the kept ``parents`` that their parent's corners cannot rule out.

    Before any child vertex is evaluated: a parent corner ``q`` with ``|s(q)| > L * r`` (``r`` its
    largest distance to a child, one or two child sides per axis) fixes the sign of that whole
    child for an L-Lipschitz field, as the rule of the module docstring does for a whole cell; a
    parent whose corners disagree in sign keeps all its children. This spares most of the
    evaluations of the next level, which the parent rule alone spends on children far from the
    surface.
    """
    side = 2.0 / fine.cells
    views = corner_views(parent_field)
    certain = _same_sign(parent_field) & parents
    out = np.zeros((fine.cells,) * 3, dtype=bool)
    for o in CORNERS:
        ruled_out = np.zeros_like(certain)
        for q, value in zip(CORNERS, views, strict=True):
            reach = side * float(np.sqrt(np.sum(np.where(o == q, 1.0, 4.0))))
            ruled_out |= np.abs(value) > cfg.lipschitz * reach
        out[o[0] :: 2, o[1] :: 2, o[2] :: 2] = parents & ~(certain & ruled_out)
    return out


def _evaluate_at(
    fn: FieldFn,
    lat: Lattice,
    field: np.ndarray,
    where: np.ndarray,
    cfg: ExtractConfig,
    device: torch.device | str,
) -> np.ndarray:
    """Evaluate ``fn`` at the marked vertices, store the values in ``field`` and return them."""
    values = evaluate(fn, lat.points(np.argwhere(where)), cfg.batch_points, device)
    field[where] = values
    return values


def _coarse_surface(gen_fn: FieldFn, cfg: ExtractConfig, device: torch.device | str) -> _CoarseSurface:
    """Hierarchical search for the cells that s_g crosses at the output resolution."""
    sizes = level_sizes(cfg.resolution, cfg.coarse_cells)
    lat = Lattice(sizes[0])
    grid = np.indices((lat.side,) * 3).reshape(3, -1).T
    field = evaluate(gen_fn, lat.points(grid), cfg.batch_points, device).reshape((lat.side,) * 3)
    sign = _sign(field)
    if len(sizes) == 1:
        return _CoarseSurface(~_same_sign(field), field, sign)
    cells = _keep_cells(field, lat.cell_diagonal() * cfg.lipschitz)
    for level, cells_per_side in enumerate(sizes[1:], start=1):
        fine = Lattice(cells_per_side)
        carried = np.full((fine.side,) * 3, np.nan, dtype=np.float32)
        carried[::2, ::2, ::2] = field
        field = carried
        cells = _children_may_cross(field[::2, ::2, ::2], cells, fine, cfg)
        missing = cell_corners(cells) & np.isnan(field)
        sign = _refine(sign, fine.side)
        sign[missing] = _sign(_evaluate_at(gen_fn, fine, field, missing, cfg, device))
        if level == len(sizes) - 1:
            cells &= ~_same_sign(field)
        else:
            cells &= _keep_cells(field, fine.cell_diagonal() * cfg.lipschitz)
        lat = fine
    return _CoarseSurface(cells, field, sign)


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
    band = dilate(cell_corners(coarse.crossed), cfg.band if ovf_fn is not None else 0)
    near = dilate(band, 1)  # the band and its shell: every corner of every cell touching the band
    field = coarse.field
    if ovf_fn is not None:
        band_values = evaluate(ovf_fn, lat.points(np.argwhere(band)), cfg.batch_points, device)
        _evaluate_at(gen_fn, lat, field, near & ~band & np.isnan(field), cfg, device)
        field[band] = band_values
    else:
        _evaluate_at(gen_fn, lat, field, near & np.isnan(field), cfg, device)
    np.copyto(field, coarse.sign, where=~near)  # only the sign matters off the band's cells
    report("marching cubes", 0.8)
    verts, faces = merge(_march_blocks(field, band, cfg.block_cells))
    report("done", 1.0)
    return MeshArrays.from_lattice(verts, faces, cfg.resolution)


def _march_blocks(field: np.ndarray, band: np.ndarray, block: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Marching cubes on every block of ``block``^3 cells that holds a cell touching the band."""
    cells = field.shape[0] - 1
    parts = []
    for b in np.ndindex(*(-(-cells // block),) * 3):
        lo = [x * block for x in b]
        box = tuple(slice(x, min(x + block, cells) + 1) for x in lo)
        if not band[box].any():
            continue
        part = march(np.ascontiguousarray(field[box]), (lo[0], lo[1], lo[2]))
        if part is not None:
            parts.append(part)
    return parts


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
