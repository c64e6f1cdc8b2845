"""``codes export|import``: a model's latent codes as files (``compact_sdf.codes_io``)."""

from __future__ import annotations

import argparse

from compact_sdf import tasks
from compact_sdf.cli.options import Sub, model_args


def register(subparsers: Sub) -> None:
    p = subparsers.add_parser("codes", help="export or import latent codes")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    q = verbs.add_parser("export", help="codes to .npz (+ .json metadata) or one .json")
    model_args(q, tasks.CodesExportRequest)
    q.add_argument("--out", required=True, help="codes.npz or codes.json")
    q.set_defaults(func=run_codes_export, request=codes_export_request)
    q = verbs.add_parser(
        "import", help="load exported codes into a model (known names overwrite, new ones add)"
    )
    q.add_argument("model_dir", metavar="MODEL_DIR")
    q.add_argument("codes", metavar="CODES", help="a .npz or .json export")
    q.add_argument("--force", action="store_true", help="import codes exported from another decoder")
    q.set_defaults(func=run_codes_import, request=codes_import_request)


def codes_export_request(args: argparse.Namespace) -> tasks.CodesExportRequest:
    return tasks.CodesExportRequest(args.model_dir, args.out, device=args.device)


def codes_import_request(args: argparse.Namespace) -> tasks.CodesImportRequest:
    return tasks.CodesImportRequest(args.model_dir, args.codes, force=args.force)


def run_codes_export(args: argparse.Namespace) -> int:
    path, loaded = tasks.export_codes(codes_export_request(args))
    extra = f" (+ {path.with_suffix('.json')})" if path.suffix == ".npz" else ""
    print(f"{len(loaded.names)} codes of size {loaded.model.cfg.code_dim} -> {path}{extra}")
    return 0


def run_codes_import(args: argparse.Namespace) -> int:
    names = tasks.import_codes(codes_import_request(args))
    print(f"imported {len(names)} codes into {args.model_dir}: {', '.join(names)}")
    return 0
