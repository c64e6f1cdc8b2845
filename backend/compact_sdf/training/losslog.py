"""The training loss log: ``log.csv`` rows and a PNG of the loss curves (``plot-loss``)."""

from __future__ import annotations

import csv
from pathlib import Path

from compact_sdf.errors import InputError

COLUMNS = ("step", "loss_gen", "loss_ovf", "loss_z", "loss_c", "lr", "samples_per_s", "elapsed")


class LossLog:
    """Appends rows to ``log.csv``; on resume, drops rows past the checkpoint's step."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        rows = read_log(path) if resume_step is not None and path.exists() else []
        rows = [r for r in rows if r["step"] <= (resume_step or 0)]
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            for r in rows:
                writer.writerow([_fmt(r[c]) for c in COLUMNS])

    def append(self, **values: float) -> None:
        with self.path.open("a", newline="") as fh:
            csv.writer(fh).writerow([_fmt(values[c]) for c in COLUMNS])


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}"


def read_log(path: Path) -> list[dict[str, float]]:
    """Rows of a ``log.csv`` as floats; a missing or malformed log is an ``InputError``."""
    if not path.is_file():
        raise InputError(f"no loss log at {path}")
    try:
        with path.open(newline="") as fh:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    except (ValueError, TypeError, csv.Error) as exc:
        raise InputError(f"malformed loss log {path}: {exc}") from None


def plot_losses(model_dir: Path, out: Path) -> Path:
    """Write a log-scale PNG of both branch losses (and the regularisers) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(Path(model_dir) / "log.csv")
    if not rows:
        raise InputError(f"the loss log in {model_dir} has no rows yet")
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, label in (
        ("loss_gen", "generalization"),
        ("loss_ovf", "overfitting"),
        ("loss_z", "|z|"),
        ("loss_c", "|c(x)|"),
    ):
        ax.plot(steps, [max(r[key], 1e-12) for r in rows], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"training loss: {Path(model_dir).name}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
