"""Time and peak memory of our sparse fused extraction against a release-style dense one.

Release style (method.md section 5): both MLPs on the full (N+1)^3 lattice, twice (the release
evaluates the lattice once to find the surface and again for the band), then the band pass (a
dilated mask of the s_g-crossed cells; the release uses a KD-tree there, we use the cheaper
binary dilation, which only favours the baseline) and marching cubes on the full volume. Ours:
``extract.extract_shape`` (hierarchical s_g search, s_o on the band only, blockwise marching cubes).
Both compute the same definition, so the meshes are compared too.

Every measurement runs in a fresh subprocess; peak memory is the rise of the resident set over
the loaded model (``VmHWM`` after resetting it through ``/proc/self/clear_refs``).

    .venv/bin/python bench/extract.py                       # trains a preview model on bunny first
    .venv/bin/python bench/extract.py --model out/m --shape bunny --resolutions 128 256
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _harness import MESHES, REPO, write_results
from compact_sdf.config import DEFAULT_PRESET


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) / 1024.0  # kB -> MiB
    raise KeyError(key)


def count_points() -> list[int]:
    """Count every point either extraction sends through a network branch."""
    import compact_sdf.extract.dense as dense
    import compact_sdf.extract.fusion as sparse
    import compact_sdf.extract.search as search
    from compact_sdf.extract.lattice import evaluate

    total = [0]

    def counted(fn, points, batch, device):
        total[0] += len(points)
        return evaluate(fn, points, batch, device)

    sparse.evaluate = dense.evaluate = search.evaluate = counted  # type: ignore[assignment]
    return total


def release_style(loaded, name: str, cfg, device: str):
    """Both branches on the full lattice twice, a band pass, marching cubes on the full volume."""
    from compact_sdf.extract.dense import band_mask, dense_volume, mesh_volume
    from compact_sdf.extract.fusion import fusion_width

    z = loaded.code(name).to(device)
    model = loaded.model

    def gen(x):
        return model.sdf_gen(z, x)

    def ovf(x):
        return model.sdf_ovf(z, x)

    n, batch = cfg.resolution, cfg.batch_points
    for _ in range(2):
        s_gen = dense_volume(gen, n, batch, device)
        s_ovf = dense_volume(ovf, n, batch, device)
    width = fusion_width(cfg, loaded.config.sampling.band_width)
    fused = np.where(band_mask(s_gen, cfg, width), s_ovf, s_gen)
    del s_ovf
    mesh = mesh_volume(fused)
    norm = loaded.shapes[loaded.shape_index(name)].normalization
    return mesh.transformed(norm)


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints one JSON line and saves the mesh arrays."""
    from compact_sdf.checkpoint import load_model
    from compact_sdf.extract.fusion import extract_shape

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, device=args.device)
    cfg = replace(
        loaded.config.extract, resolution=args.resolution, band=3, fusion=args.fusion, handles=args.handles
    )
    with torch.no_grad():  # warm the kernels so the first timed call pays no start-up cost
        loaded.model.sdf_ovf(loaded.code(args.shape), torch.zeros(8, 3, device=args.device))
    points = count_points()
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    t0 = time.perf_counter()
    if args.worker == "ours":
        mesh = extract_shape(loaded, args.shape, cfg, "fused")
    else:
        mesh = release_style(loaded, args.shape, cfg, args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM") - before
    np.savez(args.save, vertices=mesh.vertices, faces=mesh.faces)
    counts = {"vertices": len(mesh.vertices), "faces": len(mesh.faces), "points": points[0]}
    print(json.dumps({"seconds": seconds, "peak_mib": peak, **counts}))


def same_mesh(a: dict, b: dict, tol: float) -> tuple[bool, float]:
    """Same triangles with vertices matched within ``tol`` (any order); also the largest vertex gap."""
    from scipy.spatial import cKDTree

    if len(a["vertices"]) != len(b["vertices"]) or len(a["faces"]) != len(b["faces"]):
        return False, float("nan")
    dist, match = cKDTree(b["vertices"]).query(a["vertices"])

    def canon(f: np.ndarray) -> np.ndarray:
        start = np.argmin(f, axis=1)
        rows = np.arange(len(f))
        return np.unique(np.stack([f[rows, (start + k) % 3] for k in range(3)], axis=1), axis=0)

    same = dist.max() <= tol and np.array_equal(canon(match[a["faces"]]), canon(b["faces"]))
    return bool(same), float(dist.max())


def ensure_model(args: argparse.Namespace) -> tuple[Path, str]:
    if args.model:
        return Path(args.model), args.shape
    from compact_sdf.config import get_preset
    from compact_sdf.data import prepare_mesh
    from compact_sdf.training.train import train

    mesh = Path(args.mesh)
    model_dir = REPO / "out" / "bench" / f"extract_{args.preset}_{mesh.stem}_{args.steps}"
    if not (model_dir / "checkpoint.pt").exists():
        torch.set_num_threads(args.threads)
        cfg = get_preset(args.preset)
        cfg = replace(cfg, train=replace(cfg.train, steps=args.steps, device=args.device))
        samples = prepare_mesh(mesh, cfg=cfg.sampling, cache_dir=REPO / "out" / "cache")
        print(f"training {args.preset} on {mesh.name} for {args.steps} steps -> {model_dir}", file=sys.stderr)
        train(model_dir, [samples], cfg, sources={samples.name: str(mesh)})
    return model_dir, mesh.stem


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="a trained model directory (default: train one)")
    p.add_argument("--shape", default=None)
    p.add_argument(
        "--mesh", default=str(MESHES / "bunny.ply"), help="mesh to train on when --model is not given"
    )
    p.add_argument("--preset", default=DEFAULT_PRESET)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--resolutions", type=int, nargs="+", default=None, help="default 128 256 (+512 on CUDA)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json", default=str(REPO / "out" / "bench" / "extract.json"))
    p.add_argument("--fusion", choices=("distance", "paper"), default="distance")
    p.add_argument(
        "--handles",
        choices=("keep", "close"),
        default="keep",
        help="ours: extract.handles (close: not the release's definition, so not the same mesh)",
    )
    p.add_argument("--worker", choices=("ours", "release"), help=argparse.SUPPRESS)
    p.add_argument("--resolution", type=int, help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    model_dir, shape = ensure_model(args)
    resolutions = args.resolutions or ([128, 256, 512] if args.device.startswith("cuda") else [128, 256])
    out_dir = Path(args.json).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in resolutions:
        runs = {}
        for method in ("ours", "release"):
            save = out_dir / f"extract_{method}_{n}.npz"
            cmd = [sys.executable, __file__, "--worker", method, "--model", str(model_dir), "--shape", shape]
            cmd += ["--resolution", str(n), "--device", args.device, "--threads", str(args.threads)]
            cmd += ["--save", str(save), "--fusion", args.fusion, "--handles", args.handles]
            line = (
                subprocess.run(cmd, check=True, capture_output=True, text=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            runs[method] = json.loads(line)
            print(f"N={n} {method}: {runs[method]}", file=sys.stderr)
        a, b = (dict(np.load(out_dir / f"extract_{m}_{n}.npz")) for m in ("ours", "release"))
        same, gap = same_mesh(a, b, tol=1e-4 * float(np.ptp(b["vertices"], axis=0).max()))
        rows.append({
            "resolution": n, "ours": runs["ours"], "release": runs["release"],
            "speedup": runs["release"]["seconds"] / runs["ours"]["seconds"],
            "memory_ratio": runs["release"]["peak_mib"] / max(runs["ours"]["peak_mib"], 1e-9),
            "same_mesh": same, "max_vertex_gap": gap,
        })  # fmt: skip
    result = {
        "model": str(model_dir),
        "shape": shape,
        "device": args.device,
        "threads": args.threads,
        "rows": rows,
    }
    write_results(Path(args.json), result)
    print("| N | ours s | release s | speed-up | ours peak MiB | release peak MiB | same mesh |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        o, d = r["ours"], r["release"]
        faces = f"{o['faces']} / {d['faces']} faces"
        print(
            f"| {r['resolution']} | {o['seconds']:.2f} | {d['seconds']:.2f} | {r['speedup']:.1f}x | "
            f"{o['peak_mib']:.0f} | {d['peak_mib']:.0f} | {r['same_mesh']} ({faces}) |"
        )


if __name__ == "__main__":
    main()
