"""``/models/{id}/mesh``: one mesh in the response, from the resident process (no job, no polling).

What a slider tick or a reconstruct of a loaded model needs: one request, one answer, the model kept
loaded between them (``service/resident.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import Response

from compact_sdf.errors import InputError
from compact_sdf.service import schemas
from compact_sdf.service.api import ApiError, Service, ServiceDep, check_extraction_memory
from compact_sdf.service.jobs import CHECKPOINT, model_config
from compact_sdf.service.resident import ResidentDied

router = APIRouter(tags=["models"])
# a failure inside the resident process -> HTTP status (user errors as the job routes answer them)
FAILURE_STATUS = {"bad_input": 422, "error": 422, "bad_checkpoint": 409, "out_of_memory": 503}

MESH_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the mesh (format raw: float32 vertices then int32 faces; ply: a PLY file); "
        "headers X-Mesh-Vertices, X-Mesh-Faces, X-Mesh-Seconds, X-Model-Loaded, X-Mesh-Lost",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    409: {"model": schemas.ErrorResponse},
    422: {"model": schemas.ErrorResponse},
    503: {"model": schemas.ErrorResponse},
}


@router.post("/models/{model_id}/mesh", response_class=Response, responses=MESH_RESPONSE)
def model_mesh(svc: ServiceDep, model_id: str, body: Annotated[schemas.MeshIn, Body()]) -> Response:
    """Reconstruct one shape, or blend several by weight, and answer with the mesh itself."""
    params = _checked(svc, model_id, body)
    try:
        ok, value = svc.worker.resident.call("mesh", **params)
    except ResidentDied as exc:
        raise ApiError(503, "resident_restarting", str(exc)) from None
    if not ok:
        code = value.get("code", "internal")
        raise ApiError(FAILURE_STATUS.get(code, 500), code, value.get("message", "failed"))
    headers = {
        "X-Mesh-Vertices": str(value["vertices"]),
        "X-Mesh-Faces": str(value["faces"]),
        "X-Mesh-Seconds": f"{value['seconds']:.4f}",
        "X-Model-Loaded": "1" if value["loaded"] else "0",
        "X-Mesh-Lost": "; ".join(value.get("lost", [])),  # what is wrong with it: vs its source, or its ends
    }
    return Response(value["body"], media_type="application/octet-stream", headers=headers)


@router.get("/resident", response_model=schemas.ResidentOut, tags=["service"])
def resident_status(svc: ServiceDep) -> dict[str, Any]:
    """The models the resident process holds, its budget, checkpoint reads and evictions (as of its
    last answer: this never waits for a request in flight)."""
    resident = svc.worker.resident
    return {
        "pid": resident.pid,
        "starts": resident.starts,
        "busy": resident.busy,
        "budget_bytes": resident.budget_bytes,
        **{k: v for k, v in resident.held.items() if k != "budget_bytes"},
    }


def _checked(svc: Service, model_id: str, body: schemas.MeshIn) -> dict[str, Any]:
    """The request as the resident process takes it, refused now when it cannot succeed."""
    model = svc.model(model_id)
    if not (svc.data.model_dir(model["id"]) / CHECKPOINT).is_file():
        raise ApiError(409, "not_trained", f"model {model_id} has no checkpoint; train it first")
    known = {s["name"] for s in model["shapes"]}
    missing = [n for n in body.shapes if n not in known]
    if missing:
        raise InputError(f"model has no shape '{missing[0]}'; known: {', '.join(sorted(known))}")
    weights = None
    if len(body.shapes) > 1 or body.weights is not None:
        weights = _weights(body)
    join = len(body.shapes) > 1 and body.join_gap > 0
    check_extraction_memory(svc, model_config(model), body.resolution, join=join)
    return {
        "model_id": model["id"],
        "shapes": list(body.shapes),
        "weights": weights,
        "mode": body.mode,
        "join_gap": body.join_gap,
        "resolution": body.resolution,
        "format": body.format,
    }


def _weights(body: schemas.MeshIn) -> list[float]:
    """One weight per shape, scaled to sum to 1 (a pad or sliders need not keep the sum themselves)."""
    if body.weights is None or len(body.weights) != len(body.shapes):
        raise InputError(f"a blend needs one weight per shape ({len(body.shapes)})")
    total = sum(body.weights)
    if not total > 0:
        raise InputError("the weights of a blend must not all be 0")
    return [w / total for w in body.weights]
