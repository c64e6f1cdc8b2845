"""Time and peak memory of preparing one Armadillo-sized mesh with the paper's sampling settings.

    .venv/bin/python bench/prepare.py [--mesh fandisk] [--subdivide 1] [--json out/bench/prepare.json]

None of the shared meshes has Armadillo's ~50k faces, so a real mesh is subdivided (midpoint, same
surface): fandisk once gives 57,816 faces and, at the paper settings (129^3 + 513^3 band of
6.5 voxels), about 8 M overfitting points, close to Armadillo's 8.6 M. Reports wall and CPU
seconds per stage, the process's peak RSS (getrusage high-water mark) and the load average
before and after, because the machine may be shared. The last line printed is a one-line JSON
summary; ``--json`` also writes it with the machine (bench/_harness.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
from _harness import MESHES, machine, write_results
from compact_sdf.config import get_preset
from compact_sdf.data.load import load_mesh
from compact_sdf.data.sampling import prepare_samples


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", default="fandisk", help="a mesh in ../shared/meshes (stem)")
    parser.add_argument("--subdivide", type=int, default=1, help="midpoint subdivisions (x4 faces each)")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
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
    if args.json:
        write_results(args.json, result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
