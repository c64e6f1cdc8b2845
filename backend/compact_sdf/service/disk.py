"""A full disk under the data directory, told apart from other errors and said in words.

Writes fail in many shapes when the disk is full: ``OSError`` ENOSPC / EDQUOT from Python, SQLite's
"database or disk is full", torch's "file write failed" (no errno). Routes answer 507 ``disk_full``,
jobs fail with code ``disk_full``, ``/health`` reports it; none of them is a bare 500.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from pathlib import Path

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
LOW_FREE_BYTES = 16 * 1024 * 1024  # below this a write error without an errno counts as a full disk
KEPT = "earlier meshes, models, checkpoints, results and the job database are unchanged"
FREE = (
    "free space on that disk (delete models, meshes or job results you no longer need through the API, "
    "or empty the data directory's cache/ folder) and try again"
)


def free_bytes(root: Path) -> int | None:
    try:
        st = os.statvfs(root)
    except OSError:
        return None
    return int(st.f_bavail * st.f_frsize)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or during (a wrapped ENOSPC still counts)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_disk_full(exc: BaseException, root: Path | None = None) -> bool:
    """True for the shapes a full disk's write error takes; ``root`` lets a bare "write failed" count
    when that disk is (nearly) full."""
    for e in _chain(exc):
        text = str(e).lower()
        if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
            return True
        if isinstance(e, sqlite3.Error) and "disk is full" in text:
            return True
        if "no space left on device" in text:
            return True
        if "write failed" in text and root is not None and (free_bytes(root) or 0) < LOW_FREE_BYTES:
            return True
    return False


def disk_full_message(what: str) -> str:
    """What happened, what was kept and what to free (``what``: this request, the job, ...)."""
    full = "disk full: the data directory's disk has no space left"
    return f"{full}, so {what} could not be saved; {KEPT}; {FREE}"


def unwritable(root: Path) -> str | None:
    """Why the data directory cannot take a small write now, or None when it can (``/health``)."""
    try:
        with tempfile.TemporaryFile(dir=root / "tmp") as f:  # a full disk refuses the write itself
            f.write(b"\0" * 4096)
            f.flush()
    except OSError as exc:
        return f"the data directory cannot be written ({exc.strerror or exc}); {FREE}"
    free = free_bytes(root)
    if free is not None and free < LOW_FREE_BYTES:
        return f"the data directory's disk is nearly full ({free} bytes free); {FREE}"
    return None
