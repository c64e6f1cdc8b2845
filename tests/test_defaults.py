"""Every front end gives the same defaults for the same operation.

The request dataclasses of ``compact_sdf.tasks`` own the defaults. Each front end is asked for its
own: the CLI by parsing a minimal command line and mapping it to a request the way the command
does; the service by its pydantic schemas, the OpenAPI document clients read, and the mapping of
a minimal stored job to a request the way the worker does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from compact_sdf import tasks
from compact_sdf.cli import build_parser
from compact_sdf.service import schemas
from pydantic import BaseModel

ID = "0" * 32

# operation -> (request, minimal command line, fields the CLI derives from a required argument)
CLI = {
    "prepare": (tasks.PrepareRequest, ["prepare", "m.ply", "--out", "o"], {"mesh", "name"}),
    "train": (tasks.TrainRequest, ["train", "m.ply", "--out", "o"], {"model_dir", "meshes"}),
    "extract": (tasks.ExtractRequest, ["extract", "M", "--shape", "s", "--out", "x.ply"], {"format"}),
    "interpolate": (
        tasks.InterpolateRequest,
        ["interpolate", "M", "--from", "a", "--to", "b", "--out", "o"],
        set(),
    ),
    "fit": (tasks.FitRequest, ["fit", "M", "m.ply"], set()),
    "evaluate": (tasks.EvaluateRequest, ["evaluate", "M", "--shape", "s", "--mesh", "g.ply"], set()),
    "ablate": (tasks.AblateRequest, ["ablate", "M", "--shape", "s", "--mesh", "g.ply", "--json", "j"], set()),
    "codes export": (tasks.CodesExportRequest, ["codes", "export", "M", "--out", "c.npz"], set()),
    "codes import": (tasks.CodesImportRequest, ["codes", "import", "M", "c.npz"], set()),
}

# operation -> (request, job schema, minimal job body without "kind")
SERVICE = {
    "prepare": (tasks.PrepareRequest, schemas.PrepareJob, {"mesh_id": ID}),
    "train": (tasks.TrainRequest, schemas.TrainJob, {"mesh_ids": [ID]}),
    "extract": (tasks.ExtractRequest, schemas.ExtractJob, {"model_id": ID, "shape": "s"}),
    "interpolate": (tasks.InterpolateRequest, schemas.InterpolateJob, {"model_id": ID, "shapes": ["a", "b"]}),
    "fit": (tasks.FitRequest, schemas.FitJob, {"model_id": ID, "mesh_id": ID}),
    "evaluate": (tasks.EvaluateRequest, schemas.EvaluateJob, {"model_id": ID, "shape": "s"}),
}


def _defaults(request: type) -> dict[str, Any]:
    return {
        f.name: tasks.default_of(request, f.name)
        for f in dataclasses.fields(request)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (JSON has only lists); typed overrides compare as their dict."""
    if isinstance(value, BaseModel):
        return schemas.overrides_of(value)
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("op", sorted(CLI))
def test_cli_defaults_are_the_requests(op: str) -> None:
    request, argv, derived = CLI[op]
    args = build_parser().parse_args(argv)
    got = args.request(args)
    got = got[0] if isinstance(got, list) else got  # prepare: one request per mesh
    assert isinstance(got, request)
    want = {k: v for k, v in _defaults(request).items() if k not in derived}
    assert want, f"{op}: nothing to compare"
    assert {k: getattr(got, k) for k in want} == want


@pytest.mark.parametrize("op", sorted(SERVICE))
def test_service_schema_defaults_are_the_requests(op: str) -> None:
    request, schema, _ = SERVICE[op]
    want = _defaults(request)
    shared = sorted(set(want) & set(schema.model_fields))
    assert shared, f"{op}: the schema shares no defaulted field with {request.__name__}"
    for name in shared:
        field = schema.model_fields[name]
        got = field.default_factory() if field.default_factory is not None else field.default
        assert _plain(got) == _plain(want[name]), f"{op}.{name}"


@pytest.mark.parametrize("op", sorted(SERVICE))
def test_openapi_states_the_request_defaults(op: str, tmp_path: Path) -> None:
    from compact_sdf.service.app import create_app

    request, schema, _ = SERVICE[op]
    spec = create_app(str(tmp_path / "data"), "token").openapi()
    props = spec["components"]["schemas"][schema.__name__]["properties"]
    want = _defaults(request)
    for name in sorted(set(want) & set(props)):
        if want[name] is None:
            assert props[name].get("default") is None, f"{op}.{name}"
        elif want[name] != {}:
            assert props[name]["default"] == _plain(want[name]), f"{op}.{name}"


@pytest.mark.parametrize("op", sorted(SERVICE))
def test_a_minimal_job_maps_to_the_request_defaults(op: str) -> None:
    """What the worker builds from a stored minimal job (``request_from``, as ``service/jobs.py`` does)."""
    request, schema, body = SERVICE[op]
    params = schema(kind=op, **body).model_dump(exclude={"kind"}, exclude_none=True)
    required = {
        f.name: "x"
        for f in dataclasses.fields(request)
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in params
    }
    got = tasks.request_from(request, params, **required)
    for name, value in _defaults(request).items():
        assert _plain(getattr(got, name)) == _plain(value), f"{op}.{name}"


def test_the_default_preset_is_preview_everywhere() -> None:
    """The bug this layer fixed: the service used to default to 'tiny'. One constant says it."""
    from compact_sdf.config import DEFAULT_PRESET

    assert DEFAULT_PRESET == "preview"
    for request in (tasks.PrepareRequest, tasks.TrainRequest):
        assert tasks.default_of(request, "preset") == DEFAULT_PRESET
    for schema in (schemas.PrepareJob, schemas.TrainJob):
        assert schema.model_fields["preset"].default == DEFAULT_PRESET
    assert build_parser().parse_args(["collection", "--out", "x"]).preset == DEFAULT_PRESET


def test_one_extraction_default_and_one_range() -> None:
    """ExtractConfig holds the resolution and band every request starts from (it is stored in each
    checkpoint, so a model's own config agrees), and one bound checks them all."""
    from compact_sdf import bounds
    from compact_sdf.config import ExtractConfig

    for request in (
        tasks.ExtractRequest,
        tasks.InterpolateRequest,
        tasks.EvaluateRequest,
        tasks.AblateRequest,
    ):
        assert tasks.default_of(request, "resolution") == ExtractConfig().resolution == 128
        assert tasks.default_of(request, "band") == ExtractConfig().band
    assert bounds.REQUEST["resolution"] is bounds.SETTINGS["extract.resolution"]
    assert (bounds.SETTINGS["extract.resolution"].lo, bounds.SETTINGS["extract.resolution"].hi) == (8, 1024)
