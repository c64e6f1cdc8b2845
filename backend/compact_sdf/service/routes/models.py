"""``/models``: list, get, delete (models are created by train jobs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from compact_sdf.service import schemas
from compact_sdf.service.api import ApiError, Service, ServiceDep, read_json
from compact_sdf.service.jobs import CHECKPOINT, remove_model_dir

router = APIRouter(tags=["models"])


@router.get("/models", response_model=list[schemas.ModelOut])
def list_models(svc: ServiceDep) -> list[dict[str, Any]]:
    return [model_out(svc, m, full=False) for m in svc.store.list_models()]


@router.get("/models/{model_id}", response_model=schemas.ModelOut)
def get_model(svc: ServiceDep, model_id: str) -> dict[str, Any]:
    return model_out(svc, svc.model(model_id), full=True)


@router.delete("/models/{model_id}", response_model=schemas.Deleted)
def delete_model(svc: ServiceDep, model_id: str) -> dict[str, Any]:
    svc.model(model_id)
    if svc.store.active_jobs_for_model(model_id):
        raise ApiError(409, "conflict", f"model {model_id} has queued or running jobs; cancel them first")
    svc.store.delete_model(model_id)
    if svc.worker.resident.pid is not None:
        svc.worker.resident.call("evict", model_id=model_id)
    remove_model_dir(svc.data, model_id)
    return {"deleted": model_id}


def model_out(svc: Service, model: dict[str, Any], full: bool) -> dict[str, Any]:
    model_dir = svc.data.model_dir(model["id"])
    out = {k: model[k] for k in ("id", "name", "preset", "status", "shapes", "created")}
    out["checkpoint"] = (model_dir / CHECKPOINT).is_file()
    if full:
        out["config"] = model["config"]
        out["summary"] = read_json(model_dir / "model.json")
    return out
