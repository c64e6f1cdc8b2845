"""What a finished training job warns about, as the tail of the panel's one-line summary (no bpy, so
the wording is tested without Blender)."""

from __future__ import annotations

from typing import Any


def training_note(result: dict[str, Any]) -> str:
    """Of a train or fit job's result: divergence go-backs and shapes whose surface s_g left outside
    the fusion band (their fused mesh loses detail there); empty when the run had neither."""
    fit = "fit" in result
    train = result.get("fit" if fit else "train") or {}
    note = ""
    back = train.get("rollbacks") or 0
    if back:
        note += f" (the loss diverged {back}x; training went back to a checkpoint each time)"
    missed: dict[str, float] = train.get("band_misses") or {}
    if missed:
        held = ", ".join(f"{n} {100 * v:.1f}%" for n, v in sorted(missed.items(), key=lambda kv: kv[1])[:3])
        more = f" and {len(missed) - 3} more" if len(missed) > 3 else ""
        remedy = "encode them into a new model" if fit else "encode again with more Steps"
        note += f"; the fusion band holds too little of {held}{more}: {remedy} to keep their detail"
    return note
