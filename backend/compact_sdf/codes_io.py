"""Latent codes as files: export a model's codes, import them back (method.md sections 1 and 5).

A code means something only to the decoder it was trained with, so every export names that
decoder: ``model_hash`` is the sha256 of every weight except the codes. Formats:

- ``.npz``: ``codes`` (shapes x code size, float32) and ``names``; metadata in a ``.json`` beside it;
- ``.json``: the same metadata with the codes inline (one self-contained text file).

Metadata: names, code size, model id (the model directory's name), model hash, training step,
and per shape its mesh hash and normalisation (so imported shapes mesh in their own coordinates).
Importing overwrites the codes of shapes the model knows and appends the others.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compact_sdf.checkpoint import LoadedModel, ShapeInfo, read_checkpoint, save_checkpoint
from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import InputError
from compact_sdf.names import check_name
from compact_sdf.training.optim import grow_code_moments

FORMAT = "compact-sdf-codes"
VERSION = 1
CODES_KEY = "codes.weight"
EXPORT = "a codes file exported by Compact SDF"


def decoder_hash(state: dict[str, torch.Tensor]) -> str:
    """sha256 over every weight but the codes (name, dtype, shape and bytes, in name order)."""
    h = hashlib.sha256()
    for name in sorted(state):
        if name == CODES_KEY:
            continue
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _metadata(loaded: LoadedModel) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "names": loaded.names,
        "code_size": int(loaded.model.cfg.code_dim),
        "model_id": Path(loaded.model_dir).resolve().name,
        "model_hash": decoder_hash(loaded.model.state_dict()),
        "step": loaded.step,
        "shapes": {
            s.name: {"mesh_hash": s.mesh_hash, "normalization": s.normalization.to_dict()}
            for s in loaded.shapes
        },
    }


def export_codes(loaded: LoadedModel, path: str | Path) -> Path:
    """Write the codes to ``path`` (.npz plus a .json beside it, or a single .json)."""
    path = Path(path)
    codes = loaded.model.codes.weight.detach().cpu().float().numpy()
    meta = _metadata(loaded)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        with path.open("wb") as f:  # the metadata also inside, so the .npz alone is a full export
            np.savez(f, codes=codes, names=np.array(loaded.names), meta=_json_bytes(meta))
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    elif path.suffix == ".json":
        path.write_text(json.dumps({**meta, "codes": codes.tolist()}, indent=2) + "\n")
    else:
        raise InputError(f"cannot write codes to '{path.name}': use .npz or .json")
    return path


def _json_bytes(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)


MAX_ARRAY_BYTES = 64 * 1024**2  # one array of a .npz unpacked: far above any real export
NPZ_ARRAYS = {"codes": "fiu", "names": "US", "meta": "u"}  # the arrays read, with their dtype kinds


def _npz_array(zf: zipfile.ZipFile, key: str, kinds: str, where: str) -> np.ndarray | None:
    """One array of a .npz, its declared sizes checked before anything is unpacked: a small file
    that claims gigabytes (a zip bomb, or an .npy header that declares a huge array) is refused."""
    try:
        info = zf.getinfo(f"{key}.npy")
    except KeyError:
        return None
    if info.file_size > MAX_ARRAY_BYTES:
        raise InputError(
            f"{where}: '{key}' unpacks to {info.file_size} bytes; at most {MAX_ARRAY_BYTES} are read"
        )
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(f)
    declared = math.prod(shape) * dtype.itemsize
    if dtype.hasobject or dtype.kind not in kinds or declared > info.file_size:
        raise InputError(f"{where}: '{key}' declares {dtype} {shape}, which its file cannot hold")
    with zf.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _read_npz(path: Path, label: str) -> tuple[np.ndarray, list[str], Any]:
    with zipfile.ZipFile(path) as zf:
        arrays = {key: _npz_array(zf, key, kinds, f"'{label}'") for key, kinds in NPZ_ARRAYS.items()}
    codes, names, inside = arrays["codes"], arrays["names"], arrays["meta"]
    if codes is None or names is None:
        raise InputError(f"'{label}' is not {EXPORT}: it needs the arrays 'codes' and 'names'")
    meta = None if inside is None else json.loads(inside.tobytes())
    side = path.with_suffix(".json")
    if meta is None:
        meta = json.loads(side.read_text()) if side.is_file() else {}
    return codes, [str(n) for n in names.reshape(-1)], meta


def _read_json(path: Path, label: str) -> tuple[np.ndarray, list[str], Any]:
    meta = json.loads(path.read_text())
    if not isinstance(meta, dict) or not isinstance(meta.get("names"), list):
        raise InputError(f"'{label}' is not {EXPORT}: it is an object with a 'names' list and 'codes'")
    names = meta["names"]
    if not all(isinstance(n, str) for n in names):
        raise InputError(f"'{label}': 'names' must be a list of shape names")
    return np.asarray(meta.pop("codes"), dtype=np.float32), list(names), meta


def _unreadable(exc: BaseException) -> str:
    """Why a file is not a codes export, in words (not the Python exception it raised)."""
    if isinstance(exc, KeyError):
        return f"it has no {exc.args[0]!r} entry" if exc.args else "an entry is missing"
    if isinstance(exc, json.JSONDecodeError):
        return f"it is not valid JSON (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, zipfile.BadZipFile | EOFError):
        return "it is not a complete .npz archive"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not a text file"
    if isinstance(exc, OSError):
        return f"it could not be read ({exc.strerror or 'input/output error'})"
    return "its contents are not laid out as an export (codes, names and metadata)"


def read_codes(path: str | Path, label: str | None = None) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """(names, codes (S, d) float32, metadata) from an export; metadata is {} for a bare .npz.

    Everything is checked here (arrays, names, the metadata of every shape), before a caller changes
    anything. Messages name the file ``label`` (the name the user chose, where ``path`` is a
    temporary copy)."""
    path = Path(path)
    label = label or path.name
    if not path.is_file():
        raise InputError(f"no codes file at {path}")
    if path.suffix not in (".npz", ".json"):
        raise InputError(f"cannot read codes from '{label}': use .npz or .json")
    try:
        codes, names, meta = _read_npz(path, label) if path.suffix == ".npz" else _read_json(path, label)
    except (KeyError, ValueError, TypeError, AttributeError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"'{label}' is not {EXPORT}: {_unreadable(exc)}") from None
    if not isinstance(meta, dict):
        raise InputError(f"'{label}' is not {EXPORT}: its metadata is not an object")
    if codes.ndim != 2 or len(codes) != len(names) or not len(codes):
        raise InputError(f"'{label}' holds no codes, or not one name per code")
    if not np.isfinite(codes).all() or not np.isfinite(codes.astype(np.float32)).all():
        raise InputError(f"'{label}' holds codes that are not numbers (NaN or infinite)")
    for name in names:
        check_name(name, "shape name")
    if len(set(names)) != len(names):
        raise InputError(f"'{label}': a shape name appears twice")
    shape_metadata(meta, f"'{label}'")
    return names, codes.astype(np.float32), meta


def shape_metadata(meta: dict[str, Any], where: str) -> dict[str, tuple[str, Normalization]]:
    """Each shape's (mesh hash, normalisation) from an export's metadata, every entry checked."""
    shapes = meta.get("shapes", {})
    if not isinstance(shapes, dict):
        raise InputError(f"{where}: 'shapes' must map shape names to their metadata")
    if not isinstance(meta.get("model_hash", ""), str):
        raise InputError(f"{where}: 'model_hash' must be a string")
    out = {}
    for name, extra in shapes.items():
        check_name(name, "shape name")
        if not isinstance(extra, dict) or not isinstance(extra.get("mesh_hash"), str):
            raise InputError(f"{where}: shape '{name}' needs a 'mesh_hash' string and a 'normalization'")
        try:
            out[name] = (extra["mesh_hash"], Normalization.from_dict(extra.get("normalization")))
        except ValueError as exc:
            raise InputError(f"{where}: shape '{name}': {exc}") from None
    return out


def _check_range(names: list[str], codes: np.ndarray, limit: float, where: str) -> None:
    """Codes past the norm the model's codes are held to in training (``model.code_max_norm``) put
    the decoder where it never learned anything; they would overwrite a trained shape with garbage."""
    norms = np.linalg.norm(codes.astype(np.float64), axis=1)
    worst = int(np.argmax(norms))
    if norms[worst] > limit * (1 + 1e-4):
        raise InputError(
            f"{where}: the code of '{names[worst]}' has norm {norms[worst]:.4g}; this model's codes have "
            f"norm at most {limit:g} (model.code_max_norm)"
        )


def update_codes(
    model_dir: str | Path,
    entries: list[tuple[ShapeInfo, torch.Tensor]],
    coverage: dict[str, dict[str, float]] | None = None,
) -> list[str]:
    """Set codes in a model directory's checkpoint (atomic rewrite); unknown names are appended.

    Appended codes get zero Adam moments so training can resume with them. A changed code drops
    the band coverage recorded for it (band_check.py) unless ``coverage`` gives the new one.
    """
    data = read_checkpoint(Path(model_dir))
    state = data["model"]
    weight = state[CODES_KEY].clone()
    shapes = list(data["shapes"])
    index = {s["name"]: i for i, s in enumerate(shapes)}
    appended = []
    for info, code in entries:
        if code.shape != (weight.shape[1],):
            raise InputError(
                f"code of '{info.name}' has size {tuple(code.shape)}; the model uses {weight.shape[1]}"
            )
        if info.name in index:
            weight[index[info.name]] = code.to(weight)
        else:
            index[info.name] = len(shapes)
            shapes.append(info.to_dict())
            weight = torch.cat([weight, code.to(weight)[None]])
            appended.append(info.name)
    state[CODES_KEY] = weight
    data["shapes"] = shapes
    changed = {info.name for info, _ in entries}
    kept = {k: v for k, v in data.get("band_coverage", {}).items() if k not in changed}
    data["band_coverage"] = kept | (coverage or {})
    if appended and data.get("optimizer") is not None:
        grow_code_moments(data["optimizer"], len(weight))
    save_checkpoint(Path(model_dir), data)
    return [info.name for info, _ in entries]


def import_codes(
    model_dir: str | Path, path: str | Path, *, force: bool = False, label: str | None = None
) -> list[str]:
    """Load an export into a model directory; returns the imported names.

    Refuses codes of another size, and (unless ``force``) codes made for another decoder. Shapes new
    to the model need the export's metadata (normalisation and mesh hash). Messages name the file
    ``label`` (default: its own name).
    """
    from compact_sdf.checkpoint import model_from_payload

    label = label or Path(path).name
    names, codes, meta = read_codes(path, label)
    data = read_checkpoint(Path(model_dir))
    model, cfg = model_from_payload(data, "cpu")
    if codes.shape[1] != cfg.model.code_dim:
        raise InputError(
            f"'{label}' holds codes of size {codes.shape[1]}; the model uses {cfg.model.code_dim}"
        )
    want = meta.get("model_hash")
    known = {s["name"]: ShapeInfo.from_dict(s) for s in data["shapes"]}
    if not force and want is None and any(name in known for name in names):
        raise InputError(
            f"'{label}' does not say which model it was exported from, and it would overwrite "
            "this model's trained codes",
            hint="the CLI's codes import --force overwrites them anyway",
        )
    if not force and want is not None and want != decoder_hash(model.state_dict()):
        raise InputError(
            f"'{label}' was exported from another model: codes only mean something to the model "
            "they were trained with",
            hint="the CLI's codes import --force imports them anyway",
        )
    _check_range(names, codes, cfg.model.code_max_norm, f"'{label}'")
    extras = shape_metadata(meta, f"'{label}'")
    entries = []
    for name, code in zip(names, codes, strict=True):
        info = known.get(name)
        if name in extras:
            mesh_hash, norm = extras[name]
            info = ShapeInfo(name, mesh_hash, norm) if info is None else replace(info, normalization=norm)
        if info is None:
            raise InputError(f"shape '{name}' is new to this model and '{label}' has no metadata for it")
        entries.append((info, torch.from_numpy(code)))
    return update_codes(model_dir, entries)
