"""``/jobs/{id}/results``: the files a succeeded job wrote, and each file's download."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from compact_sdf.names import check_name
from compact_sdf.service import schemas
from compact_sdf.service.api import API, ApiError, ServiceDep

router = APIRouter(tags=["results"])


@router.get("/jobs/{job_id}/results", response_model=list[schemas.ResultFile])
def list_results(svc: ServiceDep, job_id: str) -> list[dict[str, Any]]:
    job = svc.job(job_id)
    files = []
    for name in _result_names(job):
        path = svc.data.result_file(job_id, name)
        if path.is_file():
            files.append(
                {"name": name, "bytes": path.stat().st_size, "url": f"{API}/jobs/{job_id}/results/{name}"}
            )
    return files


@router.get(
    "/jobs/{job_id}/results/{filename}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_result(svc: ServiceDep, job_id: str, filename: str) -> FileResponse:
    job = svc.job(job_id)
    check_name(filename, "file name")
    if filename not in _result_names(job):
        raise ApiError(404, "not_found", f"job {job_id} has no result file {filename!r}")
    path = svc.data.result_file(job_id, filename)
    if not path.is_file():
        raise ApiError(404, "not_found", f"result file {filename!r} is missing on the server")
    return FileResponse(path, filename=filename, media_type="application/octet-stream")


def _result_names(job: dict[str, Any]) -> list[str]:
    result = job.get("result") or {}
    return [str(n) for n in result.get("files", [])] if job["status"] == "succeeded" else []
