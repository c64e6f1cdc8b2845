"""Trained models kept loaded between requests, for a process that serves many of them.

A reconstruct or a slider tick of a model that was loaded a moment ago should pay neither the
checkpoint read nor the model build again. The cache holds ``LoadedModel``s keyed by model
directory and device, least recently used first out, and drops an entry:

- when the checkpoint file changed (a training or fit that resumed it wrote a new one: its inode,
  size or modification time differ), so a request never sees a stale model;
- when keeping it would put the cached parameters over ``budget_bytes``, or leave the machine
  with less than ``reserve_bytes`` of available memory (``/proc/meminfo``).

Only long-lived processes install one (``install``); the CLI loads each model once and needs none.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compact_sdf.procfs import proc_bytes

if TYPE_CHECKING:
    import torch

    from compact_sdf.checkpoint import LoadedModel

CHECKPOINT = "checkpoint.pt"


def model_bytes(loaded: LoadedModel) -> int:
    """Bytes of the model's parameters and buffers (what evicting it gives back)."""
    tensors = [*loaded.model.parameters(), *loaded.model.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


def _stamp(model_dir: Path) -> tuple[int, int, int]:
    """What changes when a checkpoint is rewritten (atomic rename: a new inode)."""
    st = os.stat(model_dir / CHECKPOINT)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class _Entry:
    loaded: LoadedModel
    stamp: tuple[int, int, int]
    size: int


class ModelCache:
    """LRU of loaded models under a byte budget; thread-safe."""

    def __init__(self, budget_bytes: int, reserve_bytes: int = 0) -> None:
        self.budget_bytes = int(budget_bytes)
        self.reserve_bytes = int(reserve_bytes)
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # checkpoint reads, for benchmarks and tests
        self.evictions: list[tuple[str, str]] = []  # (model dir, why), most recent last

    def get(self, model_dir: str | Path, device: str | torch.device) -> LoadedModel:
        """The loaded model, reading the checkpoint only when it is not cached or changed."""
        from compact_sdf.checkpoint import load_model

        path = Path(model_dir).resolve()
        key = (str(path), str(device))
        with self._lock:
            stamp = _stamp(path) if (path / CHECKPOINT).is_file() else None
            entry = self._entries.get(key)
            if entry is not None and entry.stamp == stamp:
                self._entries.move_to_end(key)
                return entry.loaded
            if entry is not None:
                self._drop(key, "checkpoint changed")
            loaded = load_model(path, device=device)
            self.loads += 1
            size = model_bytes(loaded)
            self._make_room(size)
            if stamp is not None and size <= self.budget_bytes:
                self._entries[key] = _Entry(loaded, stamp, size)
            return loaded

    def evict(self, model_dir: str | Path, why: str = "asked") -> int:
        """Drop every cached copy of one model (all devices); how many were dropped."""
        path = str(Path(model_dir).resolve())
        with self._lock:
            keys = [k for k in self._entries if k[0] == path]
            for key in keys:
                self._drop(key, why)
            return len(keys)

    def status(self) -> dict[str, object]:
        with self._lock:
            return {
                "models": [
                    {"model_dir": k[0], "device": k[1], "bytes": e.size} for k, e in self._entries.items()
                ],
                "bytes": sum(e.size for e in self._entries.values()),
                "budget_bytes": self.budget_bytes,
                "loads": self.loads,
                "evictions": [{"model_dir": d, "why": w} for d, w in self.evictions[-20:]],
            }

    def _make_room(self, incoming: int) -> None:
        """Evict the least recently used until ``incoming`` more bytes fit both limits."""
        while self._entries:
            held = sum(e.size for e in self._entries.values())
            if held + incoming > self.budget_bytes:
                why = "memory budget"
            elif self.reserve_bytes and _available() < self.reserve_bytes + incoming:
                why = "machine memory low"
            else:
                return
            self._drop(next(iter(self._entries)), why)

    def _drop(self, key: tuple[str, str], why: str) -> None:
        self._entries.pop(key, None)
        self.evictions.append((key[0], why))


def _available() -> int:
    return proc_bytes("/proc/meminfo", "MemAvailable") or (1 << 62)


_ACTIVE: ModelCache | None = None


def install(cache: ModelCache | None) -> None:
    """Make ``tasks`` load models through ``cache`` in this process (None: load every time)."""
    global _ACTIVE
    _ACTIVE = cache


def active() -> ModelCache | None:
    return _ACTIVE
