"""The dual-branch SDF network (method.md section 2).

Per-shape latent codes feed two MLPs: ``f_g`` on ``[z, x, PE(x)]`` (smooth, owns the far field)
and ``f_o`` on ``[z, c(x), x]`` where ``c(x)`` is trilinearly interpolated from one dense feature
grid shared by all shapes (detail near the surface). The grid is an ``nn.Embedding`` of
``grid_res**3`` rows read through ``embedding_bag`` at the 8 cell corners of each point, so a
training step produces a gradient on (and, with a sparse optimiser, updates) only those rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from compact_sdf.config import ModelConfig

INIT_RADIUS = 0.5  # the untrained network is a sphere of this radius (geometric init, SAL/IGR)
_CALIBRATION_DIRECTIONS = 4096


def positional_encoding(x: torch.Tensor, freqs: int) -> torch.Tensor:
    """``[x, sin(2^k x), cos(2^k x)]`` for k < freqs, without a pi factor (as the release)."""
    scales = 2.0 ** torch.arange(freqs, device=x.device, dtype=x.dtype)
    xs = (x.unsqueeze(-1) * scales).flatten(-2)  # (..., 3 * freqs), x-major
    return torch.cat([x, torch.sin(xs), torch.cos(xs)], dim=-1)


def pe_dim(freqs: int) -> int:
    return 3 + 6 * freqs


class SkipMLP(nn.Module):
    """``layers`` hidden Linear+ReLU of width ``hidden``; the input joins again before ``skip_layer``.

    Geometric init: hidden W ~ N(0, 2/hidden), b = 0, and every input column outside ``live_cols``
    (the code z and the sin/cos terms of PE) starts at zero weight, so the initial net is a
    positively homogeneous function of x. The c(x) columns stay live: the grid starts at zero, so
    they do not change the initial function, and zero weights there would leave the grid without
    gradient forever; the output weight (mean 2*sqrt(pi)/sqrt(hidden), bias -0.5) is then rescaled so
    the mean radius of the zero level set is exactly ``INIT_RADIUS`` (the closed-form constant of
    SAL ignores the skip concatenation, see ``calibrate_radius``).
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, skip_layer: int, live_cols: list[int]) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError("model.layers must be at least 1")
        self.in_dim = in_dim
        self.skip_layer = skip_layer if 0 < skip_layer < layers else -1
        self.live_cols = live_cols
        linears = []
        for i in range(layers):
            fan_in = in_dim if i == 0 else hidden + (in_dim if i == self.skip_layer else 0)
            linears.append(nn.Linear(fan_in, hidden))
        self.hidden = nn.ModuleList(linears)
        self._linears: list[nn.Linear] = linears  # typed view of ``hidden`` (same modules)
        self.out = nn.Linear(hidden, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        width = self.out.in_features
        mask = torch.zeros(self.in_dim)
        mask[self.live_cols] = 1.0
        with torch.no_grad():
            for i, lin in enumerate(self._linears):
                nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0 / width))
                nn.init.zeros_(lin.bias)
                if i == 0:
                    lin.weight.mul_(mask)
                elif i == self.skip_layer:
                    lin.weight[:, width:].mul_(mask)
            nn.init.normal_(self.out.weight, 2.0 * math.sqrt(math.pi) / math.sqrt(width), 1e-5)
            nn.init.constant_(self.out.bias, -INIT_RADIUS)

    def forward(self, inp: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """The MLP on ``inp``; or, given ``prefix`` (leading input columns with one value for every
        point: a shape's code), on ``[prefix, inp]``. The prefix's share of the first and the skip
        layer is then a bias computed once per call: the same function, measured a fifth less work
        per point on the CPU for ``preview`` (docs/benchmarks/interactive.md)."""
        if prefix is not None:
            return self._with_prefix(prefix, inp)
        h = inp
        for i, lin in enumerate(self._linears):
            if i == self.skip_layer:
                h = torch.cat([h, inp], dim=-1)
            h = F.relu(lin(h))
        return self.out(h).squeeze(-1)

    def _with_prefix(self, prefix: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        k, width = prefix.shape[-1], self.out.in_features
        h = rest
        for i, lin in enumerate(self._linears):
            w, b = lin.weight, lin.bias
            if i == 0:
                h = F.linear(rest, w[:, k:], b + w[:, :k] @ prefix)
            elif i == self.skip_layer:
                skip = F.linear(h, w[:, :width], b + w[:, width : width + k] @ prefix)
                h = torch.addmm(skip, rest, w[:, width + k :].t())
            else:
                h = lin(h)
            h = torch.relu_(h)  # in place: a tenth less time per point (each h is used once)
        return self.out(h).squeeze(-1)


class DualSDF(nn.Module):
    """Codes + shared grid + the two branch MLPs; see the module docstring."""

    corner_offsets: torch.Tensor  # (8, 3) the cell corners as 0/1 offsets

    def __init__(self, cfg: ModelConfig, num_shapes: int, *, sparse_grid: bool = True) -> None:
        super().__init__()
        if cfg.grid_res < 2:
            raise ValueError("model.grid_res must be at least 2")
        self.cfg = cfg
        self.sparse_grid = sparse_grid
        self.codes = nn.Embedding(num_shapes, cfg.code_dim)
        self.grid = nn.Embedding(cfg.grid_res**3, cfg.grid_channels, sparse=sparse_grid)
        corners = [[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
        self.register_buffer("corner_offsets", torch.tensor(corners, dtype=torch.long), persistent=False)
        d, c, pe = cfg.code_dim, cfg.grid_channels, pe_dim(cfg.pe_freqs)
        # f_g input [z, x, PE(x)]: raw x at d..d+2 and again as PE's first three values.
        self.gen = SkipMLP(
            d + 3 + pe, cfg.hidden, cfg.layers, cfg.skip_layer, [d, d + 1, d + 2, d + 3, d + 4, d + 5]
        )
        # f_o input [z, c(x), x]
        self.ovf = SkipMLP(d + c + 3, cfg.hidden, cfg.layers, cfg.skip_layer, list(range(d, d + c + 3)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            nn.init.normal_(self.codes.weight, 0.0, self.cfg.code_init_std)
            self.project_codes()
            nn.init.zeros_(self.grid.weight)
        self.gen.reset_parameters()
        self.ovf.reset_parameters()
        calibrate_radius(self.gen, lambda u: self._gen_input(torch.zeros(u.shape[0], self.cfg.code_dim), u))
        calibrate_radius(
            self.ovf,
            lambda u: torch.cat([torch.zeros(u.shape[0], self.cfg.code_dim + self.cfg.grid_channels), u], -1),
        )

    @property
    def num_shapes(self) -> int:
        return self.codes.num_embeddings

    @torch.no_grad()
    def project_codes(self) -> None:
        """Bound every code's norm by ``code_max_norm`` (projection after each optimiser step)."""
        w = self.codes.weight
        w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=self.cfg.code_max_norm))

    def add_shapes(self, k: int, generator: torch.Generator | None = None) -> None:
        """Append ``k`` codes initialised like the others (continue training with new shapes)."""
        if k <= 0:
            return
        old = self.codes.weight.detach()
        new = torch.randn(k, old.shape[1], generator=generator, device="cpu") * self.cfg.code_init_std
        new = torch.renorm(new, p=2, dim=0, maxnorm=self.cfg.code_max_norm).to(old)
        self.codes = nn.Embedding(old.shape[0] + k, old.shape[1]).to(old.device)
        with torch.no_grad():
            self.codes.weight.copy_(torch.cat([old, new]))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Trilinear ``c(x)`` for ``x`` of shape ``(..., 3)`` -> ``(..., C)``; x is clamped into [-1,1]."""
        r = self.cfg.grid_res
        lead = x.shape[:-1]
        pts = x.reshape(-1, 3).clamp(-1.0, 1.0)
        g = (pts + 1.0) * (0.5 * (r - 1))  # continuous vertex coordinates in [0, r-1]
        i0 = g.floor().clamp(max=r - 2)  # lower corner; the last cell owns the upper face
        t = g - i0
        i0 = i0.long()
        offsets = self.corner_offsets  # (8, 3)
        corners = i0.unsqueeze(1) + offsets  # (P, 8, 3)
        idx = (corners[..., 0] * r + corners[..., 1]) * r + corners[..., 2]
        off = offsets.to(t.dtype)
        w = (off * t.unsqueeze(1) + (1 - off) * (1 - t.unsqueeze(1))).prod(-1)  # (P, 8)
        feats = F.embedding_bag(
            idx,
            self.grid.weight,
            per_sample_weights=w.to(self.grid.weight.dtype),
            mode="sum",
            sparse=self.sparse_grid,
        )
        return feats.reshape(*lead, -1)

    def _gen_input(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, x, positional_encoding(x, self.cfg.pe_freqs)], dim=-1)

    @staticmethod
    def _broadcast_code(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if z.dim() == 1:
            return z.expand(*x.shape[:-1], z.shape[0])
        return z.unsqueeze(-2).expand(*x.shape[:-1], z.shape[-1])

    def sdf_gen(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Generalization branch: ``z`` (d,) with ``x`` (N,3) -> (N,), or (B,d) with (B,N,3) -> (B,N).

        One code (extraction, code fits) is folded into the first layers' biases (``SkipMLP``)."""
        if z.dim() == 1:
            return self.gen(torch.cat([x, positional_encoding(x, self.cfg.pe_freqs)], dim=-1), prefix=z)
        return self.gen(self._gen_input(self._broadcast_code(z, x), x))

    def sdf_ovf(self, z: torch.Tensor, x: torch.Tensor, feats: torch.Tensor | None = None) -> torch.Tensor:
        """Overfitting branch on ``[z, c(x), x]``; pass ``feats`` when ``c(x)`` is already computed."""
        c = (self.features(x) if feats is None else feats).to(x.dtype)
        if z.dim() == 1:
            return self.ovf(torch.cat([c, x], dim=-1), prefix=z)
        return self.ovf(torch.cat([self._broadcast_code(z, x), c, x], dim=-1))

    def forward(
        self, shape_idx: torch.Tensor, x: torch.Tensor, x_ovf: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``shape_idx`` (B,), ``x`` (B,N,3) -> ``(s_gen, s_ovf, c(x))``.

        Training feeds each branch its own sample set: ``x`` goes to ``f_g`` and ``x_ovf`` (default
        ``x``) to ``f_o``; the returned features belong to ``x_ovf``.
        """
        z = self.codes(shape_idx)
        xo = x if x_ovf is None else x_ovf
        feats = self.features(xo)
        return self.sdf_gen(z, x), self.sdf_ovf(z, xo, feats), feats


@torch.no_grad()
def calibrate_radius(mlp: SkipMLP, make_input, directions: int = _CALIBRATION_DIRECTIONS) -> None:
    """Rescale the output weight so the zero set's mean radius over random directions is INIT_RADIUS.

    With zero biases, zero weights on the inputs outside ``live_cols`` and c(x) = 0, ``mlp(x) + 0.5``
    is positively homogeneous in x, so the radius along unit direction u is exactly ``0.5 / (mlp(u) + 0.5)``.
    A fixed generator keeps the calibration independent of the global RNG stream.
    """
    gen = torch.Generator().manual_seed(1234)
    u = torch.randn(directions, 3, generator=gen)
    u = u / u.norm(dim=1, keepdim=True)
    w = mlp.out.weight
    device = w.device
    g = (mlp(make_input(u).to(device)) + INIT_RADIUS).clamp(min=1e-3)  # radius along u is 0.5 / g
    w.mul_((1.0 / g).mean())
