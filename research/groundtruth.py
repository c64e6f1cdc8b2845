"""Compare signed-distance libraries: throughput, error against a brute-force exact reference, sign errors.

    .venv/bin/python bench/groundtruth.py [--faces-mesh cheburashka] [--json out.json]

Speed is measured on a ~53k-face mesh (a real mesh subdivided once: same surface, Armadillo-like
face count) for three point sets: fine-lattice points near the surface in lattice order (what the
band query sees), Gaussian offsets of surface samples (sigma 0.025) and uniform points in [-1,1]^3,
both in random order. Accuracy is measured on knight_small (1,000 faces): magnitudes against the
brute-force point-triangle distance (float64, every pair) and signs against libigl's exact
generalised winding number. Candidates that are not installed are reported as such. Prints a
markdown table and a one-line JSON summary; wall and CPU seconds are both recorded because the
machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import igl
import numpy as np
import trimesh

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "backend"))

from compact_sdf.data.groundtruth import (  # noqa: E402
    point_triangle_distance,
    signed_distance,
    unsigned_distance,
)
from compact_sdf.data.load import load_mesh  # noqa: E402
from compact_sdf.data.normalize import Normalization  # noqa: E402
from compact_sdf.data.sampling import area_samples  # noqa: E402

MESHES = REPO.parent / "shared" / "meshes"
Method = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _igl(kind: int) -> Method:
    return lambda v, f, p: igl.signed_distance(p, v, f, kind)[0]


def _pcu(v: np.ndarray, f: np.ndarray, p: np.ndarray) -> np.ndarray:
    import point_cloud_utils as pcu

    return np.asarray(pcu.signed_distance_to_mesh(p, v, f.astype(np.int32))[0])


def _trimesh(v: np.ndarray, f: np.ndarray, p: np.ndarray) -> np.ndarray:
    return -trimesh.proximity.signed_distance(trimesh.Trimesh(v, f, process=False), p)  # trimesh: + inside


METHODS: dict[str, tuple[Method, bool]] = {  # name -> (function, gives a sign)
    "libigl pseudonormal (chosen)": (lambda v, f, p: signed_distance(v, f, p), True),
    "libigl unsigned + fast winding number (chosen for open meshes)": (
        lambda v, f, p: signed_distance(v, f, p, sign="winding"),
        True,
    ),
    "libigl signed_distance FAST_WINDING_NUMBER type": (
        _igl(igl.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER),
        True,
    ),
    "libigl signed_distance WINDING_NUMBER type (exact GWN)": (
        _igl(igl.SIGNED_DISTANCE_TYPE_WINDING_NUMBER),
        True,
    ),
    "point-cloud-utils signed_distance_to_mesh": (_pcu, True),
    "trimesh.proximity.signed_distance": (_trimesh, True),
    "fcpw find_closest_points (unsigned)": (unsigned_distance, False),
}
SLOW = {  # measured on a small subset only
    "trimesh.proximity.signed_distance",
    "libigl signed_distance WINDING_NUMBER type (exact GWN)",
}


def unit_mesh(name: str, subdivide: bool = False) -> tuple[np.ndarray, np.ndarray]:
    mesh = load_mesh(MESHES / f"{name}.ply")
    if subdivide:
        mesh = mesh.subdivide()
    return Normalization.fit(mesh.vertices).to_unit(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)


def point_sets(v: np.ndarray, f: np.ndarray, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    h = 2.0 / 512
    near_lattice = np.unique(np.rint((area_samples(v, f, n, rng) + 1.0) / h).astype(np.int64), axis=0)
    return {
        "band lattice (ordered)": -1.0 + near_lattice[:n] * h,
        "near surface (random)": area_samples(v, f, n, rng) + rng.normal(0, 0.025, (n, 3)),
        "uniform (random)": rng.uniform(-1, 1, (n, 3)),
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Method, v: np.ndarray, f: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = fn(v, f, np.ascontiguousarray(p))
    return np.asarray(out, dtype=np.float64), time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-mesh", default="cheburashka")
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()[0]

    kv, kf = unit_mesh("knight_small")
    probe = np.concatenate(
        [rng.uniform(-1, 1, (1000, 3)), area_samples(kv, kf, 1000, rng) + rng.normal(0, 0.01, (1000, 3))]
    )
    exact = point_triangle_distance(probe, kv[kf]).min(axis=1)
    inside = igl.winding_number(kv, kf, probe) > 0.5

    sv, sf = unit_mesh(args.speed_mesh, subdivide=True)
    sets = point_sets(sv, sf, args.points, rng)
    rows: list[dict[str, Any]] = []
    for name, (fn, signed) in METHODS.items():
        row: dict[str, Any] = {"method": name}
        try:
            got, _, _ = timed(fn, kv, kf, probe)
        except ImportError as exc:
            rows.append({**row, "error": f"not installed ({exc.name})"})
            continue
        row["max_abs_error"] = float(np.abs(np.abs(got) - exact).max())
        row["sign_errors"] = int(((got < 0) != inside).sum()) if signed else None
        for label, pts in sets.items():
            pts = pts[:5_000] if name in SLOW else pts
            _, wall, cpu = timed(fn, sv, sf, pts)
            row[label] = {"points": len(pts), "mpts_per_s": len(pts) / wall / 1e6, "cpu_per_wall": cpu / wall}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    print(
        f"\nspeed: {args.speed_mesh} subdivided, {len(sf)} faces; accuracy: knight_small, {len(probe)} points"
    )
    print("| method | max abs error | sign errors / 2000 | " + " | ".join(f"{k} Mpts/s" for k in sets) + " |")
    print("|---|---|---|" + "---|" * len(sets))
    for row in rows:
        if "error" in row:
            print(f"| {row['method']} | {row['error']} |" + " |" * (len(sets) + 1))
            continue
        speeds = " | ".join(
            f"{row[k]['mpts_per_s']:.3f} (cpu/wall {row[k]['cpu_per_wall']:.1f})" for k in sets
        )
        sign = "n/a (unsigned)" if row["sign_errors"] is None else row["sign_errors"]
        print(f"| {row['method']} | {row['max_abs_error']:.1e} | {sign} | {speeds} |")
    summary = {
        "faces": len(sf),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "results": rows,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    print(json.dumps({"bench": "groundtruth", "load_before": load_before, "load_after": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
