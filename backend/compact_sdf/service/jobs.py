"""What each job kind does: thin adapters from a stored job to the functions the CLI calls.

No work is re-implemented here; the handlers load inputs from the data directory, call the data /
train / extract / interpolate / fit / metrics modules, and write results atomically under
``DATA/results/<job-id>/``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compact_sdf import tasks
from compact_sdf.atomic import atomic_write
from compact_sdf.config import Config
from compact_sdf.errors import Cancelled, InputError
from compact_sdf.progress import Progress
from compact_sdf.service.paths import DataDir, new_id, temp_path_like
from compact_sdf.service.store import Store
from compact_sdf.tasks import build_config

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


def model_config(model: dict[str, Any], overrides: dict[str, Any] | None = None) -> Config:
    """The config stored with a model, with optional overrides (a bad one is the user's error)."""
    try:
        cfg = Config.from_dict(model["config"])
    except (ValueError, TypeError) as exc:
        raise InputError(f"model {model['id']} has an unreadable config: {exc}") from None
    return build_config(cfg, overrides or {})


def _settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """A stored config as ``section.key`` overrides (so a request rebuilds exactly that config)."""
    return {f"{sec}.{k}": v for sec, part in cfg.items() if isinstance(part, dict) for k, v in part.items()}


def save_mesh_atomic(mesh: Any, path: Path) -> None:
    """Write a result mesh atomically (the temporary sibling keeps the suffix ``save_mesh`` reads)."""
    from compact_sdf.extract.mesh import save_mesh

    atomic_write(path, lambda tmp: save_mesh(mesh, tmp))


def _mesh(ctx: JobContext, mesh_id: str) -> dict[str, Any]:
    row = ctx.store.get_mesh(mesh_id)
    if row is None:
        raise InputError(f"mesh {mesh_id} no longer exists")
    return row


def run_prepare(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    mesh = _mesh(ctx, p["mesh_id"])
    req = tasks.request_from(
        tasks.PrepareRequest,
        p,
        mesh=str(ctx.data.mesh_path(p["mesh_id"])),
        name=mesh["name"],
        allow_open=bool(mesh["allow_open"]),
        cache_dir=str(ctx.data.cache_dir),
    )
    samples = tasks.prepare(req, ctx.stage(f"prepare {mesh['name']}"))
    return {
        "mesh_id": p["mesh_id"],
        "mesh_hash": samples.mesh_hash,
        "ovf_points": int(samples.ovf_points.shape[0]),
        "gen_points": int(samples.gen_points.shape[0]),
        "files": [],
    }


def run_train(ctx: JobContext) -> dict[str, Any]:
    """Train the model's shapes from their uploaded meshes; resumes from the checkpoint when one exists."""
    model = _model(ctx)
    rows = [_mesh(ctx, s["mesh_id"]) for s in model["shapes"]]
    model_dir = ctx.data.model_dir(model["id"])
    model_dir.mkdir(parents=True, exist_ok=True)
    resume = (model_dir / CHECKPOINT).is_file()
    req = tasks.TrainRequest(
        model_dir=str(model_dir),
        meshes=tuple(str(ctx.data.mesh_path(r["id"])) for r in rows),
        names=tuple(s["name"] for s in model["shapes"]),
        preset=model["preset"],
        overrides=_settings(model["config"]),  # the stored config is the model's truth
        allow_open=any(bool(r["allow_open"]) for r in rows),
        resume=resume,
        cache_dir=str(ctx.data.cache_dir),
        device=ctx.device,
    )
    ctx.store.update_model(model["id"], status="training")
    try:
        result = tasks.train(
            req,
            progress=ctx.stage("prepare", 0.0, 0.2),
            on_step=_train_reporter(ctx, resume),
            should_stop=ctx.should_stop,
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


def _train_reporter(ctx: JobContext, resume: bool) -> Callable[[Any], None]:
    def on_step(tp: Any) -> None:
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

    return on_step


def _model_request(ctx: JobContext, request: type, **fixed: Any) -> Any:
    """A request about the job's model, from the job's parameters."""
    model_dir = str(ctx.data.model_dir(_model(ctx)["id"]))
    return tasks.request_from(request, ctx.params, model_dir=model_dir, device=ctx.device, **fixed)


def run_extract(ctx: JobContext) -> dict[str, Any]:
    req: tasks.ExtractRequest = _model_request(ctx, tasks.ExtractRequest)
    out = tasks.extract(req, ctx.stage("extract"))
    name = f"{req.shape}_{req.mode}.{req.format}"
    save_mesh_atomic(out.mesh, ctx.result_path(name))
    mesh = out.mesh
    return {"files": [name], "vertices": len(mesh.vertices), "faces": len(mesh.faces), "lost": list(out.lost)}


def run_interpolate(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    weights = p.get("weights")
    req: tasks.InterpolateRequest = _model_request(
        ctx,
        tasks.InterpolateRequest,
        shapes=tuple(p["shapes"]),
        weights=None if weights is None else tuple(tuple(w) for w in weights),
    )
    steps = tasks.interpolate(req, ctx.stage("interpolate"))
    files, lost = [], {}
    for i, step in enumerate(steps):
        name = f"interp_{i:02d}.{req.format}"
        save_mesh_atomic(step.mesh, ctx.result_path(name))
        files.append(name)
        if step.lost:
            lost[name] = list(step.lost)
    return {"files": files, "lost": lost}


def run_fit(ctx: JobContext) -> dict[str, Any]:
    """Add an uploaded mesh to a trained model (``tasks.fit``, the CLI's code path)."""
    p = ctx.params
    model = _model(ctx)
    mesh = _mesh(ctx, p["mesh_id"])
    name = p.get("name") or mesh["name"]
    req = _model_request(
        ctx,
        tasks.FitRequest,
        mesh=str(ctx.data.mesh_path(p["mesh_id"])),
        name=name,
        allow_open=bool(mesh["allow_open"]),
        cache_dir=str(ctx.data.cache_dir),
    )

    def on_progress(text: str, fraction: float) -> None:  # no raise here: fit saves before it stops
        ctx.report({"stage": f"fit: {text}", "fraction": min(max(float(fraction), 0.0), 1.0)})

    result = tasks.fit(req, progress=on_progress, should_stop=ctx.should_stop)
    # a fine-tune stopped by a cancel still saved the model with the shape: the list must say so too
    if _checkpoint_has(Path(req.model_dir), name):
        added = {"name": name, "mesh_id": p["mesh_id"]}
        ctx.store.update_model(model["id"], shapes=[*model["shapes"], added])
    if ctx.should_stop():
        raise Cancelled(f"cancelled; the model keeps '{name}' as far as it was fitted")
    return {"model_id": model["id"], "shape": name, "fit": _jsonable(result), "files": []}


def _checkpoint_has(model_dir: Path, name: str) -> bool:
    """Whether the saved model lists shape ``name`` (its summary, written with every checkpoint)."""
    from compact_sdf.checkpoint import SUMMARY_NAME

    try:
        summary = json.loads((model_dir / SUMMARY_NAME).read_text())
    except (OSError, ValueError):
        return False
    return name in [s.get("name") for s in summary.get("shapes", [])]


def run_evaluate(ctx: JobContext) -> dict[str, Any]:
    """Reconstruct ``shape`` and compare it with its source mesh (``tasks.evaluate``, as the CLI)."""
    p = ctx.params
    mesh_id = p.get("mesh_id") or _shape_mesh_id(_model(ctx), p["shape"])
    req: tasks.EvaluateRequest = _model_request(
        ctx, tasks.EvaluateRequest, mesh=str(ctx.data.mesh_path(mesh_id))
    )
    metrics, pred = tasks.evaluate(req, ctx.stage("evaluate"))
    name = f"{req.shape}_{req.mode}.ply"
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
    out = temp_path_like(data.tmp_dir / f"codes.{fmt}")
    try:
        tasks.export_codes(tasks.CodesExportRequest(str(data.model_dir(model_id)), str(out), device=device))
    except BaseException:  # a full disk leaves no half-written export behind
        remove_export(out)
        raise
    return out


def remove_export(path: Path) -> None:
    """A temporary export and, for .npz, the .json metadata written beside it."""
    for leftover in (path, path.with_suffix(".json")):
        leftover.unlink(missing_ok=True)


def import_codes_file(
    data: DataDir, model_id: str, body: bytes, fmt: str, filename: str | None = None
) -> list[str]:
    """Hand an uploaded codes file to ``codes.import_codes``; return the imported shape names. Messages
    name the file ``filename`` (the client's name for it), not the temporary copy."""
    folder = data.tmp_dir / f"codes-{new_id()}"
    folder.mkdir(mode=0o700)
    try:
        path = folder / f"codes.{fmt}"
        path.write_bytes(body)
        label = Path(filename).name if filename else None
        req = tasks.CodesImportRequest(str(data.model_dir(model_id)), str(path), label=label)
        return tasks.import_codes(req)
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
