"""The API bodies of the jobs the add-on queues (``POST /jobs``), filled from the scene's settings."""

from __future__ import annotations

from typing import Any


def extract_body(model_id: str, shape: str, settings: Any) -> dict[str, Any]:
    """The extract job of one shape at the scene's resolution and band (and pinhole choice)."""
    body: dict[str, Any] = {
        "kind": "extract",
        "model_id": model_id,
        "shape": shape,
        "resolution": settings.resolution,
        "band": settings.band,
        "format": "ply",
    }
    if settings.close_pinholes:
        body["overrides"] = {"extract.handles": "close"}
    return body


def interpolate_body(
    model_id: str, shapes: list[str], resolution: int, mode: str, **extra: Any
) -> dict[str, Any]:
    """An interpolation job: ``steps=`` for a row, ``weights=`` for one blend."""
    return {
        "kind": "interpolate",
        "model_id": model_id,
        "shapes": shapes,
        "mode": mode,
        "resolution": resolution,
        **extra,
    }
