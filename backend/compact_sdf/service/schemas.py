"""Request and response bodies of the HTTP API; they are also its OpenAPI schema (and the fuzzer's input)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from compact_sdf import bounds, tasks
from compact_sdf.config import Config, config_sections, setting_choices
from compact_sdf.names import NAME_MAX, NAME_PATTERN, NAME_RULE
from compact_sdf.tasks import default_of

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=NAME_MAX, description=NAME_RULE)]
Id = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="server-generated id (32 hex digits)")]
Preset = Literal["tiny", "preview", "detail", "balanced", "paper"]
MeshFormat = Literal["ply", "obj", "glb"]
Mode = Literal["fused", "generalization", "overfitting"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _field(request: type, name: str, description: str | None = None) -> Any:
    """A job field with the request dataclass's default and the bounds table's limits."""
    bound = bounds.request_bound(request.operation, name)
    limits = bound.schema() if bound is not None else {}
    return Field(default_of(request, name), description=description, **limits)


def _count(operation: str, name: str) -> dict[str, int]:
    """``min_length`` / ``max_length`` of a list field from the bounds table."""
    bound = bounds.request_bound(operation, name)
    assert bound is not None, f"{operation}.{name} has no row in bounds.REQUEST"
    return {"min_length": int(bound.lo), "max_length": int(bound.hi)}


def _setting(dotted: str, value: Any, choices: tuple[str, ...]) -> Any:
    """The type of one override: its config kind with the bounds table's limits or choices."""
    kind = type(value)
    if choices:
        return Literal[choices]  # type: ignore[valid-type]
    if kind is str:
        return Annotated[str, Field(pattern=bounds.DEVICE_PATTERN)] if dotted.endswith(".device") else str
    bound = bounds.SETTINGS.get(dotted)
    if kind is bool or bound is None:
        return kind
    return Annotated[kind, Field(allow_inf_nan=False, **bound.schema())]


def _overrides_model() -> type[BaseModel]:
    """``{"section.key": value}`` with every setting of config.py typed and bounded (all optional)."""
    fields: dict[str, Any] = {}
    defaults = Config()
    for section, sub in config_sections().items():
        for f in dataclasses.fields(sub):
            dotted = f"{section}.{f.name}"
            kind = _setting(dotted, getattr(getattr(defaults, section), f.name), setting_choices(sub, f.name))
            fields[f"{section}__{f.name}"] = (kind | None, Field(None, alias=dotted))
    return create_model(  # type: ignore[call-overload, no-any-return]
        "ConfigOverrides",
        __base__=Strict,
        __doc__='Config overrides by "section.key", e.g. {"train.steps": 200, "model.hidden": 128}.',
        **fields,
    )


ConfigOverrides = _overrides_model()
Overrides = Annotated[ConfigOverrides, Field(default_factory=ConfigOverrides)]  # type: ignore[valid-type]


def overrides_of(value: BaseModel) -> dict[str, Any]:
    """The overrides a job body sets, as ``{"section.key": value}``."""
    return value.model_dump(by_alias=True, exclude_none=True)


class ErrorBody(Strict):
    code: str
    message: str
    details: Any = None


class ErrorResponse(Strict):
    error: ErrorBody


class Health(Strict):
    status: Literal["ok", "degraded"]
    problems: list[str] = Field(description="why the status is degraded, in words")
    data_writable: bool = Field(description="a small file can be written in the data directory now")
    disk_free_bytes: int | None = Field(description="free bytes on the data directory's disk")
    version: str
    device: Literal["cuda", "cpu"]
    torch: str
    gpu: str | None = None
    gpu_memory_total: int | None = Field(None, description="bytes")
    gpu_memory_free: int | None = Field(None, description="bytes")
    queued_jobs: int
    running_jobs: int
    max_upload_bytes: int
    max_faces: int


class MeshArraysIn(Strict):
    name: Name
    vertices: list[Annotated[list[float], Field(min_length=3, max_length=3)]] = Field(min_length=3)
    faces: list[Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=3, max_length=3)]] = Field(
        min_length=1
    )
    allow_open: bool = False


class MeshOut(Strict):
    id: Id
    name: str
    vertices: int
    faces: int
    mesh_hash: str
    allow_open: bool
    report: Any
    created: float


class ShapeOut(Strict):
    name: str
    mesh_id: str | None = Field(
        None, description="the uploaded mesh it was trained from; None for imported codes"
    )


class ModelOut(Strict):
    id: Id
    name: str
    preset: str
    status: str
    shapes: list[ShapeOut]
    created: float
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = Field(None, description="model.json written by training, when present")
    checkpoint: bool = False


class PrepareJob(Strict):
    kind: Literal["prepare"]
    mesh_id: Id
    preset: Preset = default_of(tasks.PrepareRequest, "preset")
    overrides: Overrides


