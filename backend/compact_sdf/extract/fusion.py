"""Sparse signed-distance fusion and marching cubes (method.md section 5).

Definition (the one ``extract.dense`` computes densely and the tests compare against). On the
lattice of ``N = cfg.resolution`` cells per side over [-1,1]^3, a cell is *crossed* by a field
when its 8 corner values satisfy ``min <= 0 <= max``. The band ``B`` (where ``s_o`` is used) is,
by ``cfg.fusion``:

- ``"distance"`` (default): the corners of the cells crossed by ``s_g``, and every vertex with
  ``|s_g| <= w``, ``w = cfg.width`` times the model's training band half-width
  (``sampling.band_width``: where ``s_o`` had dense supervision). The band is a fixed width in
  the model's own units, the same at every N, so a wall or hole that ``s_g`` misses by less than
  ``w`` keeps ``s_o``'s detail at every resolution, while ``s_o``'s far-field surfaces (where
  ``|s_g| > w``; it saw few samples there) are still replaced by ``s_g``. With the shape's
  record of where s_o was trained (``trained_region.py``, ``cfg.trained_region``), the band
  also holds every vertex whose cell had an s_o training sample within half a band width of the
  true surface: the parts s_g misses by more than ``w`` (thin walls, small holes, thin wings at
  the CPU presets) keep s_o too.
- ``"paper"``: every vertex within Chebyshev distance ``n = cfg.band`` (in vertices) of a corner
  of a cell crossed by ``s_g`` (the paper's definition; its width shrinks as N grows).

The fused field is ``s_o`` on ``B`` and ``s_g`` elsewhere; marching cubes (scikit-image, Lewiner)
at level 0 meshes it. The distance fusion then drops the closed parts that never come near s_g's
surface (with the record: near the trained surface) and those enclosing less than one cell of the
training lattice (``extract.dense.drop_band_artifacts``).

Sparse evaluation. ``search.find_surface`` finds the cells that may hold ``|s_g| <= w`` or a
crossing, with exact ``s_g`` on their corners, without evaluating most of the lattice (its
Lipschitz bound is checked at run time). ``s_o`` is evaluated only on ``B``; ``s_g``
additionally on the one-vertex shell around ``B`` so every cell touching ``B`` has exact values.
Each other vertex only needs the right sign for marching cubes: it gets +-1 with the sign of the
dropped cell that contains it. No such cell is crossed by the fused field (its corners are all
outside ``B``, where the fused field is ``s_g``, and a crossed ``s_g`` cell has its corners in
``B``), so marching cubes, run block by block on the blocks that touch ``B``, gives the dense
result exactly whenever the search's bound holds where cells were dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from compact_sdf.config import ExtractConfig
from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import CompactSDFError, InputError
from compact_sdf.extract import on_device
from compact_sdf.extract.connect import Joined, join_parts, join_stages, needs_join
from compact_sdf.extract.dense import dense_mesh, drop_band_artifacts, speck_volume
from compact_sdf.extract.handles import close_shallow_handles, quarter_cell
from compact_sdf.extract.lattice import FieldFn, Lattice, cell_corners, dilate, evaluate, march, merge
from compact_sdf.extract.mesh import MeshArrays
from compact_sdf.extract.search import Memo, Surface, find_surface
from compact_sdf.progress import Progress
from compact_sdf.trained_region import TrainedRegion

if TYPE_CHECKING:
    from compact_sdf.checkpoint import LoadedModel

Mode = Literal["fused", "generalization", "overfitting", "overfitting-sparse"]
# overfitting-sparse: s_o alone through the guarded search (fast; exact where s_o keeps the
# measured slope bound, which s_o far from the surface need not: "overfitting" stays dense)
MODES: tuple[str, ...] = ("fused", "generalization", "overfitting", "overfitting-sparse")
FUSIONS: tuple[str, ...] = ("distance", "paper")
MESHINGS: tuple[str, ...] = ("auto", "numpy", "tensors")


def _fill(memo: Memo, field: np.ndarray, where: np.ndarray) -> None:
    """s_g at the marked vertices into ``field``, through the memo (no vertex evaluated twice)."""
    field[where] = memo(Lattice(memo.cfg.resolution), np.argwhere(where))


def fusion_width(cfg: ExtractConfig, band_width: float) -> float:
    """Half-width of the distance band in normalised units (0 for the paper's fusion)."""
    return cfg.width * band_width if cfg.fusion == "distance" else 0.0


def band_of(
    crossed: np.ndarray,
    gen: np.ndarray,
    cfg: ExtractConfig,
    width: float,
    region: TrainedRegion | None = None,
) -> np.ndarray:
    """Bool (N+1)^3: the band B of the module docstring from the crossed cells and s_g's values.

    ``gen`` may hold NaN where s_g was not evaluated (those vertices are never within ``width``).
    """
    corners = cell_corners(crossed)
    if cfg.fusion == "paper":
        return dilate(corners, cfg.band)
    trained = region.lattice_mask(cfg.resolution) if region is not None else False
    with np.errstate(invalid="ignore"):
        return corners | (np.abs(gen) <= width) | trained


def extract_field(
    gen_fn: FieldFn,
    ovf_fn: FieldFn | None,
    cfg: ExtractConfig,
    device: torch.device | str = "cpu",
    *,
    band_width: float = 0.0,
    min_volume: float = 0.0,
    handle_depth: float = 0.0,
    join_gap: float = 0.0,
    region: TrainedRegion | None = None,
    progress: Progress | None = None,
) -> MeshArrays:
    """Fused mesh of two fields in unit coordinates; ``ovf_fn=None`` meshes ``s_g`` alone.

    ``band_width`` is the training band half-width the distance fusion is measured in;
    ``min_volume`` the smallest closed part it keeps (``extract.dense.drop_band_artifacts``);
    ``handle_depth > 0`` closes the handles shallower than that (``handles.py``, distance fusion).
    ``join_gap > 0`` joins parts that the field brings closer than that level
    (``connect.join_parts``; the search then keeps exact ``s_g`` values out to it, and the band
    holds the fused values). ``region`` (distance fusion): where s_o was trained.
    """
    _check_config(cfg)
    region = region if ovf_fn is not None and cfg.fusion == "distance" else None
    width = fusion_width(cfg, band_width) if ovf_fn is not None else 0.0
    if ovf_fn is not None and cfg.fusion == "distance" and width <= 0.0:
        raise InputError("the distance fusion needs the model's band width (band_width > 0)")
    report = progress or (lambda stage, fraction: None)
    known = None
    if on_device.chosen(cfg, device) and handle_depth <= 0:
        on = on_device.LatticeMemo(gen_fn, cfg, device)
        mesh = on_device.fused_mesh(on, ovf_fn, width, region, report)
        if join_gap <= 0 or mesh.component_count() <= 1:  # nothing a join could change
            return _finish(mesh, gen_fn, ovf_fn, cfg, device, width, min_volume, region, report)
        known = on.values.cpu().numpy()  # parts to join: numpy's lattice walk goes on from these
    memo = Memo(gen_fn, cfg, device, known)
    lat = Lattice(cfg.resolution)
    report("coarse surface", 0.0)
    surface = find_surface(memo, cfg, device, width)
    report("band", 0.4)
    field = surface.field
    if ovf_fn is None:
        band = cell_corners(surface.crossed)
    else:
        band = band_of(surface.crossed, field, cfg, width, region)
    near = dilate(band, 1)  # the band and its shell: every corner of every cell touching the band
    if ovf_fn is not None:
        band_values = evaluate(ovf_fn, lat.points(np.argwhere(band)), cfg.batch_points, device)
        _fill(memo, field, near & ~band & np.isnan(field))
        field[band] = band_values
    else:
        _fill(memo, field, near & np.isnan(field))
    joined = _join(memo, surface, field, join_gap) if join_gap > 0 else None
    np.copyto(field, surface.sign, where=~near)  # only the sign matters off the band's cells
    if joined is not None:
        # a tube's cells also need their untouched corners' exact values (``_join`` has them)
        field = np.where(dilate(joined.touched, 1), joined.field, field)
        band = band | joined.touched
    if ovf_fn is not None and cfg.fusion == "distance" and handle_depth > 0:
        report("shallow handles", 0.7)
        close_shallow_handles(field, handle_depth)
    report("marching cubes", 0.8)
    verts, faces = merge(_march_blocks(field, band, cfg.block_cells))
    mesh = MeshArrays.from_lattice(verts, faces, cfg.resolution)
    return _finish(mesh, gen_fn, ovf_fn, cfg, device, width, min_volume, region, report)


def _finish(
    mesh: MeshArrays,
    gen_fn: FieldFn,
    ovf_fn: FieldFn | None,
    cfg: ExtractConfig,
    device: torch.device | str,
    width: float,
    min_volume: float,
    region: TrainedRegion | None,
    report: Progress,
) -> MeshArrays:
    """The distance fusion's clean-up of closed parts (``drop_band_artifacts``), on either path."""
    if ovf_fn is not None and cfg.fusion == "distance":
        mesh = drop_band_artifacts(mesh, gen_fn, width, cfg.batch_points, device, min_volume, region)
    report("done", 1.0)
    return mesh


def _join(memo: Memo, surface: Surface, field: np.ndarray, gap: float) -> Joined | None:
    """``join_parts`` of ``field`` (the band's fused values, s_g's elsewhere), or None when the field
    is one body without voids and there is nothing to join.

    The join walks levels ``0 < l <= gap`` in order and costs a path by its positive values, so the
    parts that meet at a level ``l`` need exact values for ``0 <= s <= l`` only (and the sign
    inside): the search is widened one-sidedly in stages (``join_stages``), reusing every value it
    has, and stops widening once every part has met. The join up to a stage's gap is the join up to
    ``gap`` at those levels; the values a tube lowers or borders that the stage left as a sign are
    then made exact, so the result is the join of the exact field.
    """
    if not needs_join(np.where(np.isnan(field), surface.sign, field)):
        return None
    cfg = memo.cfg
    for stage in join_stages(gap, 2.0 / cfg.resolution):
        wide = find_surface(memo, cfg, memo.device, stage, surface.lipschitz, inside=0.0)
        exact = np.where(np.isnan(field), wide.field, field)
        joined = join_parts(np.where(np.isnan(exact), wide.sign, exact), stage)
        if joined.apart == 0:
            break
    unknown = dilate(joined.touched, 1) & np.isnan(exact)
    if unknown.any():
        values = memo(Lattice(cfg.resolution), np.argwhere(unknown))
        tube = joined.field[unknown]
        lower = joined.touched[unknown] & (tube < values)
        joined.field[unknown] = np.where(lower, tube, values)
        joined.touched[unknown] = lower
    return joined


def _march_blocks(field: np.ndarray, band: np.ndarray, block: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Marching cubes on every block of ``block``^3 cells that holds a cell touching the band."""
    cells = field.shape[0] - 1
    parts = []
    for b in np.ndindex(*(-(-cells // block),) * 3):
        lo = [x * block for x in b]
        box = tuple(slice(x, min(x + block, cells) + 1) for x in lo)
        if not band[box].any():
            continue
        part = march(np.ascontiguousarray(field[box]), (lo[0], lo[1], lo[2]), cells)
        if part is not None:
            parts.append(part)
    return parts


def _check_config(cfg: ExtractConfig) -> None:
    if cfg.resolution < 2:
        raise InputError(f"resolution must be at least 2 cells per side, got {cfg.resolution}")
    if cfg.band < 0:
        raise InputError(f"band must be 0 or more voxel layers, got {cfg.band}")
    if cfg.fusion not in FUSIONS:
        raise InputError(f"unknown fusion '{cfg.fusion}'; choose one of: {', '.join(FUSIONS)}")
    if not cfg.width > 0.0:
        raise InputError(f"extract.width must be > 0 (a multiple of the training band), got {cfg.width}")
    if not cfg.lipschitz >= 1.0:
        raise InputError(f"extract.lipschitz must be >= 1 (an SDF is 1-Lipschitz), got {cfg.lipschitz}")
    if cfg.meshing not in MESHINGS:
        raise InputError(f"unknown meshing '{cfg.meshing}'; choose one of: {', '.join(MESHINGS)}")
    if cfg.block_cells < 2 or cfg.batch_points < 1 or cfg.coarse_cells < 1:
        raise InputError("extract.block_cells must be >= 2, batch_points and coarse_cells >= 1")


def extract_shape(
    loaded: LoadedModel,
    code_or_name: str | torch.Tensor,
    cfg: ExtractConfig,
    mode: str = "fused",
    normalization: Normalization | None = None,
    *,
    join_gap: float = 0.0,
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
        region = None
        if isinstance(code_or_name, str) and cfg.trained_region:
            region = loaded.region(code_or_name)
        mesh = fuse(loaded, gen_fn, ovf_fn, cfg, device, region=region, progress=progress)
    elif mode == "generalization":
        mesh = extract_field(gen_fn, None, cfg, device, join_gap=join_gap, progress=progress)
    elif mode == "overfitting-sparse":
        mesh = extract_field(ovf_fn, None, cfg, device, progress=progress)
    else:  # s_o is not a distance far from the surface, so no cell may be skipped: dense
        mesh = dense_mesh(ovf_fn, cfg, device, progress=progress)
    if len(mesh.faces) == 0:
        raise CompactSDFError(
            f"no surface found for mode '{mode}' at resolution {cfg.resolution}: the model's field does not "
            "cross zero there (is it trained? its last losses are in model.json)"
        )
    return mesh.transformed(normalization) if normalization is not None else mesh


def fuse(
    loaded: LoadedModel,
    gen_fn: FieldFn,
    ovf_fn: FieldFn,
    cfg: ExtractConfig,
    device: torch.device | str,
    *,
    join_gap: float = 0.0,
    region: TrainedRegion | None = None,
    progress: Progress | None = None,
) -> MeshArrays:
    """``extract_field`` of two fields with the model's own fusion settings: its training band, the
    smallest part it can have shaped, and the pinhole rule when ``cfg.handles`` asks for it.
    ``region``: where the shape's s_o was trained (a stored shape's, not a blend's)."""
    sampling = loaded.config.sampling
    return extract_field(
        gen_fn,
        ovf_fn,
        cfg,
        device,
        band_width=sampling.band_width,
        min_volume=speck_volume(sampling.fine_cells, cfg.resolution),
        handle_depth=quarter_cell(sampling.fine_cells) if cfg.handles == "close" else 0.0,
        join_gap=join_gap,
        region=region,
        progress=progress,
    )
