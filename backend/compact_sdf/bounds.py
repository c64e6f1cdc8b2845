"""The one table of allowed values: every config setting and every request field.

Why: a single valid-looking request (``model.hidden=40000``, ``resolution=1024`` on a big model,
``train.steps=0``) must be refused before any work starts, with a one-line reason, in every front
end. ``Config.override`` checks settings against :data:`SETTINGS`; the request dataclasses of
``tasks`` check their fields against :data:`REQUEST`; the service's schemas are generated from both
tables, so the OpenAPI description states the same limits. Choices of text settings come from the
config's ``Literal`` types; ``train.device`` has a pattern. docs/service.md lists the table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]{1,2})?)$"
_DEVICE_RE = re.compile(DEVICE_PATTERN)
BIG = 100_000_000  # step counts: far past any real run
NEVER = 2**62  # intervals and step numbers: costs nothing, so "never" is allowed


@dataclass(frozen=True)
class Bound:
    """``lo <= value <= hi`` (``lo < value`` when ``open_lo``), finite, of the field's own kind."""

    lo: float
    hi: float
    open_lo: bool = False

    def schema(self) -> dict[str, float]:
        """The pydantic ``Field`` keywords (and so the OpenAPI ``minimum`` / ``maximum``)."""
        return {"gt" if self.open_lo else "ge": self.lo, "le": self.hi}

    def text(self) -> str:
        return f"{'>' if self.open_lo else '>='} {_number(self.lo)} and <= {_number(self.hi)}"


# Every numeric setting of config.py (tests/test_bounds.py checks that none is missing).
SETTINGS: dict[str, Bound] = {
    "sampling.coarse_cells": Bound(8, 512),
    "sampling.fine_cells": Bound(16, 2048),
    "sampling.band_width": Bound(0, 1, open_lo=True),
    "sampling.surface_samples": Bound(1, 10_000_000),
    "sampling.surface_sigma": Bound(0, 1, open_lo=True),
    "sampling.uniform_samples": Bound(0, 10_000_000),
    "sampling.near_threshold": Bound(0, 2, open_lo=True),
    "sampling.max_faces": Bound(1, 50_000_000),
    "sampling.seed": Bound(0, 2**31 - 1),
    "model.code_dim": Bound(1, 4096),
    "model.grid_res": Bound(2, 257),
    "model.grid_channels": Bound(1, 512),
    "model.hidden": Bound(1, 4096),
    "model.layers": Bound(1, 32),
    "model.skip_layer": Bound(0, 31),
    "model.pe_freqs": Bound(0, 16),
    "model.code_init_std": Bound(0, 10, open_lo=True),
    "model.code_max_norm": Bound(0, 1000, open_lo=True),
    "train.steps": Bound(1, BIG),
    "train.samples_per_shape": Bound(1, 1_000_000),
    "train.shapes_per_batch": Bound(1, 4096),
    "train.ovf_clamp": Bound(0, 1000),
    "train.lr_grid": Bound(0, 10, open_lo=True),
    "train.lr_codes": Bound(0, 10, open_lo=True),
    "train.lr_mlp": Bound(0, 10, open_lo=True),
    "train.decay_every": Bound(1, NEVER),
    "train.decay_factor": Bound(0, 1, open_lo=True),
    "train.reg_code": Bound(0, 1000),
    "train.reg_feature": Bound(0, 1000),
    "train.reg_warmup": Bound(0, NEVER),
    "train.seed": Bound(0, 2**31 - 1),
    "train.checkpoint_every": Bound(1, NEVER),
    "train.log_every": Bound(1, NEVER),
    "extract.resolution": Bound(8, 1024),
    "extract.band": Bound(0, 16),
    "extract.width": Bound(0, 10, open_lo=True),
    "extract.batch_points": Bound(1, 1 << 24),
    "extract.coarse_cells": Bound(1, 256),
    "extract.lipschitz": Bound(1, 100),
    "extract.block_cells": Bound(2, 256),
}

# Request fields (tasks.py dataclasses, service job bodies), by "operation.field" or plain "field".
REQUEST: dict[str, Bound] = {
    "resolution": SETTINGS["extract.resolution"],
    "band": SETTINGS["extract.band"],
    "interpolate.steps": Bound(2, 64),
    "interpolate.shapes": Bound(2, 16),  # how many shapes a path visits
    "interpolate.weights": Bound(1, 64),  # rows
    "interpolate.join_gap": Bound(0, 0.5),  # normalised units; 0 = parts stay as decoded
    "mesh.shapes": Bound(1, 16),  # live mesh: one shape, or the shapes of a blend
    "fit.iterations": Bound(1, 100_000),
    "fit.extra_steps": Bound(1, 1_000_000),
    "samples": Bound(1_000, 2_000_000),
    "train.steps": SETTINGS["train.steps"],
    "train.mesh_ids": Bound(1, 4096),  # service: meshes in a new model
}


def request_bound(operation: str, name: str) -> Bound | None:
    """The bound of request field ``name`` of ``operation`` (``"interpolate"``, ``"fit"``, ...)."""
    return REQUEST.get(f"{operation}.{name}", REQUEST.get(name))


def check(
    name: str, value: Any, kind: type, bound: Bound | None = None, choices: tuple[str, ...] = ()
) -> Any:
    """``value`` if it is a ``kind`` within ``bound`` / ``choices``; else ``ValueError`` with one line."""
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if kind is str:
        return _check_text(name, value, choices)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if kind is int and value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    value = kind(value)
    if bound is not None:
        low_ok = value > bound.lo if bound.open_lo else value >= bound.lo
        if not (low_ok and value <= bound.hi):
            raise ValueError(f"{name} must be {bound.text()}, got {_number(value)}")
    return value


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check_text(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {value!r}")
    if choices and value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value[:40]!r}")
    if name.endswith(".device") and not _DEVICE_RE.fullmatch(value):
        raise ValueError(f"{name} must be auto, cpu, cuda or cuda:N, got {value[:40]!r}")
    return value
