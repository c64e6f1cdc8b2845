"""The one progress-callback type every long operation takes (stage text, fraction 0..1)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float], None]


def span(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """``progress`` mapped into ``[lo, hi]`` (one stretch of a longer bar)."""
    if progress is None:
        return None
    return lambda stage, f: progress(stage, lo + (hi - lo) * min(max(f, 0.0), 1.0))
