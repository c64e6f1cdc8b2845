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
