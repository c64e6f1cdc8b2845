"""Prepare many meshes at once: one worker process per core, the sample cache, one progress bar.

Preparation of one shape is single-threaded numpy/libigl work, so a process pool scales it over
the cores. Workers read the mesh file themselves and write the cache file; the parent loads the
finished sets from the cache (so nothing large is pickled twice) in the callers' order. A shape
already cached costs one file read and no worker time.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from compact_sdf.config import SamplingConfig
from compact_sdf.data.samples import ShapeSamples


def default_jobs() -> int:
    """One worker per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _worker_init() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"  # one core per worker: the pool provides the parallelism
    import torch

    torch.set_num_threads(1)


def _prepare_file(path: str, name: str, cfg: SamplingConfig, cache_dir: str | None) -> str:
    from compact_sdf.data import prepare_mesh

    prepare_mesh(path, name, cfg, cache_dir)
    return name


def prepare_many(
    paths: list[str | Path],
    cfg: SamplingConfig,
    cache_dir: str | Path | None = None,
    *,
    names: list[str] | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> list[ShapeSamples]:
    """Validated, cached training sets of ``paths`` (names default to the file stems), in order."""
    from tqdm import tqdm

    from compact_sdf.data import prepare_mesh

    names = names or [Path(p).stem for p in paths]
    cache = str(cache_dir) if cache_dir is not None else None
    todo = [(str(p), n) for p, n in zip(paths, names, strict=True) if not _cached(p, cfg, cache)]
    jobs = min(jobs or default_jobs(), len(todo))
    bar = tqdm(total=len(paths), desc="prepare", unit="shape", file=sys.stderr, disable=not progress)
    bar.update(len(paths) - len(todo) if jobs > 1 else 0)
    if jobs > 1:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(_prepare_file, p, n, cfg, cache) for p, n in todo]
            for future in as_completed(futures):
                bar.set_postfix_str(future.result(), refresh=False)
                bar.update()
    out = []
    for path, name in zip(paths, names, strict=True):
        out.append(prepare_mesh(path, name, cfg, cache))  # from the cache when a worker made it
        if jobs <= 1:
            bar.update()
    bar.close()
    return out


def _cached(path: str | Path, cfg: SamplingConfig, cache: str | None) -> bool:
    """Whether the cache holds a file for this mesh and these settings (verified later, on load)."""
    from compact_sdf.data.cache import SUFFIX, cache_key, default_cache_dir
    from compact_sdf.data.load import load_mesh, mesh_hash

    folder = Path(cache) if cache is not None else default_cache_dir()
    return (folder / f"{cache_key(mesh_hash(load_mesh(path)), cfg)}{SUFFIX}").exists()
