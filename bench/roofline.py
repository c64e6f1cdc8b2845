"""Roofline estimate for one dual-branch training step.

FLOPs per sample are counted from the model's own Linear layers (forward 2*in*out per layer,
backward about twice that), so the figure follows any preset or override. The attainable peak is
measured with a large matmul in the same precision on the same device, and the vendor's dense peak
is listed beside it where the device is known.

    python bench/roofline.py --preset paper [--precision bf16] [--samples-per-s 1.2e6]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from _harness import machine
from compact_sdf.config import ModelConfig, get_preset
from compact_sdf.model import DualSDF
from torch import nn

# Vendor dense (no sparsity) peaks in TFLOP/s for the GPUs this project is benchmarked on.
VENDOR_PEAK_TFLOPS = {
    "H100": {"fp32": 67.0, "tf32": 495.0, "bf16": 989.0},
    "H200": {"fp32": 67.0, "tf32": 495.0, "bf16": 989.0},
}


def mlp_flops(mlp: nn.Module) -> int:
    """Forward FLOPs of one sample through every Linear layer of ``mlp``."""
    return sum(2 * m.in_features * m.out_features for m in mlp.modules() if isinstance(m, nn.Linear))


def flops_per_sample(cfg: ModelConfig) -> dict[str, float]:
    """Forward+backward FLOPs per sample point of each branch (backward ~ 2x forward)."""
    with torch.device("meta"):
        model = DualSDF(cfg, 1)
    gen, ovf = mlp_flops(model.gen), mlp_flops(model.ovf)
    trilinear = 2 * 8 * cfg.grid_channels  # weighted sum of 8 corner rows
    return {
        "gen_forward": float(gen),
        "ovf_forward": float(ovf + trilinear),
        "gen_train": 3.0 * gen,
        "ovf_train": 3.0 * (ovf + trilinear),
        "mean_train": 1.5 * (gen + ovf + trilinear),  # a "sample" feeds one branch
    }


def attainable_tflops(device: torch.device, precision: str, size: int = 8192, repeats: int = 20) -> float:
    """Large-matmul throughput in TFLOP/s: what this device really gives in this precision."""
    if device.type == "cpu":
        size, repeats = 2048, 5
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e12


def roofline(
    cfg: ModelConfig, samples_per_s: float, precision: str, device: torch.device
) -> dict[str, object]:
    """Achieved training FLOP/s against the measured and vendor peaks."""
    per = flops_per_sample(cfg)
    achieved = per["mean_train"] * samples_per_s / 1e12
    peak = attainable_tflops(device, precision)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    vendor = next((v[precision] for k, v in VENDOR_PEAK_TFLOPS.items() if k in name), None)
    return {
        "device": name,
        "precision": precision,
        "flops_per_sample": per,
        "samples_per_s": samples_per_s,
        "achieved_tflops": achieved,
        "attainable_tflops": peak,
        "fraction_of_attainable": achieved / peak if peak else None,
        "vendor_peak_tflops": vendor,
        "fraction_of_vendor_peak": achieved / vendor if vendor else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    parser.add_argument("--samples-per-s", type=float, default=0.0)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = get_preset(args.preset).model
    print(
        json.dumps(
            roofline(cfg, args.samples_per_s, args.precision, device) | {"machine": machine()}, indent=2
        )
    )


if __name__ == "__main__":
    main()
