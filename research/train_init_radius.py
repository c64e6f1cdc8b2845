"""Radius of the untrained network's zero level set, with and without the radius calibration.

The SAL/IGR constant (output weight mean 2*sqrt(pi)/sqrt(hidden), bias -0.5) assumes a plain MLP;
with the input concatenated again before a hidden layer (and the method's other inputs) it does
not give radius 0.5. ``DualSDF`` rescales the output weight so the mean radius is 0.5; this
prints both, per preset and branch, over 2000 random directions.

    python bench/train_init_radius.py
"""

from __future__ import annotations

import argparse
from unittest import mock

import torch
from compact_sdf import model as model_mod
from compact_sdf.config import get_preset


def radii(m: model_mod.DualSDF, branch: str, u: torch.Tensor) -> torch.Tensor:
    """Zero crossing along each ray; exact because the init net is positively homogeneous in x."""
    z = m.codes.weight[0].detach()
    fn = m.sdf_gen if branch == "gen" else m.sdf_ovf
    with torch.no_grad():
        return model_mod.INIT_RADIUS / (fn(z, u) + model_mod.INIT_RADIUS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "preview", "balanced", "paper"])
    args = ap.parse_args()
    u = torch.randn(2000, 3, generator=torch.Generator().manual_seed(0))
    u = u / u.norm(dim=1, keepdim=True)
    print("| preset | branch | radius, SAL constant only (mean ± std) | radius, calibrated (mean ± std) |")
    print("|---|---|---|---|")
    for name in args.presets:
        cfg = get_preset(name).model
        torch.manual_seed(0)
        with mock.patch.object(model_mod, "calibrate_radius", lambda *a, **k: None):
            raw = model_mod.DualSDF(cfg, 1)
        torch.manual_seed(0)
        cal = model_mod.DualSDF(cfg, 1)
        for branch in ("gen", "ovf"):
            a, b = radii(raw, branch, u), radii(cal, branch, u)
            print(f"| {name} | {branch} | {a.mean():.3f} ± {a.std():.3f} | {b.mean():.3f} ± {b.std():.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
