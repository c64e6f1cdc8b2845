"""HTTP client of the Compact SDF backend, standard library only (Blender's Python has no extra packages).

Every call returns parsed JSON or raises ``ApiError`` carrying the server's error code and message,
or ``BackendUnreachable`` when nothing answers at the URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

API = "/api/v1"
FINISHED = ("succeeded", "failed", "cancelled")


class ApiError(Exception):
    """The server answered with an error: ``status`` (HTTP), ``code`` (a stable tag), ``message`` (prose)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} [{code}, HTTP {status}]")
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass
class LiveMesh:
    """A mesh answered in one request: flat float32 vertices (3 each), int32 triangle indices (3 each)."""

    vertices: array
    faces: array
    seconds: float  # the backend's time for it
    loaded: bool  # the model had to be read first (not yet resident)
    lost: str = ""  # what is wrong with the mesh in words (X-Mesh-Lost; empty: nothing)


class BackendUnreachable(Exception):
    """No server answered (not started, crashed, wrong URL or tunnel down)."""


class Client:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._max_upload: int | None = None

    # -- transport ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        raw: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """One HTTP call; JSON in, JSON out (``raw=True`` returns the body bytes)."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: _q(v) for k, v in query.items() if v is not None})
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        body, _ = self._exchange(
            urllib.request.Request(url, data=data, method=method, headers=headers), timeout
        )
        if raw:
            return body
        return json.loads(body) if body else None

    def _exchange(self, req: urllib.request.Request, timeout: float | None) -> tuple[bytes, Any]:
        """Send one request: the response body and headers, or the server's error as ``ApiError``."""
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                return resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            raise _api_error(exc.code, exc.read()) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendUnreachable(f"no backend answers at {self.base_url}: {reason}") from None

    # -- service --------------------------------------------------------------------------------
    def health(self, timeout: float | None = None) -> dict[str, Any]:
        return self.request("GET", "/health", timeout=timeout)

    # -- meshes ---------------------------------------------------------------------------------
    def upload_mesh(
        self,
        name: str,
        source: str | os.PathLike[str] | bytes,
        fmt: str | None = None,
        allow_open: bool = False,
    ) -> dict[str, Any]:
        """Upload a PLY/GLB/OBJ/STL file (path or bytes); the format defaults to the suffix (bytes: PLY)."""
        if isinstance(source, bytes):
            body, fmt = source, fmt or "ply"
        else:
            with open(source, "rb") as fh:
                body = fh.read()
            fmt = fmt or os.path.splitext(os.fspath(source))[1].lstrip(".").lower()
        self._check_size(len(body))
        query = {"name": name, "format": fmt, "allow_open": allow_open}
        return self.request(
            "POST", f"{API}/meshes", query=query, data=body, content_type="application/octet-stream"
        )

    def _check_size(self, size: int) -> None:
        """Refuse here what the server would refuse: it answers 413 without reading the body, which a
        sender still writing sees as a broken connection instead of the server's message."""
        if self._max_upload is None:
            self._max_upload = int(self.health().get("max_upload_bytes") or 0)
        if self._max_upload and size > self._max_upload:
            message = f"upload of {size} bytes exceeds the server limit of {self._max_upload} bytes"
            raise ApiError(413, "too_large", message)

    def upload_arrays(
        self, name: str, vertices: list[list[float]], faces: list[list[int]], allow_open: bool = False
    ) -> dict[str, Any]:
        """Upload a mesh as vertex and face lists (what Blender hands over without writing a file)."""
        body = json.dumps({"name": name, "vertices": vertices, "faces": faces, "allow_open": allow_open})
        self._check_size(len(body))
        return self.request(
            "POST", f"{API}/meshes/arrays", data=body.encode(), content_type="application/json"
        )

    def list_meshes(self) -> list[dict[str, Any]]:
        return self.request("GET", f"{API}/meshes")

    def get_mesh(self, mesh_id: str) -> dict[str, Any]:
        return self.request("GET", f"{API}/meshes/{_seg(mesh_id)}")

    def delete_mesh(self, mesh_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"{API}/meshes/{_seg(mesh_id)}")

    # -- models ---------------------------------------------------------------------------------
    def list_models(self) -> list[dict[str, Any]]:
        return self.request("GET", f"{API}/models")

    def get_model(self, model_id: str) -> dict[str, Any]:
        return self.request("GET", f"{API}/models/{_seg(model_id)}")

    def delete_model(self, model_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"{API}/models/{_seg(model_id)}")

    def export_codes(
        self, model_id: str, fmt: str = "npz", dest: str | os.PathLike[str] | None = None
    ) -> bytes:
        """The model's latent codes as .npz or .json bytes; also written to ``dest`` when given."""
        body = self.request("GET", f"{API}/models/{_seg(model_id)}/codes", query={"format": fmt}, raw=True)
        if dest is not None:
            atomic_write(dest, body)
        return body

    def import_codes(
        self, model_id: str, body: bytes, fmt: str = "npz", filename: str | None = None
    ) -> dict[str, Any]:
        """Add shapes from an exported codes file (.npz or .json) to a model; returns the updated model.
        ``filename`` is the file's name for the server's messages."""
        return self.request(
            "POST",
            f"{API}/models/{_seg(model_id)}/codes",
            query={"format": fmt, "filename": filename},
            data=body,
            content_type="application/octet-stream",
        )

    # -- jobs -----------------------------------------------------------------------------------
    def create_job(self, body: dict[str, Any] | str, **params: Any) -> dict[str, Any]:
        """Queue a job: ``create_job({"kind": "train", "mesh_ids": ids})`` or ``create_job("train", ...)``."""
        full = {"kind": body, **params} if isinstance(body, str) else {**body, **params}
        return self.request("POST", f"{API}/jobs", json_body=full)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return self.request("GET", f"{API}/jobs", query={"status": status, "limit": limit})

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"{API}/jobs/{_seg(job_id)}")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self.request("POST", f"{API}/jobs/{_seg(job_id)}/cancel")

    def wait_job(
        self,
        job_id: str,
        timeout: float = 600.0,
        poll: float = 0.5,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job finishes (blocking: the add-on polls ``get_job`` from a timer instead)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job["status"] in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
            time.sleep(poll)

    def mesh(
        self,
        model_id: str,
        shapes: list[str],
        weights: list[float] | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> LiveMesh:
        """One mesh now (no job): a shape's reconstruction, or the blend of ``shapes`` by ``weights``.

        ``options``: resolution, mode, join_gap (the server's defaults otherwise). The body is read
        with ``array.frombytes``: float32 vertices then int32 faces, little-endian.
        """
        body = {"shapes": list(shapes), "weights": weights, "format": "raw", **options}
        headers = {"Content-Type": "application/json", "Accept": "application/octet-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{self.base_url}{API}/models/{_seg(model_id)}/mesh"
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
        data, head = self._exchange(req, timeout)
        n_verts = int(head.get("X-Mesh-Vertices", "0"))
        verts, faces = array("f"), array("i")
        verts.frombytes(data[: 12 * n_verts])
        faces.frombytes(data[12 * n_verts :])
        if sys.byteorder == "big":
            verts.byteswap()
            faces.byteswap()
        seconds = float(head.get("X-Mesh-Seconds", "0"))
        loaded = head.get("X-Model-Loaded") == "1"
        return LiveMesh(verts, faces, seconds, loaded, head.get("X-Mesh-Lost", ""))

    def resident(self) -> dict[str, Any]:
        return self.request("GET", f"{API}/resident")

    def list_results(self, job_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"{API}/jobs/{_seg(job_id)}/results")

    def download_result(
        self, job_id: str, filename: str, dest: str | os.PathLike[str] | None = None
    ) -> bytes:
        body = self.request("GET", f"{API}/jobs/{_seg(job_id)}/results/{_seg(filename)}", raw=True)
        if dest is not None:
            atomic_write(dest, body)
        return body


def _seg(value: str) -> str:
    """Quote a path segment fully, so a name can never change the route it is sent to."""
    return urllib.parse.quote(str(value), safe="")


def _q(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def atomic_write(dest: str | os.PathLike[str], body: bytes) -> None:
    """Write ``body`` to ``dest`` so that a reader sees the old file or the whole new one, never a part
    (a temporary file beside it, renamed over it; removed again when writing fails)."""
    dest = os.fspath(dest)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = f"{dest}.{os.getpid()}.part"
    try:
        with open(tmp, "wb") as fh:
            fh.write(body)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _api_error(status: int, body: bytes) -> ApiError:
    try:
        err = json.loads(body)["error"]
        return ApiError(status, str(err["code"]), str(err["message"]), err.get("details"))
    except (ValueError, KeyError, TypeError):
        text = body.decode("utf-8", "replace").strip()[:200]
        return ApiError(status, "http_error", text or f"HTTP {status}")
