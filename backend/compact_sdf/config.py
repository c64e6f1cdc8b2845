"""Configuration dataclasses and named presets.

Every tunable value lives here so the CLI, the service and the add-on speak
about the same settings with the same names. A preset is just a full
``Config``; any field can be overridden with ``Config.override("model.hidden=256")``
style strings or a dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, get_args, get_origin, get_type_hints

from compact_sdf import bounds


@dataclass(frozen=True)
class SamplingConfig:
    """Training-set construction (method.md section 3)."""

    coarse_cells: int = 128  # sparse uniform lattice: (coarse_cells+1)^3 points in [-1,1]^3
    fine_cells: int = 512  # dense lattice restricted to a band around the surface
    band_width: float = 6.5 * 2.0 / 512  # half-width of the fine band in normalised units (|sdf| <= this)
    surface_samples: int = 360_000  # generalization set: area-uniform surface samples + Gaussian offsets
    surface_sigma: float = 0.025
    uniform_samples: int = 180_000  # generalization set: uniform points in [-1,1]^3
    near_threshold: float = 0.1  # per-step sampler: half the batch from |sdf| <= this
    # [ours] s_o also trains on the generalization set's points with |sdf| <= band_width: exact
    # distances off the lattice, so a wall or gap thinner than a lattice cell is seen between nodes
    ovf_off_lattice: bool = True
    allow_open: bool = False  # accept non-watertight meshes (sign from generalised winding number)
    max_faces: int = 2_000_000
    seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Dual-branch network sizes (method.md section 2)."""

    code_dim: int = 256
    grid_res: int = 129  # grid vertices per side; spans [-1,1], vertex i at -1 + 2i/(grid_res-1)
    grid_channels: int = 128
    hidden: int = 512
    layers: int = 8  # hidden Linear+ReLU layers in each MLP
    skip_layer: int = 4  # the input is concatenated again before this hidden layer (0-based)
    pe_freqs: int = 8  # PE(x) = [x, sin(2^k x), cos(2^k x)], k = 0..pe_freqs-1
    code_init_std: float = 1.0 / 16.0
    code_max_norm: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (method.md section 4). Steps replace the release's epochs."""

    steps: int = 4000
    samples_per_shape: int = 50_000  # per branch, per shape, per step
    shapes_per_batch: int = 15
    loss: Literal["mse", "l1"] = "mse"
    # [ours] s_o's loss on values clamped to +-this many training band widths (DeepSDF's delta;
    # 0 = off, the paper): s_o is only used near the surface, so its capacity goes there. Measured
    # on 12 shapes (docs/benchmarks/fidelity.md): median CD -11%, genus-0 shapes lose their handles.
    # A shape whose every near prediction is past it is not clamped until one comes in (objective._clamped)
    ovf_clamp: float = 2.0
    lr_grid: float = 1e-1
    lr_codes: float = 1e-3
    lr_mlp: float = 1e-3
    decay_every: int = 1000
    decay_factor: float = 0.5
    reg_code: float = 1e-4
    reg_feature: float = 1e-4
    reg_warmup: int = 100
    sparse_grid: bool = True  # lazy Adam on the touched grid rows; False = dense Adam (release style)
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    device: str = "auto"  # "auto" = cuda when available, else cpu


