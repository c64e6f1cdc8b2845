"""The one progress-callback type every long operation takes (stage text, fraction 0..1), and the
process's cancel check for loops that have no progress callback to stop them."""

from __future__ import annotations

from collections.abc import Callable

from compact_sdf.errors import Cancelled

Progress = Callable[[str, float], None]

_stop_check: list[Callable[[], bool]] = []


def stop_when(check: Callable[[], bool]) -> None:
    """Make ``check_stop`` raise ``Cancelled`` once ``check()`` is true. For a process that runs one
    cancellable job (the service's job processes); unset, ``check_stop`` does nothing."""
    _stop_check[:] = [check]


def check_stop() -> None:
    """A cancel point inside long loops (network evaluation in batches, metric stages)."""
    if _stop_check and _stop_check[0]():
        raise Cancelled("cancelled")


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
