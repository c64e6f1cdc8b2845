"""``extract``, ``interpolate``, ``codes export|import``, ``fit``, ``evaluate`` and ``ablate``.

Every command loads a model directory written by ``train`` and calls the same library functions
the service uses. Meshes go out in the shape's own coordinates; shape names are mesh file stems.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from compact_sdf.cli import add_override_option
from compact_sdf.config import ExtractConfig
from compact_sdf.device import resolve_device
from compact_sdf.errors import InputError
from compact_sdf.extract import MODES
from compact_sdf.mesh import MESH_SUFFIXES

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a model directory written by 'train'")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda[:N]")


def _extract_args(p: argparse.ArgumentParser, resolution: int | None = None) -> None:
    p.add_argument("--resolution", type=int, default=resolution, help="marching-cubes cells per side")
    p.add_argument("--band", type=int, default=None, help="voxel layers that use the overfitting branch")
    add_override_option(p, "extract")


def register(subparsers: Sub) -> None:
    p = subparsers.add_parser("extract", help="mesh one shape of a trained model (fused by default)")
    _model_args(p)
    p.add_argument("--shape", required=True, help="shape name (the training mesh's file stem)")
    p.add_argument("--mode", choices=MODES, default="fused")
    p.add_argument("--out", required=True, help=f"mesh file ({', '.join(MESH_SUFFIXES)})")
    _extract_args(p)
    p.set_defaults(func=run_extract)

    p = subparsers.add_parser("interpolate", help="meshes between shapes by blending their codes")
    _model_args(p)
    p.add_argument("--from", dest="start", help="first shape")
    p.add_argument("--to", dest="end", help="last shape")
    p.add_argument("--shapes", nargs="+", default=None, help="two or more shapes, visited in order")
    p.add_argument("--steps", type=int, default=5, help="meshes along the path, ends included")
    p.add_argument(
        "--weights", default=None, help="explicit weights, steps separated by ';': '0.2,0.8;0.5,0.5'"
    )
    p.add_argument("--mode", choices=("linear", "slerp"), default="linear")
    p.add_argument("--format", choices=[s[1:] for s in MESH_SUFFIXES], default="ply")
    p.add_argument("--out", required=True, help="output directory (one mesh per step)")
    _extract_args(p, resolution=128)
    p.set_defaults(func=run_interpolate)

    p = subparsers.add_parser("codes", help="export or import latent codes")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    q = verbs.add_parser("export", help="codes to .npz (+ .json metadata) or one .json")
    _model_args(q)
    q.add_argument("--out", required=True, help="codes.npz or codes.json")
    q.set_defaults(func=run_codes_export)
    q = verbs.add_parser(
        "import", help="load exported codes into a model (known names overwrite, new ones add)"
    )
    q.add_argument("model_dir", metavar="MODEL_DIR")
    q.add_argument("codes", metavar="CODES", help="a .npz or .json export")
    q.add_argument("--force", action="store_true", help="import codes exported from another decoder")
    q.set_defaults(func=run_codes_import)

    p = subparsers.add_parser("fit", help="add a new mesh to a trained model")
    _model_args(p)
    p.add_argument("mesh", metavar="MESH", help="the new mesh file")
    p.add_argument("--name", default=None, help="shape name (default: the file stem)")
    p.add_argument("--full", action="store_true", help="continue training the whole model (full detail)")
    p.add_argument("--iterations", type=int, default=800, help="code-fit iterations (default 800)")
    p.add_argument(
        "--steps", type=int, default=None, help="--full: further training steps (default: the preset's)"
    )
    p.add_argument("--cache", default=None, help="sample cache directory")
    p.set_defaults(func=run_fit)

    p = subparsers.add_parser("evaluate", help="score a reconstruction against its ground-truth mesh")
    _model_args(p)
    p.add_argument("--shape", required=True)
    p.add_argument("--mesh", required=True, help="ground-truth mesh")
    p.add_argument("--mode", choices=MODES, default="fused")
    p.add_argument("--samples", type=int, default=1_000_000, help="surface samples on each mesh")
    p.add_argument("--json", default=None, help="write the metrics here too")
    p.add_argument("--save-mesh", default=None, help="also write the reconstruction")
    _extract_args(p)
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser("ablate", help="generalization / overfitting / fused n=1,3,6 on one shape")
    _model_args(p)
    p.add_argument("--shape", required=True)
    p.add_argument("--mesh", required=True, help="ground-truth mesh")
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--json", required=True)
    _extract_args(p)
    p.set_defaults(func=run_ablate)


def _load(args: argparse.Namespace) -> Any:
    from compact_sdf.checkpoint import load_model

    return load_model(args.model_dir, device=resolve_device(args.device))


def _extract_config(loaded: Any, args: argparse.Namespace) -> ExtractConfig:
    cfg = loaded.config
    if args.overrides:
        bad = [o for o in args.overrides if not o.startswith("extract.")]
        if bad:
            raise InputError(f"only extract.* settings apply here, got {', '.join(bad)}")
        cfg = cfg.override(args.overrides)
    ecfg: ExtractConfig = cfg.extract
    if args.resolution is not None:
        ecfg = replace(ecfg, resolution=args.resolution)
    if args.band is not None:
        ecfg = replace(ecfg, band=args.band)
    return ecfg


def _progress(stage: str, fraction: float) -> None:
    print(f"  {stage} ({fraction:.0%})", file=sys.stderr)


def run_extract(args: argparse.Namespace) -> int:
    from compact_sdf.extract import extract_shape
    from compact_sdf.mesh import save_mesh

    loaded = _load(args)
    mesh = extract_shape(loaded, args.shape, _extract_config(loaded, args), args.mode, progress=_progress)
    path = save_mesh(mesh, args.out)
    print(f"{path}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces")
    return 0


def _parse_weights(text: str) -> list[list[float]]:
    try:
        return [[float(v) for v in step.split(",")] for step in text.split(";") if step.strip()]
    except ValueError:
        raise InputError(f"--weights must look like '0.2,0.8;0.5,0.5', got '{text}'") from None


def run_interpolate(args: argparse.Namespace) -> int:
    from compact_sdf.interpolate import interpolate_shapes
    from compact_sdf.mesh import save_mesh

    names = args.shapes or [n for n in (args.start, args.end) if n]
    if args.shapes and (args.start or args.end):
        raise InputError("give either --from/--to or --shapes, not both")
    if len(names) < 2:
        raise InputError("interpolation needs two shapes: --from A --to B (or --shapes A B ...)")
    loaded = _load(args)
    steps: Any = _parse_weights(args.weights) if args.weights else args.steps
    meshes = interpolate_shapes(
        loaded, names, steps, args.mode, _extract_config(loaded, args), progress=_progress
    )
    out = Path(args.out)
    for i, mesh in enumerate(meshes):
        save_mesh(mesh, out / f"step_{i:03d}.{args.format}")
    print(f"{len(meshes)} meshes in {out}")
    return 0


def run_codes_export(args: argparse.Namespace) -> int:
    from compact_sdf.codes import export_codes

    loaded = _load(args)
    path = export_codes(loaded, args.out)
    extra = f" (+ {path.with_suffix('.json')})" if path.suffix == ".npz" else ""
    print(f"{len(loaded.names)} codes of size {loaded.model.cfg.code_dim} -> {path}{extra}")
    return 0


def run_codes_import(args: argparse.Namespace) -> int:
    from compact_sdf.codes import import_codes

    names = import_codes(args.model_dir, args.codes, force=args.force)
    print(f"imported {len(names)} codes into {args.model_dir}: {', '.join(names)}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from compact_sdf.checkpoint import read_checkpoint
    from compact_sdf.config import Config
    from compact_sdf.data import prepare_mesh
    from compact_sdf.fit import fit_shape

    cfg = Config.from_dict(read_checkpoint(Path(args.model_dir))["config"])
    cfg = replace(cfg, train=replace(cfg.train, device=str(resolve_device(args.device))))
    samples = prepare_mesh(
        args.mesh, name=args.name, cfg=cfg.sampling, cache_dir=args.cache, progress=_progress
    )
    result = fit_shape(
        args.model_dir,
        samples,
        cfg,
        full=args.full,
        iterations=args.iterations,
        extra_steps=args.steps,
        cache_dir=args.cache,
        source=str(Path(args.mesh).resolve()),
        progress=_progress,
    )
    print(
        f"added '{result.name}' ({result.mode} fit, {result.iterations} iterations, "
        f"loss gen {result.loss_gen:.3g} ovf {result.loss_ovf:.3g}, {result.elapsed_s:.1f} s)"
    )
    return 0


def _write_json(data: dict[str, Any], path: str | None) -> None:
    text = json.dumps(data, indent=2)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")


def run_evaluate(args: argparse.Namespace) -> int:
    from compact_sdf.data.load import load_mesh
    from compact_sdf.evaluate import evaluate_shape
    from compact_sdf.mesh import save_mesh

    loaded = _load(args)
    gt = load_mesh(args.mesh)
    metrics, mesh = evaluate_shape(
        loaded, args.shape, gt, _extract_config(loaded, args), args.mode, samples=args.samples
    )
    if args.save_mesh:
        save_mesh(mesh, args.save_mesh)
    _write_json(metrics, args.json)
    return 0


def run_ablate(args: argparse.Namespace) -> int:
    from compact_sdf.data.load import load_mesh
    from compact_sdf.evaluate import ablate

    loaded = _load(args)
    gt = load_mesh(args.mesh)
    results = ablate(
        loaded, args.shape, gt, _extract_config(loaded, args), samples=args.samples, progress=_progress
    )
    _write_json(results, args.json)
    return 0
