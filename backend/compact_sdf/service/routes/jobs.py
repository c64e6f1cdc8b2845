"""``/jobs``: submit (references are checked now, the work runs in the worker), list, get, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from compact_sdf import footprint, tasks
from compact_sdf.config import Config
from compact_sdf.errors import InputError
from compact_sdf.extract.interpolate import check_weights
from compact_sdf.service import schemas
from compact_sdf.service.api import ApiError, Service, ServiceDep, check_extraction_memory, job_out
from compact_sdf.service.jobs import CHECKPOINT, model_config
from compact_sdf.service.paths import new_id
from compact_sdf.tasks import build_config, preset_for

router = APIRouter(tags=["jobs"])


@router.post(
    "/jobs",
    status_code=201,
    response_model=schemas.JobOut,
    responses={422: {"model": schemas.ErrorResponse}},
)
def create_job(svc: ServiceDep, body: Annotated[schemas.JobIn, Body()]) -> dict[str, Any]:
    """Queue a job; references (meshes, models, shapes) are checked now, the work runs in the worker."""
    params = body.model_dump(exclude={"kind"}, exclude_none=True, by_alias=True)
    model_id = _check_job(svc, body, params)
    job_id = new_id()
    svc.store.add_job(job_id, body.kind, params, model_id)
    svc.worker.notify()
    return job_out(svc.job(job_id))


def _check_job(svc: Service, body: Any, params: dict[str, Any]) -> str | None:
    if isinstance(body, schemas.PrepareJob):
        svc.mesh(body.mesh_id)
        build_config(body.preset, schemas.overrides_of(body.overrides))
        return None
    if isinstance(body, schemas.TrainJob):
        return _check_train(svc, body, params)
    model = svc.model(body.model_id)
    if isinstance(body, schemas.ExtractJob):  # refused now, not when the job runs
        tasks.check_extract_overrides(schemas.overrides_of(body.overrides))
    known = {s["name"] for s in model["shapes"]}
    names = body.shapes if isinstance(body, schemas.InterpolateJob) else [getattr(body, "shape", None)]
    for name in names:
        if name is not None and name not in known:
            raise InputError(f"model has no shape '{name}'; known: {', '.join(sorted(known))}")
    if isinstance(body, schemas.InterpolateJob) and body.weights is not None:
        check_weights(body.weights, len(body.shapes))  # refused now, not when the job runs
    if isinstance(body, schemas.FitJob):
        mesh = svc.mesh(body.mesh_id)
        if (body.name or mesh["name"]) in known:
            raise InputError(f"model already has a shape '{body.name or mesh['name']}'; pass another name")
    if isinstance(body, schemas.EvaluateJob) and body.mesh_id:
        svc.mesh(body.mesh_id)
    cfg, resolution = _as_run(model, body)
    _check_memory(svc, body, cfg, len(known), resolution)
    trained = (svc.data.model_dir(model["id"]) / CHECKPOINT).is_file()
    if not trained and not svc.store.active_jobs_for_model(model["id"]):
        raise ApiError(409, "not_trained", f"model {model['id']} has no checkpoint; train it first")
    return str(model["id"])


def _check_train(svc: Service, body: schemas.TrainJob, params: dict[str, Any]) -> str:
    if (body.mesh_ids is None) == (body.model_id is None):
        raise InputError("a train job needs exactly one of mesh_ids (new model) or model_id (continue)")
    overrides = schemas.overrides_of(body.overrides)
    if body.model_id is not None:
        model = svc.model(body.model_id)
        if overrides:
            fixed = sorted(k for k in overrides if not k.startswith("train."))
            if fixed:
                raise InputError(
                    f"only train.* settings can change when training continues; got {', '.join(fixed)}"
                )
            cfg = model_config(model, overrides)
            _check_memory(svc, body, cfg, len(model["shapes"]))
            svc.store.update_model(model["id"], config=cfg.to_dict())
        return str(model["id"])
    meshes = [svc.mesh(m) for m in body.mesh_ids or []]
    names = [m["name"] for m in meshes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"shape names must be unique within a model; repeated: {', '.join(duplicates)}")
    cfg = build_config(preset_for(body.preset, len(meshes), body.collection), overrides)
    _check_memory(svc, body, cfg, len(meshes))
    model_id = new_id()
    shapes = [{"name": m["name"], "mesh_id": m["id"]} for m in meshes]
    svc.store.add_model(model_id, body.name or f"model-{model_id[:8]}", body.preset, cfg.to_dict(), shapes)
    params["model_id"] = model_id
    return model_id


def _check_memory(svc: Service, body: Any, cfg: Config, shapes: int, resolution: int | None = None) -> None:
    """Refuse a job now, saying what would fit and which limit it would hit, rather than let it grow
    until it is killed: the estimate is of the job as it will run (``cfg`` after its overrides), the
    budget the tightest limit it will run under (``footprint.host_budgets``, the GPU on CUDA)."""
    device = svc.worker.device
    budget = footprint.tightest(footprint.host_budgets(svc.limits.job.memory_bytes))
    gpu = footprint.gpu_budget() if device.startswith("cuda") else None
    if isinstance(body, (schemas.TrainJob, schemas.FitJob)):
        estimate = footprint.train_estimate(cfg, shapes + isinstance(body, schemas.FitJob), device)
        smaller = "use fewer shapes, a smaller preset, or lower model.grid_res or train.samples_per_shape"
        footprint.check_fits(estimate, budget, "this training", smaller, gpu)
        return
    if resolution is None:
        return
    samples = getattr(body, "samples", 0) or 0
    join = isinstance(body, schemas.InterpolateJob) and body.join_gap > 0
    check_extraction_memory(svc, cfg, resolution, samples, join=join)


def _as_run(model: dict[str, Any], body: Any) -> tuple[Config, int | None]:
    """The config and resolution the job will run with: a fit's overrides apply, and an extraction's
    ``extract.*`` overrides win over its fields, as in ``tasks._extract_config``."""
    if isinstance(body, schemas.FitJob):
        return model_config(model, schemas.overrides_of(body.overrides)), None
    if not isinstance(body, schemas.ExtractJob):
        return model_config(model), getattr(body, "resolution", None)
    fields = {"extract.resolution": body.resolution, "extract.band": body.band}
    cfg = model_config(model, {**fields, **schemas.overrides_of(body.overrides)})
    return cfg, cfg.extract.resolution


@router.get("/jobs", response_model=list[schemas.JobOut])
def list_jobs(
    svc: ServiceDep,
    status: Annotated[schemas.JobStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return [job_out(svc.worker.as_known(j)) for j in svc.store.list_jobs(status, limit)]


@router.get("/jobs/{job_id}", response_model=schemas.JobOut)
def get_job(svc: ServiceDep, job_id: str) -> dict[str, Any]:
    return job_out(svc.job(job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=202,
    response_model=schemas.JobOut,
    responses={409: {"model": schemas.ErrorResponse}},
)
def cancel_job(svc: ServiceDep, job_id: str) -> dict[str, Any]:
    """Cancel a queued job now, or ask a running one to stop at its next step (training saves first)."""
    svc.job(job_id)
    # The worker first, in memory: a job process frozen while it writes holds the database's lock,
    # and only the worker's kill after the cancel grace frees it for the write below.
    svc.worker.cancel(job_id)
    before = svc.store.request_cancel(job_id)
    if before != "running":
        svc.worker.forget(job_id)  # not running, and now never will be
    if before not in ("running", "queued"):
        raise ApiError(409, "conflict", f"job {job_id} is already {before}")
    return job_out(svc.job(job_id))
