"""What each job kind does: thin adapters from a stored job to the functions the CLI calls.

No work is re-implemented here; the handlers load inputs from the data directory, call the data /
train / extract / interpolate / fit / metrics modules, and write results atomically under
``DATA/results/<job-id>/``.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compact_sdf.config import Config, get_preset
from compact_sdf.errors import Cancelled, InputError
from compact_sdf.progress import Progress
from compact_sdf.service.paths import DataDir, new_id, temp_path_like
from compact_sdf.service.store import Store

CHECKPOINT = "checkpoint.pt"


@dataclass
class JobContext:
    """Everything a handler may use: the job row, where files go, and how to report and stop."""

    job: dict[str, Any]
    data: DataDir
    store: Store
    report: Callable[[dict[str, Any]], None]  # store a progress dict (throttled by the worker)
    should_stop: Callable[[], bool]
    device: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.job["params"])

    def stage(self, name: str, lo: float = 0.0, hi: float = 1.0) -> Progress:
        """A ``(text, fraction)`` callback for the data/extract modules that maps into [lo, hi] of the job
        and stops the job at the next call once cancel was asked for."""

        def progress(text: str, fraction: float) -> None:
            if self.should_stop():
                raise Cancelled("cancelled")
            frac = min(max(float(fraction), 0.0), 1.0)
            self.report({"stage": f"{name}: {text}" if text else name, "fraction": lo + (hi - lo) * frac})

        return progress

    def result_path(self, filename: str) -> Path:
        return self.data.result_file(self.job["id"], filename)


def build_config(preset: str, overrides: dict[str, Any]) -> Config:
    """A preset plus ``section.key`` overrides; a bad key or value is the user's error (422)."""
    try:
        return get_preset(preset).override(dict(overrides))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def model_config(model: dict[str, Any], overrides: dict[str, Any] | None = None) -> Config:
    """The config stored with a model, with optional overrides (a bad one is the user's error)."""
    try:
        cfg = Config.from_dict(model["config"])
    except (ValueError, TypeError) as exc:
        raise InputError(f"model {model['id']} has an unreadable config: {exc}") from None
    try:
        return cfg.override(dict(overrides)) if overrides else cfg
    except ValueError as exc:
        raise InputError(str(exc)) from None


