"""The HTTP API (FastAPI): meshes, models, jobs and results under /api/v1, health at /health.

Every route but ``/health`` needs ``Authorization: Bearer <token>``. Errors are JSON
``{"error": {"code", "message"}}`` with the matching HTTP status, never a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from compact_sdf import __version__
from compact_sdf.errors import CheckpointError, CompactSDFError, InputError
from compact_sdf.service import schemas
from compact_sdf.service.isolation import ChildLimits
from compact_sdf.service.jobs import (
    CHECKPOINT,
    build_config,
    export_codes_file,
    import_codes_file,
    model_config,
    remove_model_dir,
)
from compact_sdf.service.meshes import MeshIntake
from compact_sdf.service.paths import DataDir, check_name, is_id, new_id
from compact_sdf.service.store import Store
from compact_sdf.service.worker import Worker

log = logging.getLogger("compact_sdf.service")

API = "/api/v1"
UPLOAD_FORMATS = ("ply", "glb", "obj", "stl", "off")
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
    return ApiError(404, "not_found", f"no {what} with id {ident!r}")


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 256 * 1024 * 1024
    max_faces: int = 2_000_000
    job: ChildLimits = field(default_factory=ChildLimits)  # per-job process limits


def _error(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def create_app(
    data_dir: str, token: str, *, limits: Limits | None = None, workers: int = 1, device: str = "auto"
) -> FastAPI:
    """Build the app over DATA; the worker threads start and stop with the app's lifespan."""
    if not token:
        raise ValueError("a token is required")
    data = DataDir(data_dir)
    store = Store(data.db_path)
    limits = limits or Limits()
    worker = Worker(store, data, threads=workers, device=device, limits=limits.job)
    intake = MeshIntake(data, store, max_faces=limits.max_faces)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        log.info("worker started on %s; data in %s", worker.device, data.root)
        yield
        worker.stop()

    app = FastAPI(
        title="Compact SDF backend",
        version=__version__,
        description=__doc__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        responses={401: {"model": schemas.ErrorResponse}, 404: {"model": schemas.ErrorResponse}},
    )
    bearer = HTTPBearer(auto_error=False)

    def require_token(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise ApiError(
                401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)"
            )

    # -- errors ---------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(InputError)
    async def _input_error(_: Request, exc: InputError) -> JSONResponse:
        return _error(422, exc.code, str(exc))

    @app.exception_handler(CheckpointError)
    async def _ckpt_error(_: Request, exc: CheckpointError) -> JSONResponse:
        return _error(409, exc.code, str(exc))

    @app.exception_handler(CompactSDFError)
    async def _sdf_error(_: Request, exc: CompactSDFError) -> JSONResponse:
        return _error(422, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
        message = f"invalid request: {'.'.join(first['loc'])}: {first['msg']}"
        return _error(422, "invalid_request", message, problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error"
        )
        message = str(exc.detail)
        if exc.status_code in (404, 405):
            message = f"no route {request.method} {request.url.path}" + (" (see /openapi.json)")
        return _error(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(500, "internal", f"internal error: {type(exc).__name__}")

    # -- health and spec ------------------------------------------------------------------------
    @app.get("/health", response_model=schemas.Health, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness, version and device; the only route that needs no token."""
        import torch

        info: dict[str, Any] = {
            "status": "ok",
            "version": __version__,
            "device": worker.device,
            "torch": torch.__version__,
            "queued_jobs": len(store.list_jobs("queued", limit=10_000)),
            "running_jobs": len(store.running_jobs()),
            "max_upload_bytes": limits.max_upload_bytes,
            "max_faces": limits.max_faces,
        }
        if worker.device == "cuda":
            free, total = torch.cuda.mem_get_info()
            info.update(
                gpu=torch.cuda.get_device_name(0), gpu_memory_total=int(total), gpu_memory_free=int(free)
            )
        return info

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> dict[str, Any]:
        return app.openapi()

    api = APIRouter(prefix=API, dependencies=[Depends(require_token)])

    # -- meshes ---------------------------------------------------------------------------------
    @api.post(
        "/meshes",
        status_code=201,
        response_model=schemas.MeshOut,
        tags=["meshes"],
        responses={413: {"model": schemas.ErrorResponse}, 422: {"model": schemas.ErrorResponse}},
        openapi_extra=BINARY_BODY,
    )
    async def upload_mesh(
        request: Request,
        name: Annotated[str, Query(description="mesh (and shape) name: letters, digits, _ - .")],
        format: Annotated[str, Query(description="ply, glb, obj, stl or off")] = "ply",
        allow_open: Annotated[bool, Query(description="accept a mesh that is not watertight")] = False,
    ) -> dict[str, Any]:
        """Upload a mesh file as the raw request body; it is validated before it is stored."""
        check_name(name, "mesh name")
        if format not in UPLOAD_FORMATS:
            raise InputError(f"unknown format {format!r}; use one of {', '.join(UPLOAD_FORMATS)}")
        body = await _read_body(request, limits)
        return await run_in_threadpool(_intake, lambda: intake.from_bytes(body, format, name, allow_open))

    @api.post(
        "/meshes/arrays",
        status_code=201,
        response_model=schemas.MeshOut,
        tags=["meshes"],
        responses={413: {"model": schemas.ErrorResponse}, 422: {"model": schemas.ErrorResponse}},
    )
    def upload_arrays(body: schemas.MeshArraysIn, request: Request) -> dict[str, Any]:
        """Upload a mesh as compact JSON arrays ``vertices`` (V x 3) and ``faces`` (F x 3)."""
        return _intake(lambda: intake.from_arrays(body.vertices, body.faces, body.name, body.allow_open))

    def _intake(make: Any) -> dict[str, Any]:
        try:
            return _mesh_out(make())
        except MeshIntake.TooManyFaces as exc:
            raise ApiError(413, "too_many_faces", str(exc)) from None
        except MeshIntake.Invalid as exc:
            raise ApiError(422, "invalid_mesh", str(exc), exc.report) from None

    @api.get("/meshes", response_model=list[schemas.MeshOut], tags=["meshes"])
    def list_meshes() -> list[dict[str, Any]]:
        return [_mesh_out(m) for m in store.list_meshes()]

    @api.get("/meshes/{mesh_id}", response_model=schemas.MeshOut, tags=["meshes"])
    def get_mesh(mesh_id: str) -> dict[str, Any]:
        return _mesh_out(_get_mesh(mesh_id))

    @api.delete("/meshes/{mesh_id}", response_model=schemas.Deleted, tags=["meshes"])
    def delete_mesh(mesh_id: str) -> dict[str, Any]:
        _get_mesh(mesh_id)
        if store.active_jobs_for_mesh(mesh_id):
            raise ApiError(409, "conflict", f"mesh {mesh_id} is used by a queued or running job")
        store.delete_mesh(mesh_id)
        data.mesh_path(mesh_id).unlink(missing_ok=True)
        return {"deleted": mesh_id}

    def _get_mesh(mesh_id: str) -> dict[str, Any]:
        mesh = store.get_mesh(mesh_id) if is_id(mesh_id) else None
        if mesh is None:
            raise not_found("mesh", mesh_id)
        return mesh

    # -- models ---------------------------------------------------------------------------------
    @api.get("/models", response_model=list[schemas.ModelOut], tags=["models"])
    def list_models() -> list[dict[str, Any]]:
        return [_model_out(m, full=False) for m in store.list_models()]

    @api.get("/models/{model_id}", response_model=schemas.ModelOut, tags=["models"])
    def get_model(model_id: str) -> dict[str, Any]:
        return _model_out(_get_model(model_id), full=True)

    @api.delete("/models/{model_id}", response_model=schemas.Deleted, tags=["models"])
    def delete_model(model_id: str) -> dict[str, Any]:
        _get_model(model_id)
        if store.active_jobs_for_model(model_id):
            raise ApiError(409, "conflict", f"model {model_id} has queued or running jobs; cancel them first")
        store.delete_model(model_id)
        remove_model_dir(data, model_id)
        return {"deleted": model_id}

    @api.get(
        "/models/{model_id}/codes",
        tags=["models"],
        response_class=FileResponse,
        responses={200: {"content": {"application/octet-stream": {}}}, 409: {"model": schemas.ErrorResponse}},
    )
    def export_codes(
        model_id: str, format: Annotated[str, Query(description="npz or json")] = "npz"
    ) -> FileResponse:
        """The model's latent codes (``codes.export_codes``) as .npz or .json."""
        model = _get_model(model_id)
        if format not in ("npz", "json"):
            raise InputError(f"unknown codes format {format!r}; use npz or json")
        if not (data.model_dir(model_id) / CHECKPOINT).is_file():
            raise ApiError(409, "not_trained", f"model {model_id} has no checkpoint yet; train it first")
        path = export_codes_file(data, model_id, format, device="cpu")
        return FileResponse(
            path,
            filename=f"{model['name']}_codes.{format}",
            media_type="application/json" if format == "json" else "application/octet-stream",
            background=BackgroundTask(path.unlink, missing_ok=True),
        )

    @api.post(
        "/models/{model_id}/codes",
        response_model=schemas.ModelOut,
        tags=["models"],
        responses={409: {"model": schemas.ErrorResponse}, 413: {"model": schemas.ErrorResponse}},
        openapi_extra=BINARY_BODY,
    )
    async def import_codes(
        request: Request, model_id: str, format: Annotated[str, Query(description="npz or json")] = "npz"
    ) -> dict[str, Any]:
        """Add the shapes of an exported codes file to a model (``codes.import_codes``)."""
        model = _get_model(model_id)
        if format not in ("npz", "json"):
            raise InputError(f"unknown codes format {format!r}; use npz or json")
        if store.active_jobs_for_model(model_id):
            raise ApiError(
                409, "conflict", f"model {model_id} has queued or running jobs; wait or cancel them"
            )
        if not (data.model_dir(model_id) / CHECKPOINT).is_file():
            raise ApiError(409, "not_trained", f"model {model_id} has no checkpoint yet; train it first")
        body = await _read_body(request, limits)
        names = await run_in_threadpool(import_codes_file, data, model_id, body, format)
        known = {s["name"] for s in model["shapes"]}
        shapes = model["shapes"] + [{"name": n, "mesh_id": None} for n in names if n not in known]
        store.update_model(model_id, shapes=shapes)
        return _model_out(_get_model(model_id), full=True)

    def _get_model(model_id: str) -> dict[str, Any]:
        model = store.get_model(model_id) if is_id(model_id) else None
        if model is None:
            raise not_found("model", model_id)
        return model

    def _model_out(model: dict[str, Any], full: bool) -> dict[str, Any]:
        model_dir = data.model_dir(model["id"])
        out = {k: model[k] for k in ("id", "name", "preset", "status", "shapes", "created")}
        out["checkpoint"] = (model_dir / CHECKPOINT).is_file()
        if full:
            out["config"] = model["config"]
            out["summary"] = _read_json(model_dir / "model.json")
        return out

    # -- jobs -----------------------------------------------------------------------------------
    @api.post(
        "/jobs",
        status_code=201,
        response_model=schemas.JobOut,
        tags=["jobs"],
        responses={422: {"model": schemas.ErrorResponse}},
    )
    def create_job(body: Annotated[schemas.JobIn, Body()]) -> dict[str, Any]:
        """Queue a job; references (meshes, models, shapes) are checked now, the work runs in the worker."""
        params = body.model_dump(exclude={"kind"}, exclude_none=True)
        model_id = _check_job(body, params)
        job_id = new_id()
        store.add_job(job_id, body.kind, params, model_id)
        worker.notify()
        return _job_out(_get_job(job_id))

    def _check_job(body: Any, params: dict[str, Any]) -> str | None:
        if isinstance(body, schemas.PrepareJob):
            _get_mesh(body.mesh_id)
            build_config(body.preset, body.overrides)
            return None
        if isinstance(body, schemas.TrainJob):
            return _check_train(body, params)
        model = _get_model(body.model_id)
        known = {s["name"] for s in model["shapes"]}
        names = body.shapes if isinstance(body, schemas.InterpolateJob) else [getattr(body, "shape", None)]
        for name in names:
            if name is not None and name not in known:
                raise InputError(f"model has no shape '{name}'; known: {', '.join(sorted(known))}")
        if isinstance(body, schemas.FitJob):
            mesh = _get_mesh(body.mesh_id)
            if (body.name or mesh["name"]) in known:
                raise InputError(
                    f"model already has a shape '{body.name or mesh['name']}'; pass another name"
                )
        if isinstance(body, schemas.EvaluateJob) and body.mesh_id:
            _get_mesh(body.mesh_id)
        trained = (data.model_dir(model["id"]) / CHECKPOINT).is_file()
        if not trained and not store.active_jobs_for_model(model["id"]):
            raise ApiError(409, "not_trained", f"model {model['id']} has no checkpoint; train it first")
        return str(model["id"])

    def _check_train(body: schemas.TrainJob, params: dict[str, Any]) -> str:
        if (body.mesh_ids is None) == (body.model_id is None):
            raise InputError("a train job needs exactly one of mesh_ids (new model) or model_id (continue)")
        if body.model_id is not None:
            model = _get_model(body.model_id)
            if body.overrides:
                fixed = sorted(k for k in body.overrides if not k.startswith("train."))
                if fixed:
                    raise InputError(
                        f"only train.* settings can change when training continues; got {', '.join(fixed)}"
                    )
                cfg = model_config(model, body.overrides)
                store.update_model(model["id"], config=cfg.to_dict())
            return str(model["id"])
        meshes = [_get_mesh(m) for m in body.mesh_ids or []]
        names = [m["name"] for m in meshes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(f"shape names must be unique within a model; repeated: {', '.join(duplicates)}")
        cfg = build_config(body.preset, body.overrides)
        model_id = new_id()
        shapes = [{"name": m["name"], "mesh_id": m["id"]} for m in meshes]
        store.add_model(model_id, body.name or f"model-{model_id[:8]}", body.preset, cfg.to_dict(), shapes)
        params["model_id"] = model_id
        return model_id

    @api.get("/jobs", response_model=list[schemas.JobOut], tags=["jobs"])
    def list_jobs(
        status: Annotated[schemas.JobStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return [_job_out(j) for j in store.list_jobs(status, limit)]

    @api.get("/jobs/{job_id}", response_model=schemas.JobOut, tags=["jobs"])
    def get_job(job_id: str) -> dict[str, Any]:
        return _job_out(_get_job(job_id))

    @api.post(
        "/jobs/{job_id}/cancel",
        status_code=202,
        response_model=schemas.JobOut,
        tags=["jobs"],
        responses={409: {"model": schemas.ErrorResponse}},
    )
    def cancel_job(job_id: str) -> dict[str, Any]:
        """Cancel a queued job now, or ask a running one to stop at its next step (training saves first)."""
        _get_job(job_id)
        before = store.request_cancel(job_id)
        if before == "running":
            worker.cancel(job_id)
        elif before not in ("queued",):
            raise ApiError(409, "conflict", f"job {job_id} is already {before}")
        return _job_out(_get_job(job_id))

    @api.get("/jobs/{job_id}/results", response_model=list[schemas.ResultFile], tags=["results"])
    def list_results(job_id: str) -> list[dict[str, Any]]:
        job = _get_job(job_id)
        files = []
        for name in _result_names(job):
            path = data.result_file(job_id, name)
            if path.is_file():
                files.append(
                    {"name": name, "bytes": path.stat().st_size, "url": f"{API}/jobs/{job_id}/results/{name}"}
                )
        return files

    @api.get(
        "/jobs/{job_id}/results/{filename}",
        tags=["results"],
        response_class=FileResponse,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    def download_result(job_id: str, filename: str) -> FileResponse:
        job = _get_job(job_id)
        check_name(filename, "file name")
        if filename not in _result_names(job):
            raise ApiError(404, "not_found", f"job {job_id} has no result file {filename!r}")
        path = data.result_file(job_id, filename)
        if not path.is_file():
            raise ApiError(404, "not_found", f"result file {filename!r} is missing on the server")
        return FileResponse(path, filename=filename, media_type="application/octet-stream")

    def _get_job(job_id: str) -> dict[str, Any]:
        job = store.get_job(job_id) if is_id(job_id) else None
        if job is None:
            raise not_found("job", job_id)
        return job

    app.include_router(api)
    app.add_middleware(BodyLimit, limits=limits)
    app.state.worker = worker
    app.state.store = store
    app.state.data = data
    return app


async def _read_body(request: Request, limits: Limits) -> bytes:
    """The raw request body (``BodyLimit`` has already refused it past the upload limit)."""
    body = await request.body()
    if not body:
        raise InputError("the request body is empty; send the file as the body")
    return body


class BodyLimit:
    """ASGI middleware: a request body past the upload limit is refused with 413 (declared or streamed,
    chunked included) before it is buffered; raised inside the route, so the JSON error handler answers."""

    def __init__(self, app: Any, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_upload_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(int(declared), self.limits)
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(seen, self.limits)
            return message

        await self.app(scope, limited_receive, send)


def _too_large(size: int, limits: Limits) -> StarletteHTTPException:
    """An HTTPException (not ApiError) so FastAPI's body parsing passes it through to the handler."""
    message = f"upload of {size} bytes exceeds the server limit of {limits.max_upload_bytes} bytes"
    return StarletteHTTPException(413, detail=message)


def _result_names(job: dict[str, Any]) -> list[str]:
    result = job.get("result") or {}
    return [str(n) for n in result.get("files", [])] if job["status"] == "succeeded" else []


def _mesh_out(mesh: dict[str, Any]) -> dict[str, Any]:
    return {**mesh, "allow_open": bool(mesh["allow_open"])}


def _job_out(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if k != "seq"}
    out["cancel_requested"] = bool(job["cancel_requested"])
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


__all__ = ["API", "ApiError", "Limits", "create_app"]
