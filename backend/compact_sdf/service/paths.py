"""Every file the service touches lives under one data directory; nothing from a request becomes a path
unchecked.

Ids are server-generated uuid hex strings; user-chosen names (mesh and model names, shape names,
result file names) must match a strict pattern and are then only ever joined under a known folder
and checked again after resolving.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from pathlib import Path

from compact_sdf.errors import InputError
from compact_sdf.names import check_name

ID_RE = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    """A fresh server-side id (uuid4 hex); requests never choose ids."""
    return uuid.uuid4().hex


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_id(value: str) -> bool:
    return bool(ID_RE.fullmatch(value))


class DataDir:
    """The layout of DATA: models/<id>/, meshes/<id>.ply, results/<job-id>/, cache/, logs/, jobs.sqlite."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        for sub in ("models", "meshes", "results", "cache", "logs", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # The fixed files and folders; the per-id paths below are checked on every call.
        self.db_path = self.root / "jobs.sqlite"
        self.token_path = self.root / "token"
        self.server_info_path = self.root / "server.json"
        self.cache_dir = self.root / "cache"
        self.tmp_dir = self.root / "tmp"

    def model_dir(self, model_id: str) -> Path:
        return self._under("models", _require_id(model_id))

    def mesh_path(self, mesh_id: str) -> Path:
        return self._under("meshes", _require_id(mesh_id) + ".ply")

    def results_dir(self, job_id: str) -> Path:
        return self._under("results", _require_id(job_id))

    def result_file(self, job_id: str, filename: str) -> Path:
        return self._under("results", _require_id(job_id), check_name(filename, "file name"))

    def _under(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts).resolve()
        if not path.is_relative_to(self.root):
            raise InputError(f"path {'/'.join(parts)!r} leaves the data directory")
        return path


def _require_id(value: str) -> str:
    if not isinstance(value, str) or not is_id(value):
        raise InputError(f"invalid id {value!r}: ids are 32 lowercase hex digits")
    return value


def temp_path_like(path: Path) -> Path:
    """A not-yet-existing sibling of ``path`` with the same suffix (writers that pick a format by suffix)."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")


def hide_root(message: str, root: Path) -> str:
    """A message for the user with paths under the data directory shown as ``DATA/...``."""
    return message.replace(str(root), "DATA")
