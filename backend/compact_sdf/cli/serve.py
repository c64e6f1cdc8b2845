"""``compact-sdf serve``: run the HTTP service (FastAPI on uvicorn) over a data directory."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import time
from pathlib import Path

from compact_sdf.errors import InputError

TOKEN_ENV = "COMPACT_SDF_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "serve",
        help="run the HTTP backend (jobs, models, meshes) for Blender or scripts",
        description="Serve the Compact SDF API; every route but /health needs a bearer token.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback; others need --token)")
    p.add_argument(
        "--port", type=int, default=8765, help="TCP port; 0 picks a free one (written to DATA/server.json)"
    )
    p.add_argument(
        "--data", required=True, help="data directory: meshes, models, jobs, results all live here"
    )
    p.add_argument(
        "--token",
        default=None,
        help=f"bearer token (or set {TOKEN_ENV}); when absent a fresh one is written to DATA/token (0600)",
    )
    p.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: CUDA when available"
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="CPU threads for torch (0 = torch's default); 1 on busy machines",
    )
    p.add_argument("--workers", type=int, default=1, help="job worker threads (default 1: one GPU)")
    p.add_argument("--max-upload-mb", type=float, default=256.0, help="largest accepted upload body")
    p.add_argument("--max-faces", type=int, default=2_000_000, help="largest accepted mesh, in faces")
    p.add_argument(
        "--job-memory-mb",
        type=float,
        default=None,
        help="cap each job's process at this much memory beyond its libraries (default: no cap); "
        "a job over it fails alone",
    )
    p.add_argument(
        "--resident-mb",
        type=float,
        default=2048.0,
        help="parameters of the trained models kept loaded for immediate meshing (least recently used "
        "out; default 2048)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(explicit: str | None, token_path: Path) -> str:
    """The explicit token (flag or environment), else a fresh one written 0600 to ``token_path``."""
    from compact_sdf.atomic import atomic_write_bytes
    from compact_sdf.service.paths import new_token

    if explicit:
        if len(explicit) < 16:
            raise InputError("the token must be at least 16 characters")
        return explicit
    token = new_token()
    atomic_write_bytes(token_path, token.encode(), mode=0o600)
    return token


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from compact_sdf.atomic import atomic_write_json
    from compact_sdf.service.app import Limits, create_app
    from compact_sdf.service.isolation import ChildLimits
    from compact_sdf.service.paths import DataDir

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("compact_sdf.service")
    if not 0 <= args.port <= 65535:
        raise InputError(f"port {args.port} is out of range 0-65535")
    if args.job_memory_mb is not None and not 64 <= args.job_memory_mb <= 1 << 24:
        raise InputError("--job-memory-mb must be between 64 and 16777216")
    if args.workers < 1:
        raise InputError("--workers must be at least 1")
    explicit = args.token or os.environ.get(TOKEN_ENV)
    if not is_loopback(args.host) and not explicit:
        raise InputError(f"binding to {args.host} (not loopback) needs an explicit --token or {TOKEN_ENV}")
    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
    data = DataDir(args.data)
    token = resolve_token(explicit, data.token_path)
    if not explicit:
        print(f"compact-sdf: token written to {data.token_path} (mode 0600)", flush=True)
    if not is_loopback(args.host):
        log.warning("listening on %s, reachable from other machines: keep the token secret", args.host)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{port}"
    job = ChildLimits(
        memory_bytes=None if args.job_memory_mb is None else int(args.job_memory_mb * 1024 * 1024),
        torch_threads=max(args.torch_threads, 0),
    )
    if not 0 <= args.resident_mb <= 1 << 24:
        raise InputError("--resident-mb must be between 0 and 16777216")
    limits = Limits(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_faces=args.max_faces,
        job=job,
        resident_bytes=int(args.resident_mb * 1024 * 1024),
    )
    app = create_app(str(data.root), token, limits=limits, workers=args.workers, device=args.device)
    info = {"url": url, "host": args.host, "port": port, "pid": os.getpid(), "started": time.time()}
    atomic_write_json(data.server_info_path, info, mode=0o600)
    print(f"compact-sdf: serving on {url} (data {data.root})", flush=True)
    config = uvicorn.Config(
        app, log_level=args.log_level, access_log=args.log_level == "debug", lifespan="on"
    )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: a requested stop is a clean exit.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.Server(config).run(sockets=[sock])
    print("compact-sdf: stopped", flush=True)
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    print("compact-sdf: stopped", flush=True)
    raise SystemExit(0)
