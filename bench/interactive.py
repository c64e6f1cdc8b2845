"""Using a trained model live: how long a reconstruct or a slider tick takes, and how smooth a slider is.

``latency`` times, on one model of four shared meshes (trained once, reused by its directory):
- in one warm process: the fused reconstruction at N = 64, 128, 256, 512 (with the time of each
  stage at 128 and 256), a two-shape slider update and a four-shape blend at N = 64 and 128 (median
  of ``--repeat``), and the cold start (a fresh Python process: imports, checkpoint read, first mesh);
- end to end through a real service on loopback (``compact-sdf serve``, the add-on's client): the
  same meshes as one ``POST /models/{id}/mesh`` each (the first request also starts the resident
  process and reads the model), the queued-job path with 0.5 s polling (a Reconstruct job, a
  one-row interpolate job), and Add to Model of a shape the model holds, then its first mesh.
``meshing`` compares the two meshing paths of a fused reconstruction (``extract.meshing``: numpy
and scikit-image on the CPU, or tensors on the model's device) on each shape at N = 64, 128, 256:
time (median of ``--repeat``) and how far apart their meshes are.
``jobs`` is the queued-job path alone: it uses only the job API, so it also runs against an older
backend (a before/after of the same command).
``unlike`` moves the slider between unlike stress shapes (``stress_shapes.py``: a thin-walled CAD
housing with through-holes, a statue with thin wings, a genus-81 strut lattice, a holed plate) at
N = 64 and 128: seconds per tick, parts, genus, closed and manifold, and what the tick says is wrong
with it (``tasks.judge``, what the panel shows); ``--passes 2`` reruns it with the search's earlier
rule (a dense pass after two with a measured bound) for a before/after.
``smoothness`` walks the slider between pairs of shapes, densely near the ends, and records area,
mean dihedral angle (between adjacent face normals), genus, parts and the mean distance between the
surfaces of neighbouring weights, for in-betweens meshed by ``blend`` (the default) and by s_g alone
(``generalization``, the earlier default); it plots both and renders two pairs into docs/img/.

    .venv/bin/python bench/interactive.py latency --out out/interactive_latency.json
    .venv/bin/python bench/interactive.py meshing --out out/interactive_meshing.json   # --device cuda
    .venv/bin/python bench/interactive.py jobs --out out/interactive_jobs.json
    .venv/bin/python bench/interactive.py smoothness --threads 1 --out out/interactive_smoothness.json
    .venv/bin/python bench/interactive.py unlike --out out/interactive_unlike.json   # --passes 2: before
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
from _harness import normalization  # noqa: E402
from compact_sdf.config import DEFAULT_PRESET, ExtractConfig, parse_overrides  # noqa: E402
from interpolation import MESHES, render_grid, train_model  # noqa: E402

SHAPES = ("bunny", "spot", "cow", "fandisk")
PAIRS = (("bunny", "spot"), ("spot", "cow"), ("cow", "fandisk"), ("bunny", "fandisk"))
RESOLUTIONS = (64, 128, 256, 512)
# slider positions: dense near both ends, where a pop would show
WEIGHTS = (0.0, 0.001, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97, 0.99, 0.999, 1.0)
UNLIKE = ("housing", "statue", "lattice", "holed_plate")
UNLIKE_PAIRS = (
    ("housing", "statue"),
    ("lattice", "housing"),
    ("statue", "holed_plate"),
    ("lattice", "statue"),
)
TICKS = (0.0, 0.001, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999, 1.0)


def machine() -> dict:
    """What the figures were measured on (and how busy it was)."""
    out = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
    }
    out["threads"] = torch.get_num_threads()
    out["load_1min"] = os.getloadavg()[0]
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def model_dir(args: argparse.Namespace) -> Path:
    """The in-process model: trained once on ``args.device`` with the ``--train-set`` overrides."""
    name = "_".join(
        [f"interactive_{args.preset}", *([args.device] if args.device != "cpu" else []), *args.train_set]
    )
    path = REPO / "out" / name.replace("=", "-").replace(":", "-")
    return train_model(list(SHAPES), path, args.preset, args.train_set, torch.get_num_threads(), args.device)


def _median_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def in_process(path: Path, repeat: int, device: str) -> dict:
    """Warm figures in this process (the model loaded once), and one cold start in a fresh process."""
    from compact_sdf.checkpoint import load_model
    from compact_sdf.extract.fusion import extract_shape
    from compact_sdf.extract.interpolate import interpolate_shapes

    loaded = load_model(path, device=device)
    cfg = loaded.config.extract
    out: dict = {"fused": {}, "slider": {}, "blend4": {}}
    for n in RESOLUTIONS:
        c = replace(cfg, resolution=n)
        out["fused"][n] = _median_s(lambda c=c: extract_shape(loaded, "bunny", c), 1 if n == 512 else repeat)
    out["stages"] = {n: stage_times(loaded, replace(cfg, resolution=n)) for n in (128, 256)}
    two, four = [[0.7, 0.3, 0.0, 0.0]], [[0.4, 0.3, 0.2, 0.1]]
    for n in (64, 128):
        c = replace(cfg, resolution=n)
        out["slider"][n] = _median_s(lambda c=c: interpolate_shapes(loaded, SHAPES, two, cfg=c), repeat)
        out["blend4"][n] = _median_s(lambda c=c: interpolate_shapes(loaded, SHAPES, four, cfg=c), repeat)
    code = (
        "import time; t=time.perf_counter(); from compact_sdf import tasks; "
        f"tasks.extract(tasks.ExtractRequest({str(path)!r}, 'bunny', resolution=128, device={device!r})); "
        "print(time.perf_counter()-t)"
    )
    out["cold_fused_128"] = float(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    )
    return out


def stage_times(loaded, cfg) -> dict:
    """Seconds between the extraction's progress reports: where a fused reconstruction's time goes."""
    from compact_sdf.extract.fusion import extract_shape

    marks: list[tuple[str, float]] = []
    extract_shape(loaded, "bunny", cfg, progress=lambda stage, _: marks.append((stage, time.perf_counter())))
    return {a[0]: round(b[1] - a[1], 4) for a, b in itertools.pairwise(marks)}


@contextlib.contextmanager
def served(preset: str, sets: list[str]):
    """A real server on loopback, started as the add-on starts it (torch's own thread count, not the
    tests' one thread), with a model of SHAPES trained through it: yields (client, model id)."""
    from _service_helpers import addon_module

    with tempfile.TemporaryDirectory() as tmp:
        launcher = addon_module("launcher")
        backend = launcher.LocalBackend(
            sys.executable, Path(tmp) / "data", extra_args=("--log-level", "warning")
        ).start(timeout=120)
        try:
            api = backend.client
            ids = [api.upload_mesh(s, MESHES / f"{s}.ply")["id"] for s in SHAPES]
            job = api.create_job("train", mesh_ids=ids, preset=preset, overrides=parse_overrides(sets))
            yield api, api.wait_job(job["id"], timeout=3600)["result"]["model_id"]
        finally:
            backend.stop()


def through_service(repeat: int, preset: str, sets: list[str]) -> dict:
    """The same requests end to end, one ``POST /models/{id}/mesh`` each, then the queued-job path."""
    out: dict = {"mesh": {}, "slider": {}, "blend4": {}}
    with served(preset, sets) as (api, model):
        t = time.perf_counter()
        api.mesh(model, ["bunny"], resolution=128, timeout=900)
        out["first_mesh_128"] = time.perf_counter() - t
        for n in RESOLUTIONS:
            reps = 1 if n == 512 else repeat
            out["mesh"][n] = _median_s(
                lambda n=n: api.mesh(model, ["bunny"], resolution=n, timeout=900), reps
            )
        for n in (64, 128):
            two = lambda n=n: api.mesh(model, list(SHAPES[:2]), [0.7, 0.3], resolution=n, timeout=900)  # noqa: E731
            four = lambda n=n: api.mesh(model, list(SHAPES), [0.4, 0.3, 0.2, 0.1], resolution=n, timeout=900)  # noqa: E731
            out["slider"][n] = _median_s(two, repeat)
            out["blend4"][n] = _median_s(four, repeat)
        out.update(queued_jobs(api, model, repeat))
        out["add_held_shape"] = add_held_shape(api, model)
        out["resident"] = api.resident()
    return out


def add_held_shape(api, model: str) -> dict:
    """Add to Model as the panel sends it (mode auto, at most 800 iterations) with a shape the model
    already holds (spot again, under another name): upload, fit job polled every 0.5 s; then the
    first mesh of the new shape (the changed model is read again by the resident process)."""
    start = time.perf_counter()
    mesh_id = api.upload_mesh("spot_again", MESHES / "spot.ply")["id"]
    job = api.create_job(
        "fit", model_id=model, mesh_id=mesh_id, name="spot_again", mode="auto", iterations=800
    )
    done = api.wait_job(job["id"], timeout=900, poll=0.5)
    assert done["status"] == "succeeded", done.get("error")
    added = time.perf_counter() - start
    start = time.perf_counter()
    api.mesh(model, ["spot_again"], resolution=128, timeout=900)
    fit = done["result"]["fit"]
    return {
        "seconds": added,
        "then_mesh_128": time.perf_counter() - start,
        "mode": fit["mode"],
        "iterations": fit["iterations"],
        "fit_elapsed_s": fit["elapsed_s"],
    }


def queued_jobs(api, model: str, repeat: int) -> dict:
    """A Reconstruct job at N = 128 and a one-row interpolate job at N = 64, as the panel used to
    send them (only the job API: this also runs against older backends, for a before/after)."""
    weights = [[0.7, 0.3]]
    return {
        "job_reconstruct_128": _median_s(lambda: _job(api, "extract", model, shape="bunny"), repeat),
        "job_slider_64": _median_s(
            lambda: _job(api, "interpolate", model, shapes=list(SHAPES[:2]), weights=weights, resolution=64),
            repeat,
        ),
    }


def _job(api, kind: str, model: str, **params) -> None:
    """A queued job followed as the panel follows it: polled every 0.5 s, then its file downloaded."""
    params.setdefault("resolution", 128)
    job = api.create_job(kind, model_id=model, **params)
    done = api.wait_job(job["id"], timeout=600, poll=0.5)
    assert done["status"] == "succeeded", done.get("error")
    for name in done["result"]["files"]:
        api.download_result(job["id"], name)


def latency(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    path = model_dir(args)
    return {
        "machine": machine(),
        "preset": args.preset,
        "train_set": args.train_set,
        "in_process": in_process(path, args.repeat, args.device),
        "service": through_service(args.repeat, args.preset, args.train_set),
    }


def meshing(args: argparse.Namespace) -> dict:
    """Both meshing paths on the same loaded model: seconds, sizes, and the largest distance from a
    vertex of one mesh to the nearest vertex of the other (lattice cells)."""
    from compact_sdf.checkpoint import load_model
    from compact_sdf.extract.fusion import extract_shape
    from scipy.spatial import cKDTree

    torch.set_num_threads(args.threads)
    loaded = load_model(model_dir(args), device=args.device)
    rows = []
    for n in RESOLUTIONS[:3]:
        for shape in SHAPES:
            row: dict = {"shape": shape, "resolution": n}
            meshes = {}
            for way in ("numpy", "tensors"):
                cfg = replace(loaded.config.extract, resolution=n, meshing=way)
                meshes[way] = extract_shape(loaded, shape, cfg)
                row[f"{way}_s"] = _median_s(
                    lambda cfg=cfg, shape=shape: extract_shape(loaded, shape, cfg), args.repeat
                )
                row[f"{way}_vertices"] = len(meshes[way].vertices)
                row[f"{way}_faces"] = len(meshes[way].faces)
            a, b = meshes["numpy"].vertices, meshes["tensors"].vertices
            gap = max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max())
            scale = normalization(loaded, shape).scale  # source -> unit frame
            row["max_vertex_gap_cells"] = float(gap * scale * n / 2.0)
            rows.append(row)
            print(row, flush=True)
    return {"machine": machine(), "preset": args.preset, "device": args.device, "rows": rows}


def unlike(args: argparse.Namespace) -> dict:
    """Slider ticks between unlike stress shapes, and a four-shape blend (see the module docstring)."""
    from compact_sdf import tasks
    from compact_sdf.checkpoint import load_model
    from compact_sdf.extract import search
    from compact_sdf.extract.interpolate import interpolate_shapes
    from compact_sdf.surface_figures import shape_stats
    from stress_shapes import write

    torch.set_num_threads(args.threads)
    if args.passes:
        search.MAX_WIDENINGS = args.passes  # the numpy path's search (the one the CPU uses)
    meshes = REPO / "out" / "bench" / "stress"
    write(meshes)
    path = REPO / "out" / f"interactive_unlike_{args.preset}"
    loaded = load_model(
        train_model(list(UNLIKE), path, args.preset, args.train_set, args.threads, "cpu", meshes)
    )
    rows = []

    def tick(names: list[str], row: list[float], n: int, label: str, t: float | None) -> None:
        cfg = replace(loaded.config.extract, resolution=n)
        start = time.perf_counter()
        (mesh,) = interpolate_shapes(loaded, names, [row], cfg=cfg)
        seconds = time.perf_counter() - start
        stats = shape_stats(mesh.to_trimesh())
        rows.append(
            {
                "resolution": n,
                "path": label,
                "t": t,
                "seconds": round(seconds, 3),
                "faces": len(mesh.faces),
                "parts": stats["components"],
                "genus": stats["genus"],
                "closed": stats["watertight"],
                "manifold": stats["manifold"],
                "lost": list(tasks.judge(loaded, names, row, mesh).lost),
            }
        )
        print(rows[-1], flush=True)

    for n in (64, 128):
        for a, b in UNLIKE_PAIRS:
            for t in TICKS:
                tick([a, b], [1.0 - t, t], n, f"{a}-{b}", t)
        tick(list(UNLIKE), [0.4, 0.3, 0.2, 0.1], n, "blend of four", None)
    sources = {s.name: s.figures.to_dict() for s in loaded.shapes if s.figures is not None}
    return {"machine": machine(), "preset": args.preset, "passes": search.MAX_WIDENINGS, "sources": sources,
            "rows": rows}  # fmt: skip


def _figures(mesh, previous) -> tuple[dict, object]:
    """Area, mean dihedral angle, genus, parts, and the mean distance (unit frame) between this mesh's
    surface and the previous step's: exact point-to-triangle distances from 20,000 area samples of each
    to the other mesh (no sampling floor, unlike a point-cloud Chamfer)."""
    import trimesh
    from compact_sdf.data.groundtruth import unsigned_distance
    from compact_sdf.extract.mesh_quality import mean_normal_angle

    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    parts = len(tm.split(only_watertight=False))
    out = {
        "area": float(tm.area),
        "dihedral": mean_normal_angle(tm),
        "genus": round((2 * parts - tm.euler_number) / 2),
        "parts": parts,
    }
    if previous is not None:
        there = unsigned_distance(previous.vertices, previous.faces, _samples(tm))
        back = unsigned_distance(tm.vertices, tm.faces, _samples(previous))
        out["distance_prev"] = float((there.mean() + back.mean()) / 2)
    return out, tm


def _samples(tm) -> np.ndarray:
    import trimesh

    return np.asarray(trimesh.sample.sample_surface(tm, 20_000, seed=0)[0], dtype=np.float32)


def smoothness(args: argparse.Namespace) -> dict:
    from compact_sdf.checkpoint import load_model
    from compact_sdf.extract.interpolate import interpolate_shapes

    torch.set_num_threads(args.threads)
    loaded = load_model(model_dir(args), device=args.device)
    cfg = replace(loaded.config.extract, resolution=args.resolution)
    runs: dict = {}
    pictures: dict = {}
    for mode in ("generalization", "blend"):
        for a, b in PAIRS:
            weights = [[1.0 - t, t] for t in WEIGHTS]
            meshes = interpolate_shapes(loaded, [a, b], weights, cfg=cfg, between_mode=mode)
            rows, previous = [], None
            for t, mesh in zip(WEIGHTS, meshes, strict=True):
                unit = mesh_in_unit(mesh, loaded, (a, b), t)
                row, previous = _figures(unit, previous)
                rows.append({"t": t, **row})
            runs[f"{mode}:{a}-{b}"] = rows
            pictures[(mode, a, b)] = [meshes[i] for i in (0, 1, 4, 7, 13, 14)]
    return {
        "machine": machine(),
        "preset": args.preset,
        "resolution": args.resolution,
        "runs": runs,
    }, pictures


def mesh_in_unit(mesh, loaded, names: tuple[str, str], t: float):
    """The mesh in the blended unit frame (so areas and distances compare along the path)."""
    from compact_sdf.extract.interpolate import interpolate_normalizations
    from compact_sdf.extract.mesh import MeshArrays

    norms = [loaded.shapes[loaded.shape_index(n)].normalization for n in names]
    (norm,) = interpolate_normalizations(norms, np.array([[1.0 - t, t]]))
    return MeshArrays(norm.to_unit(mesh.vertices).astype(np.float32), mesh.faces, mesh.normals)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(PAIRS), 3, figsize=(12, 2.6 * len(PAIRS)), squeeze=False)
    for row, (a, b) in enumerate(PAIRS):
        for mode, style in (("generalization", "r--o"), ("blend", "b-o")):
            rows = result["runs"][f"{mode}:{a}-{b}"]
            t = [r["t"] for r in rows]
            label = (
                "before: in-betweens s_g alone"
                if mode == "generalization"
                else "after: residual fade (default)"
            )
            axes[row, 0].plot(t, [r["area"] for r in rows], style, ms=3, label=label)
            axes[row, 1].plot(t, [r["dihedral"] for r in rows], style, ms=3, label=label)
            steps = [(r["t"] + p["t"]) / 2 for p, r in itertools.pairwise(rows)]
            axes[row, 2].semilogy(steps, [r["distance_prev"] for r in rows[1:]], style, ms=3, label=label)
        axes[row, 0].set_ylabel(f"{a} -> {b}\narea (unit frame)")
        axes[row, 1].set_ylabel("mean dihedral angle (deg)")
        axes[row, 2].set_ylabel("mean distance to previous step")
    for ax in axes[-1]:
        ax.set_xlabel("slider weight t")
    axes[0, 2].legend(fontsize=7)
    fig.suptitle(f"slider path, N = {result['resolution']}, preset {result['preset']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("latency", "meshing", "jobs", "smoothness", "unlike"))
    p.add_argument("--preset", default=DEFAULT_PRESET)
    p.add_argument("--threads", type=int, default=2, help="torch threads of this process")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--device", default="cpu", help="where the model is trained and used in-process")
    p.add_argument(
        "--train-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="training overrides, e.g. train.steps=1200",
    )
    p.add_argument(
        "--resolution", type=int, default=ExtractConfig().resolution, help="smoothness: marching-cubes cells"
    )
    p.add_argument("--passes", type=int, default=0, help="unlike: the search's passes before a dense one")
    p.add_argument("--out", type=Path, required=True, help="JSON results")
    args = p.parse_args()
    if args.what == "latency":
        result = latency(args)
    elif args.what == "meshing":
        result = meshing(args)
    elif args.what == "unlike":
        result = unlike(args)
    elif args.what == "jobs":
        with served(args.preset, args.train_set) as (api, model):
            result = {"machine": machine(), "preset": args.preset, **queued_jobs(api, model, args.repeat)}
    else:
        result, pictures = smoothness(args)
        plot(result, REPO / "docs" / "img" / "interactive_smoothness.png")
        rows = [pictures[(m, a, b)] for a, b in PAIRS[:2] for m in ("generalization", "blend")]
        labels = [
            f"{a}-{b} {'before' if m == 'generalization' else 'after'}"
            for a, b in PAIRS[:2]
            for m in ("generalization", "blend")
        ]
        title = "t = 0, 0.001, 0.1, 0.5, 0.999, 1"
        render_grid(rows, labels, title, REPO / "docs" / "img" / "interactive_slider.png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
