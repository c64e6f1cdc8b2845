"""Blends of several shapes: s_g at the blended code plus each shape's detail faded by its weight.

Why not s_g alone between the shapes (the earlier in-betweens): a slider leaving a fused end by a
thousandth then drops all of that end's s_o detail at once (a pop: area -3.7%, genus 1 -> 0 on
the armadillo). Why not s_o at the blended code: s_o was trained only at the shapes' own codes, and
between them its band holds floating specks (docs/benchmarks/interpolation.md). Carrying each
end's residual ``s_o - s_g`` from its own code, faded by its weight and by how much the blend still
looks like that end, changes the mesh continuously from a fused end into the in-betweens
(docs/benchmarks/interactive.md measures it).

A live slider moves only the weights: each end's fields on the output lattice do not change, so a
long-lived process keeps them (``EndMemo`` on the ``LoadedModel``, up to ``MEMO_MAX_RESOLUTION``)
and an update evaluates only s_g at the new code and the lattice vertices no earlier update needed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from compact_sdf.config import ExtractConfig
from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import CompactSDFError
from compact_sdf.extract.fusion import extract_shape, fuse, fusion_width
from compact_sdf.extract.lattice import FieldFn
from compact_sdf.extract.mesh import MeshArrays
from compact_sdf.progress import Progress

if TYPE_CHECKING:
    from compact_sdf.checkpoint import LoadedModel

MEMO_MAX_RESOLUTION = 128  # larger lattices are meshed once, not dragged: no memo (17 MB per end at 128)
MEMO_ENTRIES = 16  # (shape, resolution) pairs kept per loaded model, least recently used out


class EndMemo:
    """One shape's s_g and s_o on the output lattice (NaN where not evaluated yet)."""

    def __init__(self, resolution: int) -> None:
        self.resolution = resolution
        self.gen = np.full((resolution + 1,) * 3, np.nan, dtype=np.float32)
        self.ovf = np.full((resolution + 1,) * 3, np.nan, dtype=np.float32)

    def fields(
        self, model: torch.nn.Module, z: torch.Tensor, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(s_g, s_o)`` of the shape with code ``z`` at lattice points ``x``, evaluating only new ones."""
        ijk = torch.round((x.double() + 1.0) * (self.resolution / 2.0)).long().cpu().numpy()
        at = tuple(ijk.T)
        g, o = self.gen[at], self.ovf[at]
        todo = np.isnan(g)
        if todo.any():
            xt = x[torch.from_numpy(todo).to(x.device)]
            g[todo] = model.sdf_gen(z, xt).float().cpu().numpy()
            o[todo] = model.sdf_ovf(z, xt).float().cpu().numpy()
            where = tuple(a[todo] for a in at)
            self.gen[where], self.ovf[where] = g[todo], o[todo]
        return torch.from_numpy(g).to(x.device), torch.from_numpy(o).to(x.device)


def end_memos(loaded: LoadedModel, names: list[str], resolution: int) -> list[EndMemo] | None:
    """The memos of the named shapes at this resolution, kept on the loaded model (None above the limit)."""
    if resolution > MEMO_MAX_RESOLUTION:
        return None
    out = []
    for name in names:
        key = ("blend-end", name, resolution)
        memo = loaded.memo.get(key) or EndMemo(resolution)
        loaded.memo[key] = memo
        loaded.memo.move_to_end(key)
        out.append(memo)
    while len(loaded.memo) > MEMO_ENTRIES:
        loaded.memo.popitem(last=False)
    return out


def blend_fields(
    model: torch.nn.Module,
    z: torch.Tensor,
    ends: torch.Tensor,
    weights: torch.Tensor,
    width: float,
    memos: list[EndMemo] | None = None,
) -> tuple[FieldFn, FieldFn]:
    """``(s_g, fused)`` fields of a blend of codes ``ends`` (K, d) with ``weights`` (K,) at code ``z``.

    ``fused = s_g(z) + sum_i w_i * a_i * [|g_i| <= width] * (o_i - g_i)`` with ``g_i, o_i`` end
    ``i``'s s_g and s_o and the agreement ``a_i = max(0, 1 - |g_i - s_g(z)| / width)``: at an end
    (one weight of 1) exactly its fused field (``extract_shape``), continuous in the weights
    everywhere. Each residual is masked by its end's band (where its s_o was trained); the agreement
    keeps an end's detail off where the blend's surface moved away from that end's (it would float
    there as specks). ``memos`` (one per end) reuse each end's lattice values between calls.
    """

    def gen_fn(x: torch.Tensor) -> torch.Tensor:
        return model.sdf_gen(z, x)

    def end_fields(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if memos is not None:
            pairs = [m.fields(model, e, x) for m, e in zip(memos, ends, strict=True)]
            return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        xs = x.unsqueeze(0).expand(ends.shape[0], *x.shape)
        feats = model.features(x)
        g = model.sdf_gen(ends, xs)
        return g, model.sdf_ovf(ends, xs, feats=feats.unsqueeze(0).expand(ends.shape[0], *feats.shape))

    def fused_fn(x: torch.Tensor) -> torch.Tensor:
        g, o = end_fields(x)
        here = model.sdf_gen(z, x)
        agree = (1.0 - (g - here).abs() / width).clamp_min(0.0)
        residual = torch.where(g.abs() <= width, agree * (o - g), torch.zeros_like(g))
        return here + weights.to(residual.dtype) @ residual

    return gen_fn, fused_fn


def extract_blend(
    loaded: LoadedModel,
    names: list[str],
    z: torch.Tensor,
    weights: np.ndarray,
    cfg: ExtractConfig,
    normalization: Normalization | None = None,
    *,
    join_gap: float = 0.0,
    progress: Progress | None = None,
) -> MeshArrays:
    """Mesh of the blend of the named shapes at code ``z`` with ``weights`` (``blend_fields``).

    A weight of 1 on one shape is that shape's fused reconstruction exactly (and no join).
    """
    live = [i for i, w in enumerate(weights) if w > 0.0]
    if len(live) == 1:
        return extract_shape(loaded, names[live[0]], cfg, "fused", normalization, progress=progress)
    model = loaded.model
    device = next(model.parameters()).device
    model.eval()
    ends = torch.stack([loaded.code(names[i]) for i in live]).to(device)
    w = torch.tensor([float(weights[i]) for i in live], device=device)
    sampling = loaded.config.sampling
    cfg = replace(cfg, fusion="distance")
    memos = end_memos(loaded, [names[i] for i in live], cfg.resolution)
    gen_fn, fused_fn = blend_fields(
        model, z.to(device), ends, w, fusion_width(cfg, sampling.band_width), memos
    )
    mesh = fuse(loaded, gen_fn, fused_fn, cfg, device, join_gap=join_gap, progress=progress)
    if len(mesh.faces) == 0:
        raise CompactSDFError(f"no surface found for the blend at resolution {cfg.resolution}")
    return mesh.transformed(normalization) if normalization is not None else mesh
