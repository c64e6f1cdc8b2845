"""``extract``, ``interpolate``, ``codes export|import``, ``fit``, ``evaluate`` and ``ablate``.

Every command loads a model directory written by ``train`` and calls the same library functions
the service uses. Meshes go out in the shape's own coordinates; shape names are mesh file stems.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from compact_sdf import tasks
from compact_sdf.cli import add_override_option
from compact_sdf.errors import InputError
from compact_sdf.extract import MODES
from compact_sdf.fit import MODES as FIT_MODES
from compact_sdf.mesh import MESH_SUFFIXES
from compact_sdf.tasks import default_of, overrides_from

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def _model_args(p: argparse.ArgumentParser, request: type) -> None:
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a model directory written by 'train'")
    p.add_argument(
        "--device", default=default_of(request, "device"), help="auto (CUDA when available), cpu or cuda[:N]"
    )


def _extract_args(p: argparse.ArgumentParser, request: type) -> None:
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


def _mode_arg(p: argparse.ArgumentParser, request: type) -> None:
    p.add_argument("--mode", choices=MODES, default=default_of(request, "mode"))


def _samples_arg(p: argparse.ArgumentParser, request: type) -> None:
    p.add_argument(
        "--samples", type=int, default=default_of(request, "samples"), help="surface samples on each mesh"
    )


def register(subparsers: Sub) -> None:
    p = subparsers.add_parser("extract", help="mesh one shape of a trained model (fused by default)")
    _model_args(p, tasks.ExtractRequest)
    p.add_argument("--shape", required=True, help="shape name (the training mesh's file stem)")
    _mode_arg(p, tasks.ExtractRequest)
    p.add_argument("--out", required=True, help=f"mesh file ({', '.join(MESH_SUFFIXES)})")
    _extract_args(p, tasks.ExtractRequest)
    p.set_defaults(func=run_extract, request=extract_request)

    p = subparsers.add_parser("interpolate", help="meshes between shapes by blending their codes")
    _model_args(p, tasks.InterpolateRequest)
    p.add_argument("--from", dest="start", help="first shape")
    p.add_argument("--to", dest="end", help="last shape")
    p.add_argument("--shapes", nargs="+", default=None, help="two or more shapes, visited in order")
    p.add_argument(
        "--steps",
        type=int,
        default=default_of(tasks.InterpolateRequest, "steps"),
        help="meshes along the path, ends included",
    )
    p.add_argument(
        "--weights", default=None, help="explicit weights, steps separated by ';': '0.2,0.8;0.5,0.5'"
    )
    p.add_argument(
        "--mode", choices=("linear", "slerp"), default=default_of(tasks.InterpolateRequest, "mode")
    )
    p.add_argument(
        "--join-gap",
        type=float,
        default=default_of(tasks.InterpolateRequest, "join_gap"),
        help="join in-between parts the model brings this close (normalised units; 0: off)",
    )
    p.add_argument(
        "--format",
        choices=[s[1:] for s in MESH_SUFFIXES],
        default=default_of(tasks.InterpolateRequest, "format"),
    )
    p.add_argument("--out", required=True, help="output directory (one mesh per step)")
    _extract_args(p, tasks.InterpolateRequest)
    p.set_defaults(func=run_interpolate, request=interpolate_request)

    _register_codes(subparsers)
    _register_fit(subparsers)

    p = subparsers.add_parser("evaluate", help="score a reconstruction against its ground-truth mesh")
    _model_args(p, tasks.EvaluateRequest)
    p.add_argument("--shape", required=True)
    p.add_argument("--mesh", required=True, help="ground-truth mesh")
    _mode_arg(p, tasks.EvaluateRequest)
    _samples_arg(p, tasks.EvaluateRequest)
    p.add_argument("--json", default=None, help="write the metrics here too")
    p.add_argument("--save-mesh", default=None, help="also write the reconstruction")
    _extract_args(p, tasks.EvaluateRequest)
    p.set_defaults(func=run_evaluate, request=evaluate_request)

    p = subparsers.add_parser("ablate", help="both branches, paper fusion n=3, distance fusion on one shape")
    _model_args(p, tasks.AblateRequest)
    p.add_argument("--shape", required=True)
    p.add_argument("--mesh", required=True, help="ground-truth mesh")
    _samples_arg(p, tasks.AblateRequest)
    p.add_argument("--json", required=True)
    _extract_args(p, tasks.AblateRequest)
    p.set_defaults(func=run_ablate, request=ablate_request)


def _register_codes(subparsers: Sub) -> None:
    p = subparsers.add_parser("codes", help="export or import latent codes")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    q = verbs.add_parser("export", help="codes to .npz (+ .json metadata) or one .json")
    _model_args(q, tasks.CodesExportRequest)
    q.add_argument("--out", required=True, help="codes.npz or codes.json")
    q.set_defaults(func=run_codes_export, request=codes_export_request)
    q = verbs.add_parser(
        "import", help="load exported codes into a model (known names overwrite, new ones add)"
    )
    q.add_argument("model_dir", metavar="MODEL_DIR")
    q.add_argument("codes", metavar="CODES", help="a .npz or .json export")
    q.add_argument("--force", action="store_true", help="import codes exported from another decoder")
    q.set_defaults(func=run_codes_import, request=codes_import_request)


def _register_fit(subparsers: Sub) -> None:
    p = subparsers.add_parser("fit", help="add a new mesh to a trained model")
    _model_args(p, tasks.FitRequest)
    p.add_argument("mesh", metavar="MESH", help="the new mesh file")
    p.add_argument("--name", default=None, help="shape name (default: the file stem)")
    mode = default_of(tasks.FitRequest, "mode")
    p.add_argument(
        "--mode",
        choices=FIT_MODES,
        default=mode,
        help="code: fit the code only (decoder frozen); full: continue training the whole model; auto: the "
        f"code, then full where the fusion band does not hold the shape (default {mode})",
    )
    p.add_argument("--full", action="store_const", const="full", dest="mode", help="the same as --mode full")
    iterations = default_of(tasks.FitRequest, "iterations")
    p.add_argument(
        "--iterations", type=int, default=iterations, help=f"code-fit iterations (default {iterations})"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps of the fine-tune (full, or auto when it fine-tunes; default: the preset's)",
    )
    p.add_argument("--cache", default=None, help="sample cache directory")
    p.set_defaults(func=run_fit, request=fit_request)


# --- the command line as requests -----------------------------------------------------------------


def _extraction(args: argparse.Namespace) -> dict[str, Any]:
    """The request fields every meshing command shares."""
    return {
        "resolution": args.resolution,
        "band": args.band,
        "overrides": overrides_from(list(args.overrides)),
        "device": args.device,
    }


def extract_request(args: argparse.Namespace) -> tasks.ExtractRequest:
    fmt = Path(args.out).suffix[1:].lower()
    return tasks.ExtractRequest(args.model_dir, args.shape, mode=args.mode, format=fmt, **_extraction(args))


def interpolate_request(args: argparse.Namespace) -> tasks.InterpolateRequest:
    if args.shapes and (args.start or args.end):
        raise InputError("give either --from/--to or --shapes, not both")
    names = args.shapes or [n for n in (args.start, args.end) if n]
    return tasks.InterpolateRequest(
        args.model_dir,
        tuple(names),
        steps=args.steps,
        weights=_parse_weights(args.weights) if args.weights else None,
        mode=args.mode,
        join_gap=args.join_gap,
        format=args.format,
        **_extraction(args),
    )


def evaluate_request(args: argparse.Namespace) -> tasks.EvaluateRequest:
    fields = {"mode": args.mode, "samples": args.samples, **_extraction(args)}
    return tasks.EvaluateRequest(args.model_dir, args.shape, args.mesh, **fields)


def ablate_request(args: argparse.Namespace) -> tasks.AblateRequest:
    fields = {"samples": args.samples, **_extraction(args)}
    return tasks.AblateRequest(args.model_dir, args.shape, args.mesh, **fields)


def fit_request(args: argparse.Namespace) -> tasks.FitRequest:
    return tasks.FitRequest(
        args.model_dir,
        args.mesh,
        name=args.name,
        mode=args.mode,
        iterations=args.iterations,
        extra_steps=args.steps,
        cache_dir=args.cache,
        device=args.device,
    )


def codes_export_request(args: argparse.Namespace) -> tasks.CodesExportRequest:
    return tasks.CodesExportRequest(args.model_dir, args.out, device=args.device)


def codes_import_request(args: argparse.Namespace) -> tasks.CodesImportRequest:
    return tasks.CodesImportRequest(args.model_dir, args.codes, force=args.force)


def _parse_weights(text: str) -> tuple[tuple[float, ...], ...]:
    try:
        return tuple(tuple(float(v) for v in step.split(",")) for step in text.split(";") if step.strip())
    except ValueError:
        raise InputError(f"--weights must look like '0.2,0.8;0.5,0.5', got '{text}'") from None


# --- commands --------------------------------------------------------------------------------------


def _progress(stage: str, fraction: float) -> None:
    print(f"  {stage} ({fraction:.0%})", file=sys.stderr)


def run_extract(args: argparse.Namespace) -> int:
    from compact_sdf.mesh import save_mesh

    mesh = tasks.extract(extract_request(args), progress=_progress)
    path = save_mesh(mesh, args.out)
    print(f"{path}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    from compact_sdf.mesh import save_mesh

    req = interpolate_request(args)
    meshes = tasks.interpolate(req, progress=_progress)
    out = Path(args.out)
    for i, mesh in enumerate(meshes):
        save_mesh(mesh, out / f"step_{i:03d}.{req.format}")
    print(f"{len(meshes)} meshes in {out}")
    return 0


def run_codes_export(args: argparse.Namespace) -> int:
    path, loaded = tasks.export_codes(codes_export_request(args))
    extra = f" (+ {path.with_suffix('.json')})" if path.suffix == ".npz" else ""
    print(f"{len(loaded.names)} codes of size {loaded.model.cfg.code_dim} -> {path}{extra}")
    return 0


def run_codes_import(args: argparse.Namespace) -> int:
    names = tasks.import_codes(codes_import_request(args))
    print(f"imported {len(names)} codes into {args.model_dir}: {', '.join(names)}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    result = tasks.fit(fit_request(args), progress=_progress)
    print(
        f"added '{result.name}' ({result.mode} fit, {result.iterations} "
        f"{'iterations' if result.mode == 'code' else 'training steps'}, "
        f"loss gen {result.loss_gen:.3g} ovf {result.loss_ovf:.3g}, {result.elapsed_s:.1f} s)"
    )
    if result.code_misses:
        held = ", ".join(f"{n} {100 * v:.1f}%" for n, v in result.code_misses.items())
        print(
            f"the code fit held too little of the shape inside the fusion band ({held}): fine-tuned the model"
        )
    if result.band_advice:
        print(f"warning: {result.band_advice}")
    return 0


def _write_json(data: dict[str, Any], path: str | None) -> None:
    text = json.dumps(data, indent=2)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")


def run_evaluate(args: argparse.Namespace) -> int:
    from compact_sdf.mesh import save_mesh

    metrics, mesh = tasks.evaluate(evaluate_request(args))
    if args.save_mesh:
        save_mesh(mesh, args.save_mesh)
    _write_json(metrics, args.json)
    return 0


def run_ablate(args: argparse.Namespace) -> int:
    _write_json(tasks.ablate(ablate_request(args), progress=_progress), args.json)
    return 0
