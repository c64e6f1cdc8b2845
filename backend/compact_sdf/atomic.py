"""The one atomic file write of the backend: readers see the old file or the new one, never half.

Checkpoints, the sample cache, uploaded meshes, job results and the server's token and info files
all go through :func:`atomic_write`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], object], *, mode: int = 0o644) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, flush it to disk, then rename it over ``path``.

    The temporary name keeps ``path``'s suffix, so writers that choose a format by suffix (mesh
    export, ``np.savez``) write the right one. ``mode`` is set before any byte is written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, mode)  # mkstemp makes it private; os.chmod also works on Windows
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int = 0o644) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data), mode=mode)


def atomic_write_json(path: str | Path, obj: Any, *, mode: int = 0o644) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode(), mode=mode)
