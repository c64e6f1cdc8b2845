"""Can NVIDIA Warp's meshing be our CUDA path? s_g of one shape meshed three ways on one lattice.

    PYTHONPATH=/tmp/warp_site:backend .venv/bin/python research/warp_meshing.py [--device cuda]

Why: the CUDA issue wants band search, field evaluation and marching cubes on the GPU with no
per-block Python loop or CPU copy of the lattice, and maintained libraries measured first. Warp 1.18's
``warp.geometry.sparse_marching_cubes(field, nx, ny, nz, lower=, upper=, lipschitz_bound=, device=)``
keeps the octree cells with ``|f(centre)| <= L * half diagonal`` and marches the leaves; ``field``
maps a ``wp.array[vec3]`` to a ``wp.array[float32]`` on that device (torch: zero-copy
``wp.to_torch``/``wp.from_torch``). Our lattice (N cells over [-1,1], vertex i at -1 + 2i/N) is
Warp's ``nx = N + 1`` nodes, ``lower = -1``, ``upper = 1``. Rows: the product's ``extract_shape(...,
"generalization")``; Warp sparse at ``cfg.lipschitz`` and at the bound our search ended with; Warp
dense ``IsoSurfaceMarchingCubes`` on the dense s_g volume. Table on stdout, JSON in out/research/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
import warp as wp
import warp.geometry as wg
from compact_sdf.checkpoint import load_model
from compact_sdf.extract.dense import dense_volume
from compact_sdf.extract.fusion import extract_shape
from compact_sdf.extract.lattice import CPU_BATCH
from compact_sdf.extract.search import find_surface
from compact_sdf.metrics import chamfer, sample_surface
from compact_sdf.surface_figures import shape_stats
from scipy.spatial import cKDTree

REPO = Path(__file__).resolve().parents[1]
MISSING = [  # what sparse_marching_cubes does not give that extract_field needs (read from its source)
    "one field, one level set: no band |s_g| <= w, no s_o on it, no trained-region cells (fusion would be "
    "our kernels between lipschitz_octree (cells, no values) and sparse_marching_cubes_from_cells)",
    "a fixed Lipschitz bound, unchecked: search.py measures edge slopes and widens L; Warp would drop cells",
    "only (vertices, indices): no field or sign lattice for joins, handle closing or drop_band_artifacts",
    "no ZERO_GAP (values within 1% of a voxel of 0 pushed to +-gap, lattice.march): vertices on edges with "
    "both ends that near 0 differ (the share > 0.02 column); a 0 value gives zero-area faces",
]
COLUMNS = {  # the table: key and format; a row without the key prints "-"
    "N": "{}", "method": "{}", "first_s": "{:.2f}", "median_s": "{:.3f}", "field_evals": "{:,}",
    "vertices": "{:,}", "faces": "{:,}", "watertight": "{}", "manifold": "{}", "volume": "{:.4f}",
    "chamfer": "{:.2e}", "offset_max_vox": "{:.3f}", "offset_mean_vox": "{:.4f}",
    "share_off_0.02_vox": "{:.2%}",
}  # fmt: skip


def compare(v: np.ndarray, f: np.ndarray, ref: trimesh.Trimesh | None, n: int, k: int) -> dict[str, Any]:
    """Counts, shape_stats, volume, Chamfer against ``ref`` (None: the mesh's own sampling floor) and
    vertex offsets to ``ref``'s vertices in voxels."""
    mesh = trimesh.Trimesh(v, f, process=False)
    out = {"vertices": len(v), "faces": len(f), **shape_stats(mesh), "volume": float(mesh.volume)}
    a, b = sample_surface(mesh, k, 0)[0], sample_surface(mesh if ref is None else ref, k, 1)[0]
    out["chamfer"] = chamfer(cKDTree(b).query(a)[0], cKDTree(a).query(b)[0])
    if ref is not None:
        to_ref = cKDTree(ref.vertices).query(v)[0] * (n / 2.0)
        from_ref = cKDTree(v).query(ref.vertices)[0] * (n / 2.0)
        out["offset_max_vox"] = float(max(to_ref.max(), from_ref.max()))
        out["offset_mean_vox"] = float((to_ref.mean() + from_ref.mean()) / 2)
        out["share_off_0.02_vox"] = float(np.mean(to_ref > 0.02))
    return out


class Bench:
    """The model's s_g counted on every path (product, Warp sparse, dense) and the three meshings."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.dev, self.cuda = args, args.device, args.device.startswith("cuda")
        self.loaded = load_model(args.model, self.dev)
        model, z = self.loaded.model, self.loaded.code(args.shape).to(self.dev)
        self.norm = self.loaded.shapes[self.loaded.shape_index(args.shape)].normalization
        self.count, sdf_gen = 0, model.sdf_gen  # the bound method extract_shape's gen_fn calls

        def counted(zz: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            self.count += x.shape[0]
            return sdf_gen(zz, x)

        model.sdf_gen = counted  # an instance attribute shadows the method: the product's calls count too
        self.gen = lambda x: model.sdf_gen(z, x)  # what extract_shape builds as gen_fn
        self.batch = self.loaded.config.extract.batch_points if self.cuda else CPU_BATCH
        self.ends = {"lower": (-1.0,) * 3, "upper": (1.0,) * 3}  # nx = N + 1 nodes: our lattice
        self.first: dict[str, float] = {}

    def field(self, points: wp.array) -> wp.array:
        """Warp's batched callable: s_g on the points' device, zero-copy both ways."""
        x = wp.to_torch(points)
        out = torch.empty(x.shape[0], device=x.device)
        with torch.inference_mode():
            for s in range(0, x.shape[0], self.batch):
                out[s : s + self.batch] = self.gen(x[s : s + self.batch]).reshape(-1)
        return wp.from_torch(out)

    def sync(self) -> None:
        if self.cuda:  # Warp and torch share torch's stream (main); wait for both before a clock read
            torch.cuda.synchronize()
            wp.synchronize_device(self.dev)

    def row(self, n: int, method: str, run: Callable[[], Any], ref: trimesh.Trimesh | None) -> dict[str, Any]:
        """A first call, then the median of ``--repeats`` warm calls, with the points ``run`` evaluated."""
        times, out = [time.perf_counter()], ()
        for _ in range(self.args.repeats + 1):
            self.count = 0
            out = (*run(), self.count)
            self.sync()
            times.append(time.perf_counter())
        (v, f, evals), dt = out, np.diff(times)
        self.first.setdefault(method.split(" L=")[0], float(dt[0]))
        row = {"N": n, "method": method, "first_s": float(dt[0]), "median_s": float(np.median(dt[1:]))}
        return {**row, "field_evals": evals, **compare(v, f, ref, n, self.args.samples)}

    def resolution(self, n: int) -> list[dict[str, Any]]:
        cfg = replace(self.loaded.config.extract, resolution=n)

        def product() -> tuple[np.ndarray, np.ndarray]:
            mesh = extract_shape(self.loaded, self.args.shape, cfg, "generalization")
            return self.norm.to_unit(mesh.vertices), mesh.faces  # back to [-1,1]: Warp's frame

        rows = [self.row(n, "product (search + skimage blocks)", product, None)]
        ref = trimesh.Trimesh(*product(), process=False)  # deterministic: the mesh the row measured
        bound = find_surface(self.gen, cfg, self.dev).lipschitz  # the bound the product's search ended with
        for lip in dict.fromkeys([cfg.lipschitz, bound]):

            def sparse(lip: float = lip) -> tuple[np.ndarray, np.ndarray]:
                v, i = wg.sparse_marching_cubes(
                    self.field, n + 1, n + 1, n + 1, **self.ends, lipschitz_bound=lip, device=self.dev
                )
                return v.numpy(), i.numpy().reshape(-1, 3)

            rows.append(self.row(n, f"warp sparse L={lip:.2f}", sparse, ref))
        if n <= self.args.dense_max:

            def dense() -> tuple[np.ndarray, np.ndarray]:  # the product's dense evaluation, then Warp
                grid = wp.array(
                    dense_volume(self.gen, n, self.batch, self.dev), dtype=wp.float32, device=self.dev
                )
                t = time.perf_counter()
                v, i = wg.IsoSurfaceMarchingCubes.extract(grid, 0.0, **self.ends)
                self.sync()
                self.mc_s = time.perf_counter() - t
                return v.numpy(), i.numpy().reshape(-1, 3)

            rows.append({**self.row(n, "warp dense MC (+ dense eval)", dense, ref), "mc_only_s": self.mc_s})
        return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(REPO / "out" / "interactive_preview"))
    p.add_argument("--shape", default="bunny")
    p.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--budget", type=float, default=60.0, help="skip an N whose product run would take longer")
    p.add_argument("--dense-max", type=int, default=128, help="largest N for the dense variant")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=100_000, help="surface samples per mesh for Chamfer")
    p.add_argument("--json", type=Path, default=REPO / "out" / "research" / "warp_meshing.json")
    args = p.parse_args()
    torch.set_num_threads(1)  # a shared CPU machine; the GPU run uses the GPU
    wp.config.kernel_cache_dir = tempfile.mkdtemp(prefix="warp_cache_")  # cold: first calls compile
    wp.config.quiet = True
    wp.init()
    bench, rows = Bench(args), list[dict[str, Any]]()
    with wp.ScopedStream(wp.stream_from_torch()) if bench.cuda else contextlib.nullcontext():
        for n in sorted(args.resolutions):  # Warp launches on torch's stream (CUDA): no cross-stream races
            done = [r["median_s"] for r in rows if r["method"].startswith("product")]
            if done and done[-1] * 8 > args.budget:  # the product's time grows ~4-8x per doubling of N
                print(f"skipping N={n}: the product took {done[-1]:.1f}s at the N below")
                continue
            rows += bench.resolution(n)
    meta = {"device": args.device, "torch_threads": 1, "warp": wp.config.version, "shape": args.shape}
    print(f"\n{meta}\n| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|")
    for r in rows:
        print("| " + " | ".join(f.format(r[k]) if k in r else "-" for k, f in COLUMNS.items()) + " |")
    mc = {r["N"]: round(r["mc_only_s"], 4) for r in rows if "mc_only_s" in r}
    print(f"chamfer: against the product (its own row: the sampling floor); first calls: {bench.first}")
    print(f"(Warp's first call at the first N includes its cold LLVM compile); dense MC alone: {mc}")
    print("\nWhat Warp's sparse path does not give the product:\n" + "\n".join(f"- {m}" for m in MISSING))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    out = {**meta, "rows": rows, "first_s": bench.first, "missing": MISSING}
    args.json.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
