"""Adam with three groups (grid, codes, MLPs) and the step schedule (method.md section 4).

The sparse path gives the grid its own lazy ``SparseAdam`` so a step reads and writes only the
grid rows its samples touched; the dense path (``sparse_grid=False``) is the release's single
Adam over every grid value. The learning rate is a pure function of the step, so resuming needs
no scheduler object: ``lr(step) = base * decay_factor ** (step // decay_every)``.
"""

from __future__ import annotations

from typing import Any

import torch

from compact_sdf.config import TrainConfig
from compact_sdf.model import DualSDF


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Multiplier on every base learning rate at ``step`` (0-based)."""
    return cfg.decay_factor ** (step // max(1, cfg.decay_every))


class Optimizers:
    """The optimiser(s) of one model: one Adam, plus a SparseAdam for a sparse grid."""

    def __init__(self, model: DualSDF, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.scale = 1.0  # on every learning rate; halved each time training goes back (train.py)
        mlp = list(model.gen.parameters()) + list(model.ovf.parameters())
        groups: list[dict[str, Any]] = [
            {"params": [model.codes.weight], "lr": cfg.lr_codes, "base_lr": cfg.lr_codes, "name": "codes"},
            {"params": mlp, "lr": cfg.lr_mlp, "base_lr": cfg.lr_mlp, "name": "mlp"},
        ]
        self.grid: torch.optim.Optimizer | None = None
        if model.sparse_grid:
            self.grid = torch.optim.SparseAdam(
                [{"params": [model.grid.weight], "lr": cfg.lr_grid, "base_lr": cfg.lr_grid, "name": "grid"}]
            )
        else:
            groups.insert(
                0, {"params": [model.grid.weight], "lr": cfg.lr_grid, "base_lr": cfg.lr_grid, "name": "grid"}
            )
        self.dense = torch.optim.Adam(groups)

    @property
    def all(self) -> list[torch.optim.Optimizer]:
        return [self.dense] if self.grid is None else [self.dense, self.grid]

    def set_step(self, step: int) -> None:
        """Apply the step-decay schedule for ``step``."""
        f = lr_factor(self.cfg, step) * self.scale
        for opt in self.all:
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * f

    def zero_grad(self) -> None:
        for opt in self.all:
            opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        for opt in self.all:
            opt.step()

    def lr(self, name: str = "grid") -> float:
        for opt in self.all:
            for g in opt.param_groups:
                if g["name"] == name:
                    return float(g["lr"])
        raise KeyError(name)

    def state_dict(self) -> dict[str, Any]:
        return {
            "dense": self.dense.state_dict(),
            "grid": None if self.grid is None else self.grid.state_dict(),
            "scale": self.scale,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore; codes appended since the save (more rows than the saved moments) get zero moments."""
        dense = state["dense"]
        rows = next(g for g in self.dense.param_groups if g["name"] == "codes")["params"][0].shape[0]
        grow_code_moments(state, rows)
        base = {g["name"]: g["base_lr"] for opt in self.all for g in opt.param_groups}
        self.dense.load_state_dict(dense)
        if (state["grid"] is None) != (self.grid is None):
            raise ValueError("train.sparse_grid differs from the checkpoint's; resume with the same setting")
        if self.grid is not None:
            self.grid.load_state_dict(state["grid"])
        for opt in self.all:  # the saved groups carry the old run's rates: keep this run's
            for g in opt.param_groups:
                g["base_lr"] = base[g["name"]]
        self.scale = float(state.get("scale", 1.0))


def grow_code_moments(state: dict[str, Any], rows: int) -> None:
    """Pad a saved state's Adam moments of the codes to ``rows`` with zeros (codes appended since).

    Zero moments are what Adam starts a new parameter with, so training resumes as if the appended
    codes had been there with no gradient yet.
    """
    dense = state["dense"]
    names = [g.get("name") for g in dense["param_groups"]]
    if "codes" not in names:
        return
    slot = dense["state"].get(dense["param_groups"][names.index("codes")]["params"][0])
    if slot is None:
        return
    for key in ("exp_avg", "exp_avg_sq"):
        t = slot[key]
        if t.shape[0] > rows:
            raise ValueError(f"the optimiser state has {t.shape[0]} codes, the model {rows}")
        slot[key] = torch.cat([t, t.new_zeros(rows - t.shape[0], *t.shape[1:])])
