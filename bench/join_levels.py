"""At which level does s_g join each loose part of an in-between to its body? (chooses ``join_gap``)

For every in-between of the interpolation benchmark's pairs (linear path, ``--steps`` shapes, ends
excluded), s_g is evaluated densely on the (N+1)^3 lattice; the inside ``{s_g < 0}`` is split into
6-connected parts, and for each part but the largest the smallest level ``l`` (half-voxel steps)
at which ``{s_g <= l}`` holds it and the largest in one 6-connected set is recorded. Independent of
``compact_sdf.connect`` (a dense re-count), so it also checks what the join sees.

    .venv/bin/python bench/join_levels.py --model /work/models/d_preview12
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interpolation import PAIRS

REPO = Path(__file__).resolve().parents[1]


def join_levels(field: np.ndarray, h: float, top: float) -> list[float | None]:
    """Level (normalised units) at which each part but the largest meets it; None above ``top``."""
    six = ndimage.generate_binary_structure(3, 1)
    labels, count = ndimage.label(field < 0, structure=six)
    if count < 2:
        return []
    _, first = np.unique(labels.ravel(), return_index=True)
    largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    found: dict[int, float] = {}
    for level in np.arange(1, int(top / (0.5 * h)) + 1) * (0.5 * h):
        reach = ndimage.label(field <= level, structure=six)[0].ravel()
        for part in range(1, count + 1):
            if part != largest and part not in found and reach[first[part]] == reach[first[largest]]:
                found[part] = float(level)
        if len(found) == count - 1:
            break
    return [found.get(p) for p in range(1, count + 1) if p != largest]


def main() -> None:
    from compact_sdf.checkpoint import load_model
    from compact_sdf.interpolate import interpolate_codes
    from compact_sdf.lattice import Lattice, evaluate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--pairs", nargs="+", default=list(PAIRS))
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--top", type=float, default=0.2, help="highest level tried (normalised units)")
    p.add_argument("--json", default=str(REPO / "out" / "bench" / "join_levels.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(args.model)
    n, h = args.resolution, 2.0 / args.resolution
    lat = Lattice(n)
    points = lat.points(np.indices((n + 1,) * 3).reshape(3, -1).T)
    rows = []
    for pair in args.pairs:
        a, b = pair.split("-")
        codes = interpolate_codes(torch.stack([loaded.code(a), loaded.code(b)]), args.steps)
        for k in range(1, args.steps - 1):
            with torch.no_grad():
                field = evaluate(lambda x, z=codes[k]: loaded.model.sdf_gen(z, x), points, 1 << 16, "cpu")
            levels = join_levels(field.reshape((n + 1,) * 3), h, args.top)
            rows.append({"pair": pair, "step": k, "levels": levels})
            print(pair, k, [None if v is None else round(v / h, 1) for v in levels], flush=True)
    flat = [v for r in rows for v in r["levels"]]
    need = [max((v if v is not None else np.inf) for v in r["levels"]) if r["levels"] else 0.0 for r in rows]
    summary = {
        "in_betweens": len(rows),
        "loose_parts": len(flat),
        "parts_by_level_voxels": {
            "<=1": sum(v is not None and v <= h for v in flat),
            "1.5-4": sum(v is not None and h < v <= 4 * h for v in flat),
            ">4": sum(v is None or v > 4 * h for v in flat),
        },
        "one_body_if_gap": {
            f"{g:g}": float(np.mean([x <= g + 1e-9 for x in need])) for g in (0, 0.03, 0.06, 0.1, 0.15)
        },
    }
    Path(args.json).write_text(
        json.dumps({"resolution": n, "summary": summary, "rows": rows}, indent=1) + "\n"
    )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
