"""Time and peak memory of preparing one Armadillo-sized mesh with the paper's sampling settings.

    .venv/bin/python bench/prepare.py [--mesh fandisk] [--subdivide 1] [--write-doc]

None of the shared meshes has Armadillo's ~50k faces, so a real mesh is subdivided (midpoint, same
surface): fandisk once gives 57,816 faces and, at the paper settings (129^3 + 513^3 band of
6.5 voxels), about 8 M overfitting points, close to Armadillo's 8.6 M. Reports wall and CPU
seconds per stage, the process's peak RSS (getrusage high-water mark) and the load average
before and after, because the machine may be shared. ``--write-doc`` appends the result to
docs/benchmarks/prepare.md. The last line printed is a one-line JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "backend"))

from compact_sdf.config import get_preset  # noqa: E402
from compact_sdf.data.load import load_mesh  # noqa: E402
from compact_sdf.data.sampling import prepare_samples  # noqa: E402

MESHES = REPO.parent / "shared" / "meshes"
DOC = REPO / "docs" / "benchmarks" / "prepare.md"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is KiB on Linux


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if "model name" in ln),
            model,
        )
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    system = f"{platform.system()} Python {platform.python_version()}"
    return f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB RAM, {system}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", default="fandisk", help="a mesh in ../shared/meshes (stem)")
    parser.add_argument("--subdivide", type=int, default=1, help="midpoint subdivisions (x4 faces each)")
    parser.add_argument("--preset", default="paper")
    parser.add_argument(
        "--write-doc", action="store_true", help=f"append the result to {DOC.relative_to(REPO)}"
    )
    args = parser.parse_args()

    mesh = load_mesh(MESHES / f"{args.mesh}.ply")
    for _ in range(args.subdivide):
        mesh = mesh.subdivide()
    assert mesh.is_watertight, "the benchmark mesh must stay watertight"
    cfg = get_preset(args.preset).sampling
    load_before = os.getloadavg()
    rss_before = peak_rss_gb()

    stages: dict[str, float] = {}
    current: list[tuple[str, float]] = []  # (stage, start) of the stage running now

    def progress(stage: str, fraction: float) -> None:
        now = time.perf_counter()
        if not current or current[-1][0] != stage:
            if current:
                name, since = current[-1]
                stages[name] = stages.get(name, 0.0) + now - since
            current.append((stage, now))

    wall, cpu = time.perf_counter(), cpu_seconds()
    samples = prepare_samples(mesh, cfg, args.mesh, progress)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    result = {
        "bench": "prepare",
        "mesh": f"{args.mesh} x{args.subdivide} subdivided",
        "faces": len(mesh.faces),
        "preset": args.preset,
        "ovf_points": len(samples.ovf_sdf),
        "gen_points": len(samples.gen_sdf),
        "inside_fraction_ovf": round(float(np.mean(samples.ovf_sdf < 0)), 3),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "rss_before_gb": round(rss_before, 2),
        "stages_wall_s": {k: round(v, 1) for k, v in stages.items()},
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
    }
    if args.write_doc:
        write_doc(result)
    print(json.dumps(result))


def write_doc(result: dict[str, object]) -> None:
    if not DOC.exists():
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text("# Preparation benchmark (bench/prepare.py)\n\nEach entry is appended by "
                       "`.venv/bin/python bench/prepare.py --write-doc`.\n")  # fmt: skip
    stages = ", ".join(f"{k} {v} s" for k, v in result["stages_wall_s"].items())  # type: ignore[attr-defined]
    entry = (
        f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {result['mesh']} "
        f"({result['faces']:,} faces), preset {result['preset']}\n\n"
        f"- machine: {result['machine']}\n"
        f"- load average (1/5/15 min) before {result['load_before']}, after {result['load_after']}\n"
        f"- points: {result['ovf_points']:,} overfitting + {result['gen_points']:,} generalization\n"
        f"- wall {result['wall_s']} s, CPU {result['cpu_s']} s, peak RSS {result['peak_rss_gb']} GB "
        f"(process before preparing: {result['rss_before_gb']} GB)\n"
        f"- stages (wall): {stages}\n"
    )
    with DOC.open("a") as handle:
        handle.write(entry)


if __name__ == "__main__":
    main()
