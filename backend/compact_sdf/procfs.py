"""Memory figures from Linux /proc files, read the same way by the estimates and the job limits."""

from __future__ import annotations

from pathlib import Path


def proc_bytes(path: str, key: str) -> int | None:
    """The ``key:  N kB`` line of a /proc file, in bytes; None where the file or the line is missing."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
