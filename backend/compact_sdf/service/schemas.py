"""Request and response bodies of the HTTP API; they are also its OpenAPI schema (and the fuzzer's input)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from compact_sdf import tasks
from compact_sdf.tasks import default_of

Name = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="letters, digits, _ - .")
]
Id = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="server-generated id (32 hex digits)")]
Preset = Literal["tiny", "preview", "balanced", "paper"]
Overrides = Annotated[
    dict[str, str | int | float | bool],
    Field(max_length=64, description='config overrides, e.g. {"train.steps": 200, "model.hidden": 128}'),
]
MeshFormat = Literal["ply", "obj", "glb"]
Mode = Literal["fused", "generalization", "overfitting"]
Resolution = Annotated[int, Field(ge=8, le=1024, description="marching-cubes cells per side")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(Strict):
    code: str
    message: str
    details: Any = None


class ErrorResponse(Strict):
    error: ErrorBody


class Health(Strict):
    status: str
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
    overrides: Overrides = Field(default_factory=dict)


class TrainJob(Strict):
    """New model from ``mesh_ids`` (shape names are the mesh names), or more training of ``model_id``."""

    kind: Literal["train"]
    mesh_ids: list[Id] | None = Field(None, min_length=1, max_length=4096)
    model_id: Id | None = None
    name: Name | None = None
    preset: Preset = default_of(tasks.TrainRequest, "preset")
    overrides: Overrides = Field(default_factory=dict)


class ExtractJob(Strict):
    kind: Literal["extract"]
    model_id: Id
    shape: Name
    mode: Mode = default_of(tasks.ExtractRequest, "mode")
    resolution: Resolution = default_of(tasks.ExtractRequest, "resolution")
    band: int = Field(default_of(tasks.ExtractRequest, "band"), ge=1, le=16)
    format: MeshFormat = default_of(tasks.ExtractRequest, "format")


class InterpolateJob(Strict):
    kind: Literal["interpolate"]
    model_id: Id
    shapes: list[Name] = Field(min_length=2, max_length=16)
    steps: int = Field(default_of(tasks.InterpolateRequest, "steps"), ge=2, le=64)
    weights: list[list[float]] | None = Field(
        None, min_length=1, max_length=64, description="rows of per-shape weights; replaces steps when given"
    )
    mode: Literal["linear", "slerp"] = default_of(tasks.InterpolateRequest, "mode")
    resolution: Resolution = default_of(tasks.InterpolateRequest, "resolution")
    format: MeshFormat = default_of(tasks.InterpolateRequest, "format")


class FitJob(Strict):
    """Add a new shape to a trained model (``mesh_id`` is an uploaded mesh; ``name`` defaults to its name)."""

    kind: Literal["fit"]
    model_id: Id
    mesh_id: Id
    name: Name | None = None
    full: bool = Field(
        default_of(tasks.FitRequest, "full"),
        description="False: fit the code only (frozen decoder); True: continue training",
    )
    iterations: int = Field(
        default_of(tasks.FitRequest, "iterations"), ge=1, le=100_000, description="code-fit iterations"
    )
    extra_steps: int | None = Field(
        default_of(tasks.FitRequest, "extra_steps"),
        ge=1,
        le=1_000_000,
        description="training steps when full",
    )
    overrides: Overrides = Field(default_factory=dict)


class EvaluateJob(Strict):
    """Metrics of a reconstruction against its source mesh (or ``mesh_id``)."""

    kind: Literal["evaluate"]
    model_id: Id
    shape: Name
    mesh_id: Id | None = None
    mode: Mode = default_of(tasks.EvaluateRequest, "mode")
    resolution: Resolution = default_of(tasks.EvaluateRequest, "resolution")
    samples: int = Field(
        default_of(tasks.EvaluateRequest, "samples"),
        ge=1_000,
        le=2_000_000,
        description="surface samples per side for the metrics",
    )


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
