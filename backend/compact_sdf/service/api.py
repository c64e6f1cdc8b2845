"""What every route module shares: the service's parts, API errors, lookups and response shapes.

``create_app`` puts one :class:`Service` on ``app.state``; routes receive it through the
``ServiceDep`` dependency instead of closing over ``create_app``'s locals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from compact_sdf import footprint
from compact_sdf.errors import InputError
from compact_sdf.service.isolation import ChildLimits
from compact_sdf.service.meshes import MeshIntake
from compact_sdf.service.paths import DataDir, is_id
from compact_sdf.service.store import Store
from compact_sdf.service.worker import Worker

API = "/api/v1"
# Uploads are raw bytes, not JSON: this tells the OpenAPI spec (and the fuzz) so.
BINARY_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def not_found(what: str, ident: str) -> ApiError:
    """A 404 that echoes at most 40 characters of the id it was given."""
    return ApiError(404, "not_found", f"no {what} with id {shorten(ident, 40)!r}")


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 256 * 1024 * 1024
    max_faces: int = 2_000_000
    job: ChildLimits = field(default_factory=ChildLimits)  # per-job process limits
    resident_bytes: int = 2 << 30  # parameters of the models the resident process keeps loaded


@dataclass(frozen=True)
class Service:
    """The parts of one running service."""

    data: DataDir
    store: Store
    worker: Worker
    intake: MeshIntake
    limits: Limits

    def mesh(self, mesh_id: str) -> dict[str, Any]:
        return _found("mesh", mesh_id, self.store.get_mesh)

    def model(self, model_id: str) -> dict[str, Any]:
        return _found("model", model_id, self.store.get_model)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.worker.as_known(_found("job", job_id, self.store.get_job))


def _found(kind: str, row_id: str, get: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    """The stored row, or a 404 for an unknown or malformed id (a malformed one is never looked up)."""
    row = get(row_id) if is_id(row_id) else None
    if row is None:
        raise not_found(kind, row_id)
    return row


def _service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(_service)]


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def read_body(request: Request) -> bytes:
    """The raw request body (``gate.BodyLimit`` has already refused it past the upload limit)."""
    body = await request.body()
    if not body:
        raise InputError("the request body is empty; send the file as the body")
    return body


def too_large(size: int, limit: int) -> StarletteHTTPException:
    """An HTTPException (not ApiError) so FastAPI's body parsing passes it through to the handler."""
    message = f"a request body of {size} bytes exceeds the server limit of {limit} bytes for this route"
    return StarletteHTTPException(413, detail=message)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: Any, scope: Any) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first route's)."""
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.routes)
    ]


def shorten(text: str, keep: int = 80) -> str:
    """A request's own text echoed back at most ``keep`` characters long."""
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text)} characters)"


def mesh_out(mesh: dict[str, Any]) -> dict[str, Any]:
    return {**mesh, "allow_open": bool(mesh["allow_open"])}


def job_out(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if k != "seq"}
    out["cancel_requested"] = bool(job["cancel_requested"])
    return out


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def check_extraction_memory(
    svc: Service, cfg: Any, resolution: int, samples: int = 0, *, join: bool = False
) -> None:
    """Refuse an extraction (a job or a live mesh) that would not fit the tightest limit it runs under,
    naming the limit and the largest resolution that fits."""
    device = svc.worker.device
    budget = footprint.tightest(footprint.host_budgets(svc.limits.job.memory_bytes))
    gpu = footprint.gpu_budget() if device.startswith("cuda") else None
    estimate = footprint.evaluate_estimate(cfg, resolution, samples, device, join=join)
    fits = footprint.largest_resolution(cfg, budget.bytes, samples, device, join=join) if budget else 0
    smaller = f"resolution {fits} or less fits" if fits else "no resolution fits: free some memory"
    footprint.check_fits(estimate, budget, f"a resolution of {resolution}", smaller, gpu)
