"""The options and the output every command on a trained model shares (extract, interpolate,
evaluate, ablate, codes, fit): one definition, so the commands cannot drift apart."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from compact_sdf.cli import add_override_option
from compact_sdf.extract.fusion import MODES
from compact_sdf.tasks import default_of, overrides_from

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def model_args(p: argparse.ArgumentParser, request: type) -> None:
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a model directory written by 'train'")
    p.add_argument(
        "--device", default=default_of(request, "device"), help="auto (CUDA when available), cpu or cuda[:N]"
    )


def extract_args(p: argparse.ArgumentParser, request: type) -> None:
    p.add_argument(
        "--resolution",
        type=int,
        default=default_of(request, "resolution"),
        help="marching-cubes cells per side",
    )
    p.add_argument(
        "--band",
        type=int,
        default=default_of(request, "band"),
        help="voxel layers that use the overfitting branch",
    )
    add_override_option(p, "extract")


def mode_arg(p: argparse.ArgumentParser, request: type) -> None:
    p.add_argument("--mode", choices=MODES, default=default_of(request, "mode"))


def samples_arg(p: argparse.ArgumentParser, request: type) -> None:
    p.add_argument(
        "--samples", type=int, default=default_of(request, "samples"), help="surface samples on each mesh"
    )


def extraction(args: argparse.Namespace) -> dict[str, Any]:
    """The request fields every meshing command shares."""
    return {
        "resolution": args.resolution,
        "band": args.band,
        "overrides": overrides_from(list(args.overrides)),
        "device": args.device,
    }


def progress(stage: str, fraction: float) -> None:
    print(f"  {stage} ({fraction:.0%})", file=sys.stderr)


def write_json(data: dict[str, Any], path: str | None) -> None:
    text = json.dumps(data, indent=2)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