@dataclass(frozen=True)
class ExtractConfig:
    """Fused extraction (method.md section 5)."""

    # marching-cubes cells per side over [-1,1]: the one default of every extraction (requests, CLI,
    # service, interpolate without a config, benchmarks); 128 is seconds on a CPU for a preview model
    resolution: int = 128
    # where s_o is used: "distance" = |s_g| <= width x the training band (resolution-independent),
    # "paper" = `band` voxel layers of the output lattice around the s_g surface (extract.py)
    fusion: Literal["distance", "paper"] = "distance"
    width: float = 0.75  # distance fusion: half-width in multiples of sampling.band_width
    band: int = 3  # paper fusion: voxel layers around the coarse generalization surface that use s_o
    # distance fusion: "keep" = the fused field's level set as it is; "close" = also close the
    # perforations and bridges shallower than a quarter of a training cell (handles.py): right on
    # thin CAD walls, but it closes true shallow holes too (docs/benchmarks/fidelity.md), so opt-in
    handles: Literal["keep", "close"] = "keep"
    # distance fusion: also use s_o where the shape's s_o training samples say the true surface is
    # (trained_region.py; models trained before the record fuse without it). False: s_g's band only
    trained_region: bool = True
    # where the lattice work runs: "tensors" on the model's device (on_device.py), "numpy" on the
    # CPU; "auto" = tensors on CUDA, numpy on the CPU (30% fewer network points, the CPU's cost)
    meshing: Literal["auto", "numpy", "tensors"] = "auto"
    batch_points: int = 262_144
    coarse_cells: int = 16  # cells per side of the first level of the sparse surface search
    # assumed bound on |grad s_g|: a cell is skipped when a corner has |s| > L * diagonal
    lipschitz: float = 1.5
    block_cells: int = 32  # marching cubes runs on blocks of this many cells per side