class TrainJob(Strict):
    """New model from ``mesh_ids`` (shape names are the mesh names), or more training of ``model_id``."""

    model_config = ConfigDict(  # the spec says "exactly one of", as the route checks it
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["mesh_ids"], "properties": {"mesh_ids": {"type": "array"}}},
                {"required": ["model_id"], "properties": {"model_id": {"type": "string"}}},
            ]
        },
    )

    kind: Literal["train"]
    mesh_ids: list[Id] | None = Field(None, **_count("train", "mesh_ids"))
    model_id: Id | None = None
    name: Name | None = None
    preset: Preset = default_of(tasks.TrainRequest, "preset")
    collection: bool = Field(
        default_of(tasks.TrainRequest, "collection"),
        description="new model: scale the preset to the number of meshes (more steps, a wider grid) "
        "beyond its batch; overrides still apply after",
    )
    overrides: Overrides


class ExtractJob(Strict):
    kind: Literal["extract"]
    model_id: Id
    shape: Name
    mode: Mode = default_of(tasks.ExtractRequest, "mode")
    resolution: int = _field(tasks.ExtractRequest, "resolution", "marching-cubes cells per side")
    band: int = _field(tasks.ExtractRequest, "band", "voxel layers that use the overfitting branch")
    format: MeshFormat = default_of(tasks.ExtractRequest, "format")
    overrides: Overrides = Field(
        description='extract.* settings only, e.g. {"extract.handles": "close"} (docs/benchmarks/fidelity.md)'
    )


class InterpolateJob(Strict):
    kind: Literal["interpolate"]
    model_id: Id
    shapes: list[Name] = Field(**_count("interpolate", "shapes"))
    steps: int = _field(tasks.InterpolateRequest, "steps", "meshes along the path, ends included")
    weights: list[list[Annotated[float, Field(allow_inf_nan=False)]]] | None = Field(
        None,
        description="rows of per-shape weights; replaces steps when given",
        **_count("interpolate", "weights"),
    )
    mode: Literal["linear", "slerp"] = default_of(tasks.InterpolateRequest, "mode")
    join_gap: float = _field(
        tasks.InterpolateRequest,
        "join_gap",
        "in-betweens: join parts closer than this (normalised units; 0: off)",
    )
    resolution: int = _field(tasks.InterpolateRequest, "resolution", "marching-cubes cells per side")
    format: MeshFormat = default_of(tasks.InterpolateRequest, "format")


class MeshIn(Strict):
    """One mesh now, in the response: a shape's fused reconstruction, or a blend of shapes by weight."""

    shapes: list[Name] = Field(**_count("mesh", "shapes"))
    weights: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = Field(
        None,
        description="one weight per shape (scaled to sum to 1); required for two shapes or more",
        **_count("mesh", "shapes"),
    )
    mode: Literal["linear", "slerp"] = default_of(tasks.InterpolateRequest, "mode")
    join_gap: float = _field(
        tasks.InterpolateRequest, "join_gap", "blends: join parts closer than this (normalised units; 0: off)"
    )
    resolution: int = _field(tasks.ExtractRequest, "resolution", "marching-cubes cells per side")
    format: Literal["raw", "ply"] = Field(
        "raw", description="raw: float32 vertices then int32 faces, little-endian; ply: binary PLY"
    )


class ResidentOut(Strict):
    pid: int | None = Field(None, description="the resident model process; None until the first request")
    starts: int
    busy: bool = Field(False, description="a request or job is in flight")
    models: list[dict[str, Any]] = Field(default_factory=list)
    bytes: int = 0
    budget_bytes: int
    loads: int = 0
    evictions: list[dict[str, Any]] = Field(default_factory=list)


class FitJob(Strict):
    """Add a new shape to a trained model (``mesh_id`` is an uploaded mesh; ``name`` defaults to its name)."""

    kind: Literal["fit"]
    model_id: Id
    mesh_id: Id
    name: Name | None = None
    mode: Literal["auto", "code", "full"] = Field(
        default_of(tasks.FitRequest, "mode"),
        description="code: fit the code only (frozen decoder); full: continue training the whole model; "
        "auto: the code, then full where the fusion band does not hold the shape (fit.band_misses)",
    )
    iterations: int = _field(tasks.FitRequest, "iterations", "code-fit iterations")
    extra_steps: int | None = _field(
        tasks.FitRequest, "extra_steps", "training steps of the fine-tune (full, or auto when it fine-tunes)"
    )
    overrides: Overrides


class EvaluateJob(Strict):
    """Metrics of a reconstruction against its source mesh (or ``mesh_id``)."""

    kind: Literal["evaluate"]
    model_id: Id
    shape: Name
    mesh_id: Id | None = None
    mode: Mode = default_of(tasks.EvaluateRequest, "mode")
    resolution: int = _field(tasks.EvaluateRequest, "resolution", "marching-cubes cells per side")
    samples: int = _field(tasks.EvaluateRequest, "samples", "surface samples per side for the metrics")


JobIn = Annotated[
    PrepareJob | TrainJob | ExtractJob | InterpolateJob | FitJob | EvaluateJob, Field(discriminator="kind")
]


JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobOut(Strict):
    id: Id
    kind: str
    status: JobStatus
    params: dict[str, Any]
    model_id: str | None
    progress: dict[str, Any] | None = Field(
        None,
        description="stage, fraction 0..1, and for training step, total_steps, loss_gen, loss_ovf, eta_s",
    )
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    attempts: int
    cancel_requested: bool
    created: float
    started: float | None
    finished: float | None


class ResultFile(Strict):
    name: str
    bytes: int
    url: str


class Deleted(Strict):
    deleted: str
