"""Mesh intake: a request body becomes a validated mesh in ``DATA/meshes/<id>.ply`` or a clear refusal.

Loading and validation are the data pipeline's (``data.load``, ``data.validate``); this module adds the
service's limits and stores the accepted mesh with its report.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from typing import Any

import numpy as np

from compact_sdf.atomic import atomic_write_bytes
from compact_sdf.config import SamplingConfig
from compact_sdf.errors import InputError
from compact_sdf.names import check_name
from compact_sdf.service.paths import DataDir, new_id
from compact_sdf.service.store import Store


class MeshIntake:
    class TooManyFaces(Exception):
        """More faces than the server accepts (HTTP 413)."""

    class Invalid(Exception):
        """The validation report refused the mesh (HTTP 422); ``report`` is its ``to_dict()``."""

        def __init__(self, message: str, report: Any) -> None:
            super().__init__(message)
            self.report = report

    def __init__(self, data: DataDir, store: Store, max_faces: int) -> None:
        self.data = data
        self.store = store
        self.max_faces = max_faces

    def from_bytes(self, body: bytes, fmt: str, name: str, allow_open: bool) -> dict[str, Any]:
        """Load an uploaded file (the format decides the loader) from a private temp file, then accept it."""
        from compact_sdf.data.load import load_mesh

        check_name(name, "mesh name")
        folder = self.data.tmp_dir / f"upload-{new_id()}"
        try:
            folder.mkdir(mode=0o700)
            tmp = folder / f"{name}.{fmt}"  # the loader's messages name the file the user sent
            atomic_write_bytes(tmp, body, mode=0o600)
            mesh = load_mesh(tmp)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return self._accept(mesh, name, allow_open)

    def from_arrays(
        self, vertices: list[list[float]], faces: list[list[int]], name: str, allow_open: bool
    ) -> dict[str, Any]:
        from compact_sdf.data.load import mesh_from_arrays

        check_name(name, "mesh name")
        self._check_faces(len(faces))
        try:
            v, f = np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)
        except (OverflowError, ValueError) as exc:
            raise InputError(f"vertices must be numbers and faces indices below 2^63 ({exc})") from None
        mesh = mesh_from_arrays(v, f)
        return self._accept(mesh, name, allow_open)

    def _check_faces(self, count: int) -> None:
        if count > self.max_faces:
            raise self.TooManyFaces(f"mesh has {count} faces; the server accepts at most {self.max_faces}")

    def _accept(self, mesh: Any, name: str, allow_open: bool) -> dict[str, Any]:
        from compact_sdf.data.load import mesh_hash
        from compact_sdf.data.validate import require_valid, validate_mesh

        self._check_faces(len(mesh.faces))
        cfg = replace(SamplingConfig(), allow_open=allow_open, max_faces=self.max_faces)
        report = validate_mesh(mesh, cfg, name)
        if not report.ok:
            try:
                require_valid(report)
            except InputError as exc:  # its one-line text: the fatal problems and what to do
                raise self.Invalid(str(exc), report.to_dict()) from None
        mesh_id = new_id()
        atomic_write_bytes(self.data.mesh_path(mesh_id), mesh.export(file_type="ply"))
        self.store.add_mesh(
            mesh_id, name, len(mesh.vertices), len(mesh.faces), mesh_hash(mesh), allow_open, report.to_dict()
        )
        row = self.store.get_mesh(mesh_id)
        assert row is not None
        return row
