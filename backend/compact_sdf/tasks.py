"""The use-case layer: one typed request per operation and the one function that carries it out.

The CLI maps its arguments to a request, the service maps its JSON bodies to a request (the add-on
sends those bodies), and both call the function below, so an operation means the same thing from
every front end. Defaults live only in these dataclasses: argparse and the pydantic schemas read
theirs with :func:`default_of`, and ``tests/test_defaults.py`` compares what each front end ends up
with. Each request assembles its own config (preset or checkpoint, then overrides), picks its device
with :func:`resolve_device`, and rebuilds training samples from recorded sources in one place
(:func:`load_samples`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from compact_sdf import bounds
from compact_sdf.config import DEFAULT_PRESET, Config, ExtractConfig, get_preset, parse_overrides
from compact_sdf.device import resolve_device
from compact_sdf.errors import Cancelled, InputError
from compact_sdf.extract.connect import JOIN_GAP
from compact_sdf.progress import Progress, monotone, span
from compact_sdf.training.scale import for_collection

if TYPE_CHECKING:
    import trimesh

    from compact_sdf.checkpoint import LoadedModel
    from compact_sdf.data.samples import ShapeSamples
    from compact_sdf.extract.mesh import MeshArrays
    from compact_sdf.training.add_shape import FitResult
    from compact_sdf.training.train import TrainProgress, TrainResult

__all__ = [
    "AblateRequest",
    "CodesExportRequest",
    "CodesImportRequest",
    "EvaluateRequest",
    "ExtractRequest",
    "FitRequest",
    "InterpolateRequest",
    "PrepareRequest",
    "TrainRequest",
    "default_of",
    "resolve_device",
]

EXTRACT_DEFAULTS = ExtractConfig()  # the requests' resolution and band are the config's defaults
WARM_SHARE = 0.8  # of train's preparation progress on resume: the samples; the rest, added codes' fits
Overrides = Mapping[str, Any]
StopFn = Callable[[], bool]


def default_of(request: type, name: str) -> Any:
    """The default of field ``name`` of a request dataclass (what every front end shows)."""
    f = {f.name: f for f in dataclasses.fields(request)}[name]
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def overrides_from(items: list[str] | Overrides) -> dict[str, Any]:
    """``["section.key=value", ...]`` (the CLI's ``--set``) or a mapping, as a dict."""
    try:
        return parse_overrides(items) if isinstance(items, list) else dict(items)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def build_config(base: Config | str, overrides: Overrides | None = None, **settings: Any) -> Config:
    """A preset name (or a config) with ``section.key`` overrides and named settings applied.

    ``settings`` are ``section__key=value`` pairs the request fields map to (``train__steps=300``);
    ``None`` values are skipped. A bad preset, key or value is the user's error (``InputError``).
    """
    extra = {k.replace("__", "."): v for k, v in settings.items() if v is not None}
    try:
        cfg = get_preset(base) if isinstance(base, str) else base
        return cfg.override({**dict(overrides or {}), **extra})
    except ValueError as exc:
        raise InputError(str(exc)) from None


def preset_for(preset: str, n_shapes: int, collection: bool) -> Config:
    """The preset, scaled to ``n_shapes`` when ``collection`` (``scale.for_collection``): what a new
    model of that many shapes starts from in the CLI and the service alike."""
    try:
        cfg = get_preset(preset)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return for_collection(cfg, n_shapes) if collection and n_shapes > 0 else cfg


def checkpoint_config(model_dir: str | Path) -> Config:
    """The config a model directory was trained with."""
    from compact_sdf.checkpoint import read_checkpoint

    try:
        return Config.from_dict(read_checkpoint(Path(model_dir))["config"])
    except (ValueError, TypeError) as exc:
        raise InputError(f"{model_dir} has an unreadable config: {exc}") from None


def _on_device(cfg: Config, device: str) -> Config:
    """``cfg`` training on the request's device where its own setting is ``auto``.

    The name is resolved where the work starts (``resolve_device``), per rank under torchrun.
    """
    if cfg.train.device != "auto":
        return cfg
    return replace(cfg, train=replace(cfg.train, device=device))


def load_samples(
    meshes: list[tuple[str | None, str]],
    cfg: Config,
    cache_dir: str | None,
    progress: Progress | None = None,
) -> tuple[list[ShapeSamples], dict[str, str]]:
    """Samples of ``(name or None for the file stem, mesh path)`` pairs, and name -> resolved path."""
    from compact_sdf.data import prepare_mesh

    shapes, sources = [], {}
    progress = monotone(progress)
    for i, (name, path) in enumerate(meshes):
        if not Path(path).is_file():
            label = f"shape '{name}'" if name else "mesh"
            raise InputError(f"no such mesh file for {label}: {path}")
        part = _part(progress, i, len(meshes), name or Path(path).stem)
        s = prepare_mesh(path, name=name, cfg=cfg.sampling, cache_dir=cache_dir, progress=part)
        sources[s.name] = str(Path(path).resolve())
        shapes.append(s)
    return shapes, sources


def recorded_sources(model_dir: str | Path, skip: Collection[str] = ()) -> list[tuple[str | None, str]]:
    """``(name, source mesh)`` of the shapes not in ``skip``; one with no readable source is refused."""
    from compact_sdf.checkpoint import ShapeInfo, read_checkpoint

    out: list[tuple[str | None, str]] = []
    for entry in read_checkpoint(Path(model_dir))["shapes"]:
        info = ShapeInfo.from_dict(entry)
        if info.name in skip:
            continue
        if not info.source or not Path(info.source).is_file():
            raise InputError(
                f"shape '{info.name}' of the model has no readable source mesh "
                f"(recorded: {info.source!r}); name its mesh again"
            )
        out.append((info.name, info.source))
    return out


def _part(progress: Progress | None, i: int, n: int, name: str) -> Progress | None:
    """The ``i``-th of ``n`` equal parts of ``progress``, its stages named after shape ``name``."""
    if progress is None:
        return None
    return lambda stage, f: progress(f"{name} ({i + 1}/{n}): {stage}", (i + min(max(f, 0.0), 1.0)) / n)


def _guarded(progress: Progress | None, should_stop: StopFn | None) -> Progress | None:
    """``progress`` that raises ``Cancelled`` once a stop was asked for (for phases that save nothing)."""
    if should_stop is None:
        return progress

    def report(stage: str, f: float) -> None:
        if should_stop():
            raise Cancelled("cancelled")
        if progress is not None:
            progress(stage, f)

    return report


class _Bounded:
    """Checks the request's fields against ``bounds.REQUEST`` on creation (``operation`` names the row)."""

    operation: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            bound = bounds.request_bound(self.operation, f.name)
            value = getattr(self, f.name)
            if bound is None or value is None:
                continue
            name = f"{self.operation}.{f.name}"
            try:
                if isinstance(value, tuple | list):
                    bounds.check(f"{name} (count)", len(value), int, bound)
                else:
                    bounds.check(name, value, float if isinstance(value, float) else int, bound)
            except ValueError as exc:
                raise InputError(str(exc)) from None


# --- prepare -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareRequest(_Bounded):
    """Validate one mesh and build (or load from the cache) its training samples."""

    operation: ClassVar[str] = "prepare"

    mesh: str
    name: str | None = None  # default: the file's stem
    preset: str = DEFAULT_PRESET
    overrides: Overrides = field(default_factory=dict)
    allow_open: bool = False
    cache_dir: str | None = None

    def config(self) -> Config:
        return build_config(self.preset, self.overrides, sampling__allow_open=self.allow_open or None)


def prepare(req: PrepareRequest, progress: Progress | None = None) -> ShapeSamples:
    from compact_sdf.data import prepare_mesh

    cfg = req.config()
    return prepare_mesh(req.mesh, name=req.name, cfg=cfg.sampling, cache_dir=req.cache_dir, progress=progress)


# --- train ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainRequest(_Bounded):
    """Train a new model on ``meshes``, or (``resume``) continue the one in ``model_dir``.

    On resume the checkpoint's settings are kept (``preset`` is not used; overrides still apply)
    and the checkpoint's shapes not named again are rebuilt from their recorded source meshes.
    """

    operation: ClassVar[str] = "train"

    model_dir: str
    meshes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # one per mesh; empty: the files' stems
    preset: str = DEFAULT_PRESET
    steps: int | None = None  # total steps; default: the preset's
    overrides: Overrides = field(default_factory=dict)
    allow_open: bool = False
    resume: bool = False
    cache_dir: str | None = None
    device: str = "auto"  # used where the config says auto
    # scale the preset to the number of meshes (scale.for_collection; a no-op up to its batch)
    collection: bool = True

    def config(self) -> Config:
        if self.resume:
            base: str | Config = checkpoint_config(self.model_dir)
        else:
            base = preset_for(self.preset, len(self.meshes), self.collection)
        cfg = build_config(
            base, self.overrides, sampling__allow_open=self.allow_open or None, train__steps=self.steps
        )
        return _on_device(cfg, self.device)

    def sources(self) -> list[tuple[str | None, str]]:
        """The named meshes, then (on resume) the checkpoint's other shapes from their recorded paths."""
        if self.names and len(self.names) != len(self.meshes):
            raise InputError("give one name per mesh")
        named: list[tuple[str | None, str]] = list(
            zip(self.names or [None] * len(self.meshes), self.meshes, strict=True)
        )
        if not self.resume:
            return named
        given = {name or Path(path).stem for name, path in named}
        return named + recorded_sources(self.model_dir, given)


def train(
    req: TrainRequest,
    *,
    progress: Progress | None = None,
    on_step: Callable[[TrainProgress], None] | None = None,
    should_stop: StopFn | None = None,
) -> TrainResult:
    """Prepare every shape's samples (``progress``; also the code fits of shapes a resumed run
    adds), then train (``on_step`` after each step)."""
    from compact_sdf.training.train import train as run

    cfg = req.config()
    meshes = req.sources()
    if not meshes:
        raise InputError("name at least one mesh to train on")
    # a resumed run's added shapes get their code fits after the samples: the last fifth of the bar
    share = WARM_SHARE if req.resume else 1.0
    prepare = _guarded(span(progress, 0.0, share), should_stop)
    shapes, sources = load_samples(meshes, cfg, req.cache_dir, prepare)
    return run(
        req.model_dir,
        shapes,
        cfg,
        resume=req.resume,
        progress=on_step,
        should_stop=should_stop,
        sources=sources,
        warm_progress=monotone(span(progress, share, 1.0)),
    )


# --- extract, interpolate, evaluate, ablate ------------------------------------------------------


def _load(model_dir: str, device: str) -> LoadedModel:
    """The model, from this process's model cache when one is installed (``model_cache.install``)."""
    from compact_sdf import model_cache
    from compact_sdf.checkpoint import load_model

    cache = model_cache.active()
    if cache is not None:
        return cache.get(model_dir, resolve_device(device))
    return load_model(model_dir, device=resolve_device(device))


def check_extract_overrides(overrides: Overrides) -> None:
    """An extraction of a trained model may change its ``extract.*`` settings only."""
    bad = sorted(k for k in overrides if not k.startswith("extract."))
    if bad:
        raise InputError(f"only extract.* settings apply here, got {', '.join(bad)}")


def _extract_config(loaded: LoadedModel, resolution: int, band: int, overrides: Overrides) -> ExtractConfig:
    """The model's extraction settings with the request's resolution and band; ``extract.*`` overrides win."""
    check_extract_overrides(overrides)
    return build_config(
        loaded.config, {"extract.resolution": resolution, "extract.band": band, **overrides}
    ).extract


@dataclass(frozen=True)
class ExtractRequest(_Bounded):
    """Mesh one shape of a trained model, in the shape's own coordinates."""

    operation: ClassVar[str] = "extract"

    model_dir: str
    shape: str
    mode: str = "fused"  # fused, generalization or overfitting
    resolution: int = EXTRACT_DEFAULTS.resolution  # marching-cubes cells per side
    # paper fusion (extract.fusion=paper): voxel layers around the s_g surface that use s_o
    band: int = EXTRACT_DEFAULTS.band
    format: str = "ply"
    overrides: Overrides = field(default_factory=dict)  # extract.* only
    device: str = "auto"


@dataclass(frozen=True)
class Reconstruction:
    """A shape's mesh and what it lost against the source the model was trained on, in words
    (``surface_figures.differences``: parts, genus, area); ``lost`` is empty when it kept them all or
    when the model recorded nothing of the source (trained before figures were recorded, codes
    imported, an open mesh)."""

    mesh: MeshArrays
    lost: tuple[str, ...] = ()


def extract(req: ExtractRequest, progress: Progress | None = None) -> Reconstruction:
    from compact_sdf.extract.fusion import extract_shape

    loaded = _load(req.model_dir, req.device)
    ecfg = _extract_config(loaded, req.resolution, req.band, req.overrides)
    mesh = extract_shape(loaded, req.shape, ecfg, req.mode, progress=progress)
    return judge(loaded, [req.shape], [1.0], mesh)


def judge(loaded: LoadedModel, names: list[str], row: Sequence[float], mesh: MeshArrays) -> Reconstruction:
    """``mesh`` with what is wrong with it in words: a shape's own reconstruction (a weight of 1)
    against its source's recorded figures, an in-between against its ends' (``blend_differences``)."""
    from compact_sdf.surface_figures import blend_differences, differences, figures

    ends = [loaded.shapes[loaded.shape_index(n)].figures for n in names]
    weights = list(row)
    own = max(range(len(names)), key=weights.__getitem__)
    if weights[own] >= 1.0 - 1e-9:
        source = ends[own]
        result = figures(mesh.to_trimesh()) if source is not None else None
        if source is None or result is None:
            return Reconstruction(mesh)
        cell = 2.0 / loaded.config.sampling.fine_cells
        return Reconstruction(mesh, tuple(differences(source, result, cell)))
    return Reconstruction(mesh, tuple(blend_differences(ends, figures(mesh.to_trimesh()))))


@dataclass(frozen=True)
class InterpolateRequest(_Bounded):
    """Meshes along a path through two or more shapes' codes (``steps`` meshes, or one per weight row)."""

    operation: ClassVar[str] = "interpolate"

    model_dir: str
    shapes: tuple[str, ...]
    steps: int = 5
    weights: tuple[tuple[float, ...], ...] | None = None  # replaces steps when given
    mode: str = "linear"  # linear or slerp
    join_gap: float = JOIN_GAP  # in-betweens: join parts s_g brings this close (0: off)
    resolution: int = EXTRACT_DEFAULTS.resolution
    band: int = EXTRACT_DEFAULTS.band
    format: str = "ply"
    overrides: Overrides = field(default_factory=dict)  # extract.* only
    device: str = "auto"


def interpolate(req: InterpolateRequest, progress: Progress | None = None) -> list[Reconstruction]:
    """One mesh per step, each with what is wrong with it in words (``judge``)."""
    from compact_sdf.extract.interpolate import interpolate_shapes, path_weights

    if len(req.shapes) < 2:
        raise InputError("interpolation needs two shapes: --from A --to B (or --shapes A B ...)")
    loaded = _load(req.model_dir, req.device)
    ecfg = _extract_config(loaded, req.resolution, req.band, req.overrides)
    names = list(req.shapes)
    steps: Any = [list(w) for w in req.weights] if req.weights is not None else req.steps
    meshes = interpolate_shapes(
        loaded, names, steps, req.mode, ecfg, join_gap=req.join_gap, progress=progress
    )
    rows = path_weights(len(names), steps) if isinstance(steps, int) else steps
    return [judge(loaded, names, row, mesh) for row, mesh in zip(rows, meshes, strict=True)]


@dataclass(frozen=True)
class EvaluateRequest(_Bounded):
    """Reconstruct ``shape`` and score it against a ground-truth mesh."""

    operation: ClassVar[str] = "evaluate"

    model_dir: str
    shape: str
    mesh: str  # ground truth
    mode: str = "fused"
    resolution: int = EXTRACT_DEFAULTS.resolution
    band: int = EXTRACT_DEFAULTS.band
    samples: int = 100_000  # surface samples on each mesh
    overrides: Overrides = field(default_factory=dict)  # extract.* only
    device: str = "auto"


def evaluate(req: EvaluateRequest, progress: Progress | None = None) -> tuple[dict[str, Any], MeshArrays]:
    from compact_sdf.evaluate import evaluate_shape

    loaded = _load(req.model_dir, req.device)
    ecfg = _extract_config(loaded, req.resolution, req.band, req.overrides)
    gt = _ground_truth(req.mesh)
    return evaluate_shape(loaded, req.shape, gt, ecfg, req.mode, samples=req.samples, progress=progress)


@dataclass(frozen=True)
class AblateRequest(_Bounded):
    """Generalization, overfitting, the paper fusion (n = 3) and the distance fusion on one shape."""

    operation: ClassVar[str] = "ablate"

    model_dir: str
    shape: str
    mesh: str
    resolution: int = EXTRACT_DEFAULTS.resolution
    band: int = EXTRACT_DEFAULTS.band
    samples: int = 100_000
    overrides: Overrides = field(default_factory=dict)
    device: str = "auto"


def ablate(req: AblateRequest, progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    from compact_sdf.evaluate import ablate as run

    loaded = _load(req.model_dir, req.device)
    ecfg = _extract_config(loaded, req.resolution, req.band, req.overrides)
    return run(loaded, req.shape, _ground_truth(req.mesh), ecfg, samples=req.samples, progress=progress)


def _ground_truth(path: str) -> trimesh.Trimesh:
    from compact_sdf.data.load import load_mesh

    return load_mesh(path)


# --- fit, codes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitRequest(_Bounded):
    """Add a new mesh to a trained model: its code only (decoder frozen), ``full`` retraining, or
    ``auto``: the code, then the full fine-tune where the band check says the code does not hold it."""

    operation: ClassVar[str] = "fit"

    model_dir: str
    mesh: str
    name: str | None = None  # default: the file's stem
    mode: str = "auto"  # auto, code or full (fit.MODES)
    iterations: int = 800  # code-fit iterations
    extra_steps: int | None = (
        None  # full (and auto's fine-tune): further training steps; default: the preset's
    )
    overrides: Overrides = field(default_factory=dict)
    allow_open: bool = False
    cache_dir: str | None = None
    device: str = "auto"

    def config(self) -> Config:
        cfg = build_config(
            checkpoint_config(self.model_dir), self.overrides, sampling__allow_open=self.allow_open or None
        )
        return _on_device(cfg, self.device)


def fit(req: FitRequest, progress: Progress | None = None, should_stop: StopFn | None = None) -> FitResult:
    """Prepare the mesh (cancel stops it at once), then fit; the fit stops on its own terms."""
    from compact_sdf.training.add_shape import fit_shape

    cfg = req.config()
    (samples,), sources = load_samples(
        [(req.name, req.mesh)], cfg, req.cache_dir, _guarded(span(progress, 0.0, 0.3), should_stop)
    )
    return fit_shape(
        req.model_dir,
        samples,
        cfg,
        mode=req.mode,
        iterations=req.iterations,
        extra_steps=req.extra_steps,
        cache_dir=req.cache_dir,
        source=sources[samples.name],
        progress=span(progress, 0.3, 1.0),
        should_stop=should_stop,
    )


@dataclass(frozen=True)
class CodesExportRequest(_Bounded):
    """Write a model's latent codes to ``.npz`` (+ ``.json`` metadata) or one ``.json``."""

    operation: ClassVar[str] = "codes_export"

    model_dir: str
    out: str
    device: str = "cpu"


def export_codes(req: CodesExportRequest) -> tuple[Path, LoadedModel]:
    from compact_sdf.codes_io import export_codes as run

    loaded = _load(req.model_dir, req.device)
    return run(loaded, req.out), loaded


@dataclass(frozen=True)
class CodesImportRequest(_Bounded):
    """Load exported codes into a model (known names overwrite, new ones are added)."""

    operation: ClassVar[str] = "codes_import"

    model_dir: str
    codes: str
    force: bool = False  # accept codes exported from another decoder
    label: str | None = None  # the file's name in messages (the service imports a temporary copy)


def import_codes(req: CodesImportRequest) -> list[str]:
    from compact_sdf.codes_io import import_codes as run

    return list(run(req.model_dir, req.codes, force=req.force, label=req.label))


def request_from(request: type, params: Mapping[str, Any], **fixed: Any) -> Any:
    """A request from stored job parameters: known fields only, the rest take their defaults."""
    names = {f.name for f in dataclasses.fields(request)}
    values = {
        k: tuple(v) if isinstance(v, list) else v for k, v in params.items() if k in names and v is not None
    }
    return request(**{**values, **fixed})
