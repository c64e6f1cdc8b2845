"""The one progress-callback type every long operation takes (stage text, fraction 0..1)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float], None]


def monotone(progress: Progress | None) -> Progress | None:
    """``progress`` whose fraction never goes back (a bar that shrinks reads as lost work)."""
    if progress is None:
        return None
    high = [0.0]

    def report(stage: str, f: float) -> None:
        high[0] = max(high[0], f)
        progress(stage, high[0])

    return report


def span(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """``progress`` mapped into ``[lo, hi]`` (one stretch of a longer bar)."""
    if progress is None:
        return None
    return lambda stage, f: progress(stage, lo + (hi - lo) * min(max(f, 0.0), 1.0))
