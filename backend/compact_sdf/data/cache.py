"""On-disk prepared sets: float32 arrays keyed by mesh content hash + sampling settings.

Preparation takes tens of seconds per shape, so results are kept. A file is written to a
temporary name and renamed, so a crash never leaves a half file under the real name; each file
also carries the sha256 and length of its arrays, so a truncated or corrupted one is detected
on load and rebuilt instead of being trained on. The same format is what ``compact-sdf prepare
--out`` writes, and ``load_samples`` reads it back.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import trimesh

from compact_sdf.atomic import atomic_write
from compact_sdf.config import SamplingConfig
from compact_sdf.data.load import mesh_hash
from compact_sdf.data.normalize import Normalization
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.data.sampling import prepare_samples
from compact_sdf.errors import InputError
from compact_sdf.progress import Progress

FORMAT = 1
ARRAYS = ("ovf_points", "ovf_sdf", "gen_points", "gen_sdf")
SUFFIX = ".samples.npz"
# Settings that change the samples; near_threshold, ovf_off_lattice (sampler) and max_faces
# (validation) do not.
_IGNORED = ("near_threshold", "max_faces", "ovf_off_lattice")


def default_cache_dir() -> Path:
    """``$COMPACT_SDF_CACHE`` or ``~/.cache/compact_sdf``."""
    env = os.environ.get("COMPACT_SDF_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "compact_sdf"


def cache_key(hash_hex: str, cfg: SamplingConfig) -> str:
    settings = {k: v for k, v in asdict(cfg).items() if k not in _IGNORED}
    text = json.dumps({"format": FORMAT, "mesh": hash_hex, "sampling": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load_or_prepare(
    mesh: trimesh.Trimesh,
    name: str,
    cfg: SamplingConfig,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> ShapeSamples:
    """Return cached samples when a valid file exists; otherwise prepare, store and return them."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(mesh_hash(mesh), cfg)
    path = folder / f"{key}{SUFFIX}"
    if path.exists():
        try:
            samples = load_samples(path, expect_key=key)
        except InputError:
            if progress is not None:
                progress("cache file damaged: rebuilding", 0.0)
            path.unlink(missing_ok=True)
        else:
            samples.name = name
            if progress is not None:
                progress("loaded from cache", 1.0)
            return samples
    samples = prepare_samples(mesh, cfg, name, progress)
    save_samples(samples, path, key=key)
    return samples


def save_samples(samples: ShapeSamples, path: str | Path, key: str = "") -> Path:
    """Write atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    arrays = {name: np.ascontiguousarray(getattr(samples, name), dtype=np.float32) for name in ARRAYS}
    meta = {
        "format": FORMAT,
        "key": key,
        "name": samples.name,
        "mesh_hash": samples.mesh_hash,
        "normalization": samples.normalization.to_dict(),
        "lengths": {name: int(a.shape[0]) for name, a in arrays.items()},
        "sha256": _digest(arrays),
    }
    meta_bytes = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.savez(handle, meta=meta_bytes, **arrays)

    atomic_write(path, write)
    return path


def load_samples(path: str | Path, expect_key: str | None = None) -> ShapeSamples:
    """Read and verify a samples file; ``InputError`` when it is missing, partial or corrupt."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            arrays = {name: data[name] for name in ARRAYS}
    except FileNotFoundError:
        raise InputError(f"samples file not found: {path}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path.name}: damaged samples file ({type(exc).__name__}); prepare it again"
        ) from exc
    if meta.get("format") != FORMAT:
        raise InputError(
            f"{path.name}: samples format {meta.get('format')} is not {FORMAT}; prepare it again"
        )
    if expect_key is not None and meta.get("key") != expect_key:
        raise InputError(f"{path.name}: samples were made with other settings; prepare it again")
    lengths = {name: int(a.shape[0]) for name, a in arrays.items()}
    bad_type = any(a.dtype != np.float32 for a in arrays.values())
    if bad_type or lengths != meta.get("lengths") or _digest(arrays) != meta.get("sha256"):
        raise InputError(f"{path.name}: samples file fails its length/checksum test; prepare it again")
    try:
        return ShapeSamples(
            name=meta["name"],
            mesh_hash=meta["mesh_hash"],
            normalization=Normalization.from_dict(meta["normalization"]),
            **arrays,
        )
    except (KeyError, ValueError) as exc:
        raise InputError(f"{path.name}: damaged samples file ({exc}); prepare it again") from exc


def _digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in ARRAYS:
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()
