"""``/meshes``: upload (file body or JSON arrays), list, get, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from compact_sdf.errors import InputError
from compact_sdf.names import NAME_MAX, NAME_PATTERN, NAME_RULE, check_name
from compact_sdf.service import schemas
from compact_sdf.service.api import BINARY_BODY, ApiError, ServiceDep, mesh_out, read_body
from compact_sdf.service.meshes import MeshIntake

router = APIRouter(tags=["meshes"])
UPLOAD_FORMATS = ("ply", "glb", "obj", "stl", "off")
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": schemas.ErrorResponse},
    422: {"model": schemas.ErrorResponse},
}


@router.post(
    "/meshes",
    status_code=201,
    response_model=schemas.MeshOut,
    responses=UPLOAD_ERRORS,
    openapi_extra=BINARY_BODY,
)
async def upload_mesh(
    svc: ServiceDep,
    request: Request,
    name: Annotated[str, Query(pattern=NAME_PATTERN, max_length=NAME_MAX, description=NAME_RULE)],
    format: Annotated[str, Query(description="ply, glb, obj, stl or off")] = "ply",
    allow_open: Annotated[bool, Query(description="accept a mesh that is not watertight")] = False,
) -> dict[str, Any]:
    """Upload a mesh file as the raw request body; it is validated before it is stored."""
    check_name(name, "mesh name")
    if format not in UPLOAD_FORMATS:
        raise InputError(f"unknown format {format!r}; use one of {', '.join(UPLOAD_FORMATS)}")
    body = await read_body(request)
    return await run_in_threadpool(_intake, lambda: svc.intake.from_bytes(body, format, name, allow_open))


# The arrays body is read as bytes and parsed in a worker thread (it may be hundreds of MB of JSON,
# which on the event loop would stall every other request); the spec still states its schema.
ARRAYS_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": schemas.MeshArraysIn.model_json_schema()}},
    }
}


@router.post(
    "/meshes/arrays",
    status_code=201,
    response_model=schemas.MeshOut,
    responses=UPLOAD_ERRORS,
    openapi_extra=ARRAYS_BODY,
)
async def upload_arrays(svc: ServiceDep, request: Request) -> dict[str, Any]:
    """Upload a mesh as compact JSON arrays ``vertices`` (V x 3) and ``faces`` (F x 3)."""
    raw = await request.body()

    def parse_and_accept() -> dict[str, Any]:
        body = _parse_arrays(raw)
        return _intake(lambda: svc.intake.from_arrays(body.vertices, body.faces, body.name, body.allow_open))

    return await run_in_threadpool(parse_and_accept)


def _parse_arrays(raw: bytes) -> schemas.MeshArraysIn:
    """The arrays body, refused as FastAPI refuses a body that breaks its schema (422)."""
    try:
        return schemas.MeshArraysIn.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        raise RequestValidationError(errors) from None


def _intake(make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return mesh_out(make())
    except MeshIntake.TooManyFaces as exc:
        raise ApiError(413, "too_many_faces", str(exc)) from None
    except MeshIntake.Invalid as exc:
        raise ApiError(422, "invalid_mesh", str(exc), exc.report) from None


@router.get("/meshes", response_model=list[schemas.MeshOut])
def list_meshes(svc: ServiceDep) -> list[dict[str, Any]]:
    return [mesh_out(m) for m in svc.store.list_meshes()]


@router.get("/meshes/{mesh_id}", response_model=schemas.MeshOut)
def get_mesh(svc: ServiceDep, mesh_id: str) -> dict[str, Any]:
    return mesh_out(svc.mesh(mesh_id))


@router.delete("/meshes/{mesh_id}", response_model=schemas.Deleted)
def delete_mesh(svc: ServiceDep, mesh_id: str) -> dict[str, Any]:
    svc.mesh(mesh_id)
    if svc.store.active_jobs_for_mesh(mesh_id):
        raise ApiError(409, "conflict", f"mesh {mesh_id} is used by a queued or running job")
    users = [
        m["id"] for m in svc.store.list_models() if any(s.get("mesh_id") == mesh_id for s in m["shapes"])
    ]
    if users:  # training more, a full fit and evaluation read the shape's mesh again
        raise ApiError(409, "conflict", f"mesh {mesh_id} belongs to model {users[0]}; delete the model first")
    svc.store.delete_mesh(mesh_id)
    svc.data.mesh_path(mesh_id).unlink(missing_ok=True)
    return {"deleted": mesh_id}