@dataclass(frozen=True)
class Config:
    preset: str = "paper"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Rebuild from ``to_dict`` output; unknown keys are an error, missing keys take defaults and
        ``RETIRED`` keys (settings of removed experiments that old checkpoints still hold) are dropped."""
        parts: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            sub = _SECTIONS.get(f.name)
            if sub is not None:
                value = {k: v for k, v in value.items() if f"{f.name}.{k}" not in RETIRED}
                _check_keys(sub, value, f.name)
                value = sub(**value)
            parts[f.name] = value
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown config sections: {sorted(unknown)}")
        return cls(**parts)

    def override(self, overrides: dict[str, Any] | list[str]) -> Config:
        """Return a copy with ``section.key`` values replaced (strings are parsed to the field's type)."""
        items = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        cfg = self
        for dotted, value in items.items():
            section, _, key = dotted.partition(".")
            sub = _SECTIONS.get(section)
            if sub is None or not key:
                known = ", ".join(sorted(_SECTIONS))
                raise ValueError(f"unknown setting '{dotted}': use section.key with section in {known}")
            current = getattr(cfg, section)
            names = {f.name: f for f in fields(sub)}
            if key not in names:
                raise ValueError(f"unknown setting '{dotted}'; known: {', '.join(sorted(names))}")
            kind = type(getattr(current, key))
            typed = bounds.check(
                dotted,
                _coerce(value, kind, dotted),
                kind,
                bounds.SETTINGS.get(dotted),
                setting_choices(sub, key),
            )
            cfg = replace(cfg, **{section: replace(current, **{key: typed})})
        return cfg


# Settings that were removed (the latent-space prior and blended-code experiments, off by default
# and not needed for clean in-betweens): checkpoints written before still hold them, so they load.
RETIRED = frozenset(
    {
        "train.code_prior",
        "train.blend_weight",
        "train.blend_branches",
        "train.blend_target",
        "train.blend_path",
        "train.blend_fraction",
        "train.blend_start",
        "train.blend_warmup",
    }
)

_SECTIONS: dict[str, Any] = {
    "sampling": SamplingConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "extract": ExtractConfig,
}


def _check_keys(sub: Any, value: dict[str, Any], section: str) -> None:
    known = {f.name for f in fields(sub)}
    unknown = set(value) - known
    if unknown:
        raise ValueError(f"unknown keys in config section '{section}': {sorted(unknown)}")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override '{item}' must look like section.key=value")
        out[key.strip()] = value.strip()
    return out


def _coerce(value: Any, kind: type, name: str) -> Any:
    """Parse a ``--set`` string to the field's kind; other values are checked, never converted here."""
    if not isinstance(value, str) or kind is str:
        return value
    text = value.strip().lower()
    if kind is bool:
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    try:
        if kind is int:
            return float(text) if "e" in text or "." in text or "n" in text else int(text)
        if kind is float:
            return float(text)
    except ValueError:
        pass
    raise ValueError(f"setting '{name}' expects {kind.__name__}, got '{value[:40]}'")


def config_sections() -> dict[str, type]:
    """Section name -> settings dataclass (``sampling``, ``model``, ``train``, ``extract``)."""
    return dict(_SECTIONS)


def setting_choices(section: type, key: str) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` setting (empty for any other)."""
    hint = get_type_hints(section)[key]
    return tuple(get_args(hint)) if get_origin(hint) is Literal else ()


@dataclass(frozen=True)
class PresetSizes:
    """The sizes that make a CPU-sized preset; every other setting keeps its dataclass default.

    Named fields, so a preset reads without counting columns. Every preset's fine lattice is twice
    as fine as its coarse one and it draws half as many uniform as surface samples.
    """

    # sampling
    coarse_cells: int
    band_cells: float  # band half-width in fine-lattice cells
    surface_samples: int
    # model
    code_dim: int
    grid_res: int
    grid_channels: int
    hidden: int
    layers: int
    skip_layer: int
    # train
    steps: int
    samples_per_shape: int
    shapes_per_batch: int
    lr_grid: float
    decay_every: int
    checkpoint_every: int
    reg_warmup: int

    def config(self, name: str) -> Config:
        """The full ``Config`` of preset ``name``."""
        fine = 2 * self.coarse_cells
        return Config(
            preset=name,
            sampling=SamplingConfig(
                coarse_cells=self.coarse_cells,
                fine_cells=fine,
                band_width=self.band_cells * 2.0 / fine,
                surface_samples=self.surface_samples,
                uniform_samples=self.surface_samples // 2,
            ),
            model=ModelConfig(**self._section(ModelConfig)),
            train=TrainConfig(**self._section(TrainConfig)),
        )

    def _section(self, section: type) -> dict[str, Any]:
        names = {f.name for f in fields(section)}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in names}


# A few shapes in a few minutes on 2 CPU cores.
_PREVIEW = PresetSizes(
    coarse_cells=64,
    band_cells=3.5,
    surface_samples=60_000,
    code_dim=64,
    grid_res=33,
    grid_channels=16,
    hidden=128,
    layers=4,
    skip_layer=2,
    steps=600,
    samples_per_shape=4_000,
    shapes_per_batch=8,
    lr_grid=3e-2,
    decay_every=400,
    checkpoint_every=200,
    reg_warmup=50,
)
SIZES: dict[str, PresetSizes] = {
    "preview": _PREVIEW,
    # preview with MLPs twice as wide: thin parts and holes on a CPU, about 2.5x preview's time per step.
    # On 12 shared meshes genus equal on 9 against 7, median CD -9% (docs/benchmarks/fidelity.md).
    "detail": replace(_PREVIEW, hidden=256),
    # For tests and smoke runs: seconds on a CPU, coarse results.
    "tiny": replace(
        _PREVIEW,
        coarse_cells=32,
        surface_samples=20_000,
        code_dim=16,
        grid_res=17,
        grid_channels=8,
        hidden=64,
        steps=100,
        samples_per_shape=2_000,
        shapes_per_batch=4,
        decay_every=1000,
        checkpoint_every=50,
        reg_warmup=10,
    ),
    # Between the two: a CPU run of tens of minutes, or a quick GPU run.
    "balanced": PresetSizes(
        coarse_cells=128,
        band_cells=4.5,
        surface_samples=200_000,
        code_dim=128,
        grid_res=65,
        grid_channels=32,
        hidden=256,
        layers=6,
        skip_layer=3,
        steps=2000,
        samples_per_shape=16_000,
        shapes_per_batch=8,
        lr_grid=1e-1,
        decay_every=700,
        checkpoint_every=500,
        reg_warmup=100,
    ),
}


# "paper" is the paper's model (method.md section 2), the dataclass defaults; it needs a GPU.
PRESETS: dict[str, Config] = {
    **{name: sizes.config(name) for name, sizes in SIZES.items()},
    "paper": Config(preset="paper"),
}
# The preset of a new model wherever none is named: the CLI, the service, the add-on, the benchmarks.
DEFAULT_PRESET = "preview"


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "RETIRED",
    "SIZES",
    "Config",
    "ExtractConfig",
    "ModelConfig",
    "PresetSizes",
    "SamplingConfig",
    "TrainConfig",
    "get_preset",
]