def save_mesh_atomic(mesh: Any, path: Path) -> None:
    """``mesh.save_mesh`` picks the format by suffix; write a sibling with that suffix, then rename."""
    from compact_sdf.mesh import save_mesh

    tmp = temp_path_like(path)
    try:
        save_mesh(mesh, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _prepare_samples(ctx: JobContext, mesh_id: str, name: str, cfg: Config, lo: float, hi: float) -> Any:
    row = ctx.store.get_mesh(mesh_id)
    if row is None:
        raise InputError(f"mesh {mesh_id} no longer exists")
    from compact_sdf.data import prepare_mesh

    sampling = replace(cfg.sampling, allow_open=bool(row["allow_open"]) or cfg.sampling.allow_open)
    return prepare_mesh(
        ctx.data.mesh_path(mesh_id),
        name=name,
        cfg=sampling,
        cache_dir=ctx.data.cache_dir,
        progress=ctx.stage(f"prepare {name}", lo, hi),
    )


def run_prepare(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    cfg = build_config(p.get("preset", "tiny"), p.get("overrides", {}))
    mesh = ctx.store.get_mesh(p["mesh_id"])
    name = mesh["name"] if mesh else "mesh"
    samples = _prepare_samples(ctx, p["mesh_id"], name, cfg, 0.0, 1.0)
    return {
        "mesh_id": p["mesh_id"],
        "mesh_hash": samples.mesh_hash,
        "ovf_points": int(samples.ovf_points.shape[0]),
        "gen_points": int(samples.gen_points.shape[0]),
        "files": [],
    }


def run_train(ctx: JobContext) -> dict[str, Any]:
    """Prepare every shape (cached), then train; resumes from the model's checkpoint when one exists."""
    from compact_sdf.train import train

    model = _model(ctx)
    cfg = model_config(model)
    if cfg.train.device == "auto":
        cfg = replace(cfg, train=replace(cfg.train, device=ctx.device))
    shapes = model["shapes"]
    samples = []
    for i, shape in enumerate(shapes):
        lo, hi = 0.2 * i / len(shapes), 0.2 * (i + 1) / len(shapes)
        samples.append(_prepare_samples(ctx, shape["mesh_id"], shape["name"], cfg, lo, hi))
    model_dir = ctx.data.model_dir(model["id"])
    model_dir.mkdir(parents=True, exist_ok=True)
    resume = (model_dir / CHECKPOINT).is_file()
    ctx.store.update_model(model["id"], status="training")

    def on_progress(tp: Any) -> None:
        total = max(int(tp.total_steps), 1)
        ctx.report(
            {
                "stage": "train",
                "fraction": 0.2 + 0.8 * min(int(tp.step) / total, 1.0),
                "step": int(tp.step),
                "total_steps": int(tp.total_steps),
                "loss_gen": _finite(tp.loss_gen),
                "loss_ovf": _finite(tp.loss_ovf),
                "samples_per_s": _finite(tp.samples_per_s),
                "eta_s": _finite(tp.eta_s),
                "resumed": resume,
            }
        )

    try:
        result = train(
            model_dir, samples, cfg, resume=resume, progress=on_progress, should_stop=ctx.should_stop
        )
    except BaseException:
        has_ckpt = (model_dir / CHECKPOINT).is_file()
        ctx.store.update_model(model["id"], status="interrupted" if has_ckpt else "failed")
        raise
    if ctx.should_stop():
        ctx.store.update_model(model["id"], status="interrupted")
        raise Cancelled("cancelled; the last checkpoint is kept")
    ctx.store.update_model(model["id"], status="ready")
    return {"model_id": model["id"], "resumed": resume, "train": _jsonable(result), "files": []}


def run_extract(ctx: JobContext) -> dict[str, Any]:
    from compact_sdf.extract import extract_shape

    p = ctx.params
    loaded, cfg = _load(ctx)
    ecfg = replace(cfg.extract, resolution=int(p.get("resolution", 128)), band=int(p.get("band", 3)))
    mesh = extract_shape(loaded, p["shape"], ecfg, mode=p.get("mode", "fused"), progress=ctx.stage("extract"))
    name = f"{p['shape']}_{p.get('mode', 'fused')}.{p.get('format', 'ply')}"
    save_mesh_atomic(mesh, ctx.result_path(name))
    return {"files": [name], "vertices": len(mesh.vertices), "faces": len(mesh.faces)}


def run_interpolate(ctx: JobContext) -> dict[str, Any]:
    from compact_sdf.interpolate import interpolate_shapes

    p = ctx.params
    loaded, cfg = _load(ctx)
    ecfg = replace(cfg.extract, resolution=int(p.get("resolution", 96)))
    weights = p.get("weights")
    steps: Any = weights if weights is not None else int(p.get("steps", 5))
    meshes = interpolate_shapes(
        loaded, list(p["shapes"]), steps, p.get("mode", "linear"), ecfg, progress=ctx.stage("interpolate")
    )
    files = []
    for i, mesh in enumerate(meshes):
        name = f"interp_{i:02d}.{p.get('format', 'ply')}"
        save_mesh_atomic(mesh, ctx.result_path(name))
        files.append(name)
    return {"files": files}


def run_fit(ctx: JobContext) -> dict[str, Any]:
    """Add an uploaded mesh to a trained model through ``fit.fit_shape`` (the CLI's code path)."""
    from compact_sdf.fit import FIT_ITERATIONS, fit_shape

    p = ctx.params
    model = _model(ctx)
    cfg = model_config(model, p.get("overrides"))
    mesh = ctx.store.get_mesh(p["mesh_id"])
    if mesh is None:
        raise InputError(f"mesh {p['mesh_id']} no longer exists")
    name = p.get("name") or mesh["name"]
    samples = _prepare_samples(ctx, p["mesh_id"], name, cfg, 0.0, 0.3)
    model_dir = ctx.data.model_dir(model["id"])

    def on_progress(text: str, fraction: float) -> None:  # no raise here: fit saves before it stops
        ctx.report({"stage": f"fit: {text}", "fraction": 0.3 + 0.7 * min(max(float(fraction), 0.0), 1.0)})

    result = fit_shape(
        model_dir,
        samples,
        cfg,
        full=bool(p.get("full", False)),
        iterations=int(p.get("iterations", FIT_ITERATIONS)),
        extra_steps=p.get("extra_steps"),
        cache_dir=ctx.data.cache_dir,
        source=str(ctx.data.mesh_path(p["mesh_id"])),
        progress=on_progress,
        should_stop=ctx.should_stop,
    )
    if ctx.should_stop():
        raise Cancelled("cancelled")
    ctx.store.update_model(model["id"], shapes=[*model["shapes"], {"name": name, "mesh_id": p["mesh_id"]}])
    return {"model_id": model["id"], "shape": name, "fit": _jsonable(result), "files": []}


def run_evaluate(ctx: JobContext) -> dict[str, Any]:
    """Reconstruct ``shape`` and compare it with its source mesh (``evaluate.evaluate_shape``, as the CLI)."""
    from compact_sdf.data.load import load_mesh
    from compact_sdf.evaluate import evaluate_shape

    p = ctx.params
    model = _model(ctx)
    mesh_id = p.get("mesh_id") or _shape_mesh_id(model, p["shape"])
    loaded, cfg = _load(ctx)
    ecfg = replace(cfg.extract, resolution=int(p.get("resolution", 128)))
    mode = p.get("mode", "fused")
    gt = load_mesh(ctx.data.mesh_path(mesh_id))
    metrics, pred = evaluate_shape(
        loaded,
        p["shape"],
        gt,
        ecfg,
        mode,
        samples=int(p.get("samples", 100_000)),
        progress=ctx.stage("extract", 0, 0.5),
    )
    name = f"{p['shape']}_{mode}.ply"
    save_mesh_atomic(pred, ctx.result_path(name))
    return {"files": [name], "metrics": _jsonable(metrics), "mesh_id": mesh_id}


HANDLERS: dict[str, Callable[[JobContext], dict[str, Any]]] = {
    "prepare": run_prepare,
    "train": run_train,
    "extract": run_extract,
    "interpolate": run_interpolate,
    "fit": run_fit,
    "evaluate": run_evaluate,
}


def export_codes_file(data: DataDir, model_id: str, fmt: str, device: str = "cpu") -> Path:
    """Write the model's codes via ``codes.export_codes`` to a fresh temp file under DATA/tmp."""
    from compact_sdf.checkpoint import load_model
    from compact_sdf.codes import export_codes

    loaded = load_model(data.model_dir(model_id), device=device)
    out = temp_path_like(data.tmp_dir / f"codes.{fmt}")
    export_codes(loaded, out)
    return out


def import_codes_file(data: DataDir, model_id: str, body: bytes, fmt: str) -> list[str]:
    """Hand an uploaded codes file to ``codes.import_codes``; return the imported shape names."""
    from compact_sdf.codes import import_codes

    folder = data.tmp_dir / f"codes-{new_id()}"
    folder.mkdir(mode=0o700)
    try:
        path = folder / f"codes.{fmt}"
        path.write_bytes(body)
        return list(import_codes(data.model_dir(model_id), path))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_model_dir(data: DataDir, model_id: str) -> None:
    shutil.rmtree(data.model_dir(model_id), ignore_errors=True)


def _model(ctx: JobContext) -> dict[str, Any]:
    model_id = ctx.job["model_id"]
    model = ctx.store.get_model(model_id) if model_id else None
    if model is None:
        raise InputError(f"model {model_id} no longer exists")
    return model


def _load(ctx: JobContext) -> tuple[Any, Config]:
    from compact_sdf.checkpoint import load_model

    model = _model(ctx)
    loaded = load_model(ctx.data.model_dir(model["id"]), device=ctx.device)
    return loaded, loaded.config


def _shape_mesh_id(model: dict[str, Any], shape: str) -> str:
    for s in model["shapes"]:
        if s["name"] == shape:
            return str(s["mesh_id"])
    raise InputError(f"model has no shape '{shape}'; known: {', '.join(s['name'] for s in model['shapes'])}")


def _finite(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _jsonable(value: Any) -> Any:
    """Reduce a result object (dataclass, numpy scalars, 0-d tensors) to JSON types; drop what is not data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        out = {str(k): _jsonable(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _SKIP}
    if isinstance(value, list | tuple):
        return [j for j in map(_jsonable, value) if j is not _SKIP]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and tuple(getattr(value, "shape", (0,))) == ():
        return _jsonable(value.item())
    if isinstance(value, Path):
        return value.name
    return _SKIP


_SKIP = object()
