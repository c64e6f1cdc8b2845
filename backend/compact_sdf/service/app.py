"""The HTTP API (FastAPI): meshes, models, jobs and results under /api/v1, health at /health.

Every route but ``/health`` needs ``Authorization: Bearer <token>``. Errors are JSON
``{"error": {"code", "message"}}`` with the matching HTTP status, never a traceback. The routes
live in ``service/routes/`` (one router per resource); this module assembles them.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from compact_sdf import __version__
from compact_sdf.errors import CheckpointError, CompactSDFError
from compact_sdf.names import NAME_RULE
from compact_sdf.service import schemas
from compact_sdf.service.api import (
    API,
    ApiError,
    Limits,
    Service,
    allowed_methods,
    error_response,
    shorten,
)
from compact_sdf.service.disk import disk_full_message, is_disk_full
from compact_sdf.service.gate import BodyLimit, TokenGate
from compact_sdf.service.meshes import MeshIntake
from compact_sdf.service.paths import DataDir, hide_root
from compact_sdf.service.routes import codes, health, jobs, live, meshes, models, results
from compact_sdf.service.store import Store
from compact_sdf.service.worker import Worker

log = logging.getLogger("compact_sdf.service")


def create_app(
    data_dir: str, token: str, *, limits: Limits | None = None, workers: int = 1, device: str = "auto"
) -> FastAPI:
    """Build the app over DATA; the worker threads start and stop with the app's lifespan."""
    if not token:
        raise ValueError("a token is required")
    data = DataDir(data_dir)
    store = Store(data.db_path)
    limits = limits or Limits()
    worker = Worker(
        store, data, threads=workers, device=device, limits=limits.job, resident_bytes=limits.resident_bytes
    )
    svc = Service(data, store, worker, MeshIntake(data, store, max_faces=limits.max_faces), limits)

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
        responses={code: {"model": schemas.ErrorResponse} for code in (401, 404, 507)},
    )
    _install_error_handlers(app)
    auth = [Depends(_token_check(token))]
    app.include_router(health.router)

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    api = APIRouter(prefix=API, dependencies=auth)
    for module in (meshes, models, live, codes, jobs, results):
        api.include_router(module.router)
    app.include_router(api)
    app.add_middleware(BodyLimit, limits=limits)
    app.add_middleware(TokenGate, token=token)  # outermost: no body is read before the token
    app.state.service = svc
    return app


def _token_check(token: str) -> Any:
    bearer = HTTPBearer(auto_error=False)

    def require_token(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise ApiError(
                401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)"
            )

    return require_token


def _install_error_handlers(app: FastAPI) -> None:
    """Every error becomes ``{"error": {"code", "message"}}`` with its status; a crash is a bare 500."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(CompactSDFError)
    async def _sdf_error(_: Request, exc: CompactSDFError) -> JSONResponse:
        """A bad checkpoint conflicts with stored state (409); other user errors (bad input too) are 422.
        Paths under the data directory are shown relative to it (``DATA/...``), never absolute."""
        root = _data_root(app)
        message = str(exc) if root is None else hide_root(str(exc), root)
        return error_response(409 if isinstance(exc, CheckpointError) else 422, exc.code, message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
        message = _name_message(exc.errors()) or f"invalid request: {'.'.join(first['loc'])}: {first['msg']}"
        return error_response(422, "invalid_request", message, problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's answer to a JSON body that is not UTF-8: invalid input
            return error_response(422, "invalid_request", "invalid request: the body is not JSON in UTF-8")
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error"
        )
        message, headers = str(exc.detail), getattr(exc, "headers", None)
        path = shorten(request.url.path)
        if exc.status_code == 404:
            message = f"no route {request.method} {path} (see /openapi.json)"
        if exc.status_code == 405:
            allowed = allowed_methods(app, request.scope)
            message = f"{request.method} is not allowed on {path}; allowed: {', '.join(allowed)}"
            headers = {"Allow": ", ".join(allowed)}
        return error_response(exc.status_code, code, message, headers=headers)

    async def _write_error(_: Request, exc: Exception) -> JSONResponse:
        """A full disk is the user's to fix (507, in words); any other such error is a bug (500)."""
        if is_disk_full(exc, _data_root(app)):
            log.warning("disk full: %s", exc)
            return error_response(507, "disk_full", disk_full_message("this request"))
        log.exception("unhandled error")
        return error_response(500, "internal", f"internal error: {type(exc).__name__}")

    for kind in (OSError, sqlite3.Error, RuntimeError):
        app.add_exception_handler(kind, _write_error)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return await _write_error(request, exc)


def _data_root(app: FastAPI) -> Path | None:
    service = getattr(app.state, "service", None)
    return None if service is None else service.data.root


NAME_FIELDS = {"name", "shape", "shapes"}


def _name_message(errors: Sequence[Any]) -> str | None:
    """The name rule in words (as ``check_name`` says it) when a name broke its declared pattern."""
    for e in errors:
        loc = tuple(e.get("loc", ()))
        if e.get("type") in ("string_pattern_mismatch", "string_too_long") and NAME_FIELDS & set(loc):
            what = "mesh name" if loc == ("query", "name") else "name"
            return f"invalid {what} {e.get('input')!r}: use {NAME_RULE}"
    return None


__all__ = ["API", "ApiError", "Limits", "create_app"]
