"""Model directories: atomic checkpoint writes, a readable summary, and ``load_model``.

A model directory holds ``checkpoint.pt`` (everything needed to resume bit-exactly: config, shape
names / hashes / normalisations, step, model, optimiser and RNG states, and where s_o was trained:
``trained_region.py``), ``best.pt`` (the same for the state with the lowest held-out check,
``heldout.py``), ``model.json`` (a summary for people and the service) and ``log.csv`` (the loss
log). Files are written to a temporary name and renamed, so a crash mid-write never leaves a half
checkpoint behind.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from compact_sdf.atomic import atomic_write, atomic_write_json
from compact_sdf.config import Config
from compact_sdf.data.normalize import Normalization
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.errors import CheckpointError, InputError
from compact_sdf.model import DualSDF
from compact_sdf.surface_figures import Figures
from compact_sdf.trained_region import TrainedRegion, from_payload

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"
SUMMARY_NAME = "model.json"
FORMAT = "compact-sdf-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ShapeInfo:
    """What a model remembers about each shape it was trained on."""

    name: str
    mesh_hash: str
    normalization: Normalization
    source: str | None = None
    figures: Figures | None = None  # the source's area, genus and parts (surface_figures.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mesh_hash": self.mesh_hash,
            "normalization": self.normalization.to_dict(),
            "source": self.source,
            "figures": None if self.figures is None else self.figures.to_dict(),
        }

    @classmethod
    def of(cls, samples: ShapeSamples, source: str | None) -> ShapeInfo:
        """What a model records of a shape it is trained on from that shape's samples."""
        return cls(samples.name, samples.mesh_hash, samples.normalization, source, samples.figures)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShapeInfo:
        return cls(
            name=str(data["name"]),
            mesh_hash=str(data["mesh_hash"]),
            normalization=Normalization.from_dict(data["normalization"]),
            source=data.get("source"),
            figures=Figures.from_dict(data.get("figures")),
        )


@dataclass
class LoadedModel:
    """A trained model ready for inference (``model`` is in eval mode on the requested device)."""

    model: DualSDF
    config: Config
    shapes: list[ShapeInfo]
    step: int
    model_dir: Path
    # values derived from this model that a long-lived process keeps as long as the model itself
    # (blend.py: each shape's fields on the lattice for live blends); dropped with the model
    memo: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    # where s_o was trained, per shape name (trained_region.py); empty for older checkpoints
    regions: dict[str, TrainedRegion] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.shapes]

    def shape_index(self, name: str) -> int:
        for i, s in enumerate(self.shapes):
            if s.name == name:
                return i
        raise InputError(f"unknown shape '{name}'; this model knows: {', '.join(self.names)}")

    def region(self, name: str) -> TrainedRegion | None:
        """Where s_o was trained for this shape, or None (an older checkpoint, an imported code)."""
        return self.regions.get(name)

    def code(self, name: str) -> torch.Tensor:
        """The latent code ``(d,)`` of a shape, detached."""
        return self.model.codes.weight[self.shape_index(name)].detach()


def save_checkpoint(model_dir: Path, payload: dict[str, Any], name: str = CHECKPOINT_NAME) -> Path:
    """Write ``payload`` (see ``train.py``) as ``name`` atomically; ``checkpoint.pt`` also updates
    ``model.json`` (``best.pt`` is an extra state beside it)."""
    model_dir = Path(model_dir)
    full = {"format": FORMAT, "version": FORMAT_VERSION, **payload}
    path = model_dir / name
    atomic_write(path, lambda p: torch.save(full, p))
    if name == CHECKPOINT_NAME:
        atomic_write_json(model_dir / SUMMARY_NAME, summarize(full))
    return path


def summarize(payload: dict[str, Any]) -> dict[str, Any]:
    """The human-readable part of a checkpoint (no tensors)."""
    params = sum(t.numel() for t in payload["model"].values())
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "preset": payload["config"].get("preset"),
        "step": payload["step"],
        "total_steps": payload["config"]["train"]["steps"],
        "shapes": payload["shapes"],
        "parameters": int(params),
        "last_losses": payload.get("last_losses", {}),
        "rollbacks": payload.get("rollbacks", []),
        "band_coverage": payload.get("band_coverage", {}),
        "check": payload.get("check", {}),
        "elapsed_s": payload.get("elapsed", 0.0),
        "config": payload["config"],
    }


def read_checkpoint(model_dir: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check the raw checkpoint dict; any problem is a one-line ``CheckpointError``."""
    model_dir = Path(model_dir)
    path = model_dir / CHECKPOINT_NAME if model_dir.is_dir() or not model_dir.suffix else model_dir
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"damaged checkpoint {path}: {reason[:200]}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a compact-sdf checkpoint")
    if data.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {data.get('version')}; this build reads {FORMAT_VERSION}"
        )
    missing = {"config", "shapes", "step", "model"} - set(data)
    if missing:
        raise CheckpointError(f"damaged checkpoint {path}: missing {', '.join(sorted(missing))}")
    return data


def model_from_payload(
    data: dict[str, Any], device: str | torch.device, extra_shapes: int = 0
) -> tuple[DualSDF, Config]:
    """Rebuild the network of a checkpoint (optionally with ``extra_shapes`` codes appended later)."""
    try:
        cfg = Config.from_dict(data["config"])
        model = DualSDF(cfg.model, len(data["shapes"]), sparse_grid=cfg.train.sparse_grid)
        model.load_state_dict(data["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"checkpoint does not match its own config: {str(exc).splitlines()[0][:200]}"
        ) from None
    return model.to(device), cfg


def load_model(model_dir: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a trained model for inference; a damaged or missing checkpoint raises ``CheckpointError``."""
    data = read_checkpoint(Path(model_dir), map_location="cpu")
    model, cfg = model_from_payload(data, device)
    model.eval()
    try:
        shapes = [ShapeInfo.from_dict(s) for s in data["shapes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"damaged shape table in checkpoint: {exc}") from None
    try:
        regions = from_payload(data.get("trained_region"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"damaged trained-region record in checkpoint: {exc}") from None
    return LoadedModel(
        model=model,
        config=cfg,
        shapes=shapes,
        step=int(data["step"]),
        model_dir=Path(model_dir),
        regions=regions,
    )
