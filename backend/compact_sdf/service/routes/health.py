"""``GET /health``: liveness, version and device (the one route without a token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from compact_sdf import __version__
from compact_sdf.service import schemas
from compact_sdf.service.api import ServiceDep
from compact_sdf.service.disk import free_bytes, unwritable

router = APIRouter(tags=["service"])


@router.get("/health", response_model=schemas.Health)
def health(svc: ServiceDep) -> dict[str, Any]:
    """Liveness, version and device; the only route that needs no token. ``status`` is ``degraded``
    (with ``problems`` in words) when the data directory cannot be written, e.g. its disk is full."""
    import torch

    problem = unwritable(svc.data.root)
    info: dict[str, Any] = {
        "status": "ok" if problem is None else "degraded",
        "problems": [] if problem is None else [problem],
        "data_writable": problem is None,
        "disk_free_bytes": free_bytes(svc.data.root),
        "version": __version__,
        "device": svc.worker.device,
        "torch": torch.__version__,
        "queued_jobs": len(svc.store.list_jobs("queued", limit=10_000)),
        "running_jobs": len(svc.store.running_jobs()),
        "max_upload_bytes": svc.limits.max_upload_bytes,
        "max_faces": svc.limits.max_faces,
    }
    if svc.worker.device == "cuda":
        free, total = torch.cuda.mem_get_info()
        info.update(gpu=torch.cuda.get_device_name(0), gpu_memory_total=int(total), gpu_memory_free=int(free))
    return info
