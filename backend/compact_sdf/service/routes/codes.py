"""``/models/{id}/codes``: export a model's latent codes, or import an export into it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from compact_sdf.errors import InputError
from compact_sdf.service import schemas
from compact_sdf.service.api import BINARY_BODY, ApiError, Service, ServiceDep, read_body
from compact_sdf.service.jobs import CHECKPOINT, export_codes_file, import_codes_file, remove_export
from compact_sdf.service.routes.models import model_out

router = APIRouter(tags=["models"])
FORMAT = Annotated[str, Query(description="npz or json")]
FILENAME = Annotated[
    str | None, Query(max_length=255, description="the file's name on the client, used in messages only")
]


@router.get(
    "/models/{model_id}/codes",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 409: {"model": schemas.ErrorResponse}},
)
def export_codes(svc: ServiceDep, model_id: str, format: FORMAT = "npz") -> Response:
    """The model's latent codes (``codes.export_codes``) as .npz or .json.

    Codes are small (shapes x code size floats), so the export is read into memory and its temporary
    files are gone before the answer is sent: nothing is left in DATA/tmp, whenever the client looks."""
    model = svc.model(model_id)
    _check_format(format)
    _require_trained(svc, model_id)
    path = export_codes_file(svc.data, model_id, format, device="cpu")
    try:
        content = path.read_bytes()
    finally:
        remove_export(path)
    return Response(
        content,
        media_type="application/json" if format == "json" else "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{model["name"]}_codes.{format}"'},
    )


@router.post(
    "/models/{model_id}/codes",
    response_model=schemas.ModelOut,
    responses={409: {"model": schemas.ErrorResponse}, 413: {"model": schemas.ErrorResponse}},
    openapi_extra=BINARY_BODY,
)
async def import_codes(
    svc: ServiceDep,
    request: Request,
    model_id: str,
    format: FORMAT = "npz",
    filename: FILENAME = None,
) -> dict[str, Any]:
    """Add the shapes of an exported codes file to a model (``codes.import_codes``)."""
    model = svc.model(model_id)
    _check_format(format)
    if svc.store.active_jobs_for_model(model_id):
        raise ApiError(409, "conflict", f"model {model_id} has queued or running jobs; wait or cancel them")
    _require_trained(svc, model_id)
    body = await read_body(request)
    names = await run_in_threadpool(import_codes_file, svc.data, model_id, body, format, filename)
    known = {s["name"] for s in model["shapes"]}
    shapes = model["shapes"] + [{"name": n, "mesh_id": None} for n in names if n not in known]
    svc.store.update_model(model_id, shapes=shapes)
    return model_out(svc, svc.model(model_id), full=True)


def _check_format(format: str) -> None:
    if format not in ("npz", "json"):
        raise InputError(f"unknown codes format {format!r}; use npz or json")


def _require_trained(svc: Service, model_id: str) -> None:
    if not (svc.data.model_dir(model_id) / CHECKPOINT).is_file():
        raise ApiError(409, "not_trained", f"model {model_id} has no checkpoint yet; train it first")
