"""The panel's sentences made from backend answers: the backend line, and what a finished training or fit
job warns about as the tail of its one-line summary (no bpy, so the wording is tested without Blender)."""

from __future__ import annotations

from typing import Any


def backend_line(health: dict[str, Any]) -> str:
    """The panel's backend line from ``GET /health``: version, device, torch and the job counts."""
    gpu = f", {health['gpu']}" if health.get("gpu") else ""
    return (
        f"Backend {health.get('version', '?')} on {health.get('device', '?')}{gpu}, "
        f"torch {health.get('torch', '?')}, "
        f"{health.get('running_jobs', 0)} running / {health.get('queued_jobs', 0)} queued"
    )


class Warn(str):
    """A summary of a job that succeeded with a result the user should act on: reported as a warning
    (Blender's report and the panel's icon), never as a plain success."""


def level(ok: bool, message: str) -> str:
    """The report level of a finished job's summary: a success that warns (``Warn``) is a warning."""
    return "ERROR" if not ok else "WARNING" if isinstance(message, Warn) else "INFO"


def _shares(missed: dict[str, float]) -> str:
    """The worst three shapes and their shares inside the fusion band."""
    held = ", ".join(f"{n} {100 * v:.1f}%" for n, v in sorted(missed.items(), key=lambda kv: kv[1])[:3])
    return held + (f" and {len(missed) - 3} more" if len(missed) > 3 else "")


def training_note(result: dict[str, Any]) -> str:
    """Of a train or fit job's result: divergence go-backs, an auto fit's fine-tune, and shapes whose
    surface s_g left outside the fusion band (their fused mesh loses detail there); empty when none."""
    fit = "fit" in result
    train = result.get("fit" if fit else "train") or {}
    note = ""
    back = train.get("rollbacks") or 0
    if back:
        note += f" (the loss diverged {back}x; training went back to a checkpoint each time)"
    first: dict[str, float] = train.get("code_misses") or {}
    if first:
        note += (
            f"; the code alone held too little of it ({_shares(first)} inside the fusion band), so the "
            f"model was fine-tuned with it for {train.get('iterations', 0)} steps"
        )
    missed: dict[str, float] = train.get("band_misses") or {}
    if missed:
        note += f"; the fusion band holds too little of {_shares(missed)}: {_remedy(fit, train)}"
    return note


def _remedy(fit: bool, train: dict[str, Any]) -> str:
    """What to do about shapes the fusion band misses, with what the panel offers."""
    if not fit:
        return "encode again with more Steps to keep their detail"
    if train.get("mode") == "code":
        return "their reconstruction loses that part; add the object with Mode Auto or Full (a fine-tune)"
    return (
        "their reconstruction loses that part even after fine-tuning; encode such shapes into a new model "
        "with shapes like them (Encode Selected) to keep their detail"
    )


def summary(text: str, result: dict[str, Any]) -> str:
    """``text`` with the result's note; a ``Warn`` when some shape is still poorly held."""
    train = result.get("fit") or result.get("train") or {}
    line = text + training_note(result)
    return Warn(line) if train.get("band_misses") else line


LOST_REMEDY = (
    "Walls and gaps finer than the model's training lattice need a finer preset (Balanced) or more Steps; "
    "Close Pinholes closes shallow pinholes"
)


def blend_prefix(name: str) -> str:
    return f"'{name}' at these weights: "


def blend_note(name: str, lost: str) -> str | None:
    """A ``Warn`` naming the blended object and what is wrong with its mesh, or None when nothing is."""
    return Warn(blend_prefix(name) + lost) if lost else None


def row_summary(text: str, result: dict[str, Any]) -> str:
    """``text``, or a ``Warn`` naming the steps of an interpolation row that came back broken."""
    lost = result.get("lost") or {}
    if not lost:
        return text
    steps = "; ".join(f"{name.rsplit('.', 1)[0]}: {', '.join(notes)}" for name, notes in sorted(lost.items()))
    return Warn(f"{text}, but not all as asked: {steps}")


def reconstruction_summary(text: str, result: dict[str, Any]) -> str:
    """``text``, or a ``Warn`` with what the reconstruction lost against its source (the backend's
    ``lost``: parts, genus, area) and what to do about it."""
    lost = result.get("lost") or []
    if not lost:
        return text
    return Warn(f"{text}, but it differs from its source: {'; '.join(lost)}. {LOST_REMEDY}")
