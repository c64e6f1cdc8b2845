"""How much memory a job will need, estimated from its settings before it starts.

The service refuses a job whose estimate exceeds the machine's available memory, with a message
that says what would fit, instead of letting it grow until the kernel kills it (with jobs in their
own processes that would end only the job, but late and with less to say). The estimates are
generous upper bounds of the big arrays (the grid and its optimiser state, the training samples,
the extraction lattices, the metric samples); the interpreter and small objects are a fixed
allowance. The budget is the tightest limit the job will run under (``host_budgets``: the machine's
available memory, ``--job-memory-mb``, the address-space limit, the cgroup's), and on CUDA the GPU's
free memory for the parts that live there; ``--job-memory-mb`` is also enforced inside each job's
process.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from pathlib import Path

from compact_sdf.config import Config
from compact_sdf.errors import InputError
from compact_sdf.extract.on_device import chosen as meshing_on_device
from compact_sdf.model import pe_dim
from compact_sdf.procfs import proc_bytes

GIB = 1024**3
BASE_BYTES = 512 * 1024**2  # interpreter, torch, libraries, small arrays
F32 = 4
# Training points of one shape: the coarse lattice plus a band of the fine lattice around a surface
# of at most this area (normalised units; a unit sphere has 12.6, the shared meshes 3-9).
MAX_SURFACE_AREA = 16.0
PREP_BYTES_PER_POINT = 100  # measured peak of preparation per band point (docs/benchmarks/prepare.md)
LATTICE_BYTES_PER_VERTEX = 20  # extraction arrays per lattice vertex (measured: 20.9 GB at N = 1024)
JOIN_BYTES_PER_VERTEX = 32  # connect.join_parts on top (tracemalloc peak: 27 B per vertex at N = 96)
METRIC_BYTES_PER_SAMPLE = 160  # float64 points, normals, KD-tree and distances, both sides


@dataclass(frozen=True)
class Estimate:
    """Host bytes (``total``, ``parts``) and, on CUDA, the parts that live in GPU memory."""

    total: int
    parts: dict[str, int]
    gpu_total: int = 0
    gpu_parts: dict[str, int] = field(default_factory=dict)

    def describe(self, parts: dict[str, int] | None = None) -> str:
        big = sorted((self.parts if parts is None else parts).items(), key=lambda kv: -kv[1])[:3]
        return ", ".join(f"{name} {gib(size)}" for name, size in big)


@dataclass(frozen=True)
class Budget:
    """A memory limit a job runs under, and its name in words (the refusal says which one it was)."""

    bytes: int
    what: str


def gib(size: float) -> str:
    return f"{size / GIB:.1f} GiB"


def _mlp_params(in_dim: int, hidden: int, layers: int) -> int:
    return in_dim * hidden + (layers - 1) * hidden * hidden + in_dim * hidden + hidden + layers * hidden


def shape_points(cfg: Config) -> int:
    """Upper bound of one shape's training points (both branches)."""
    s = cfg.sampling
    voxel = 2.0 / s.fine_cells
    band = MAX_SURFACE_AREA * 2.0 * s.band_width / voxel**3
    return int((s.coarse_cells + 1) ** 3 + band + s.surface_samples + s.uniform_samples)


# Parts that live in GPU memory when the job runs on CUDA (the host check leaves them out there).
DEVICE_PARTS = frozenset(
    {
        "grid and optimiser state",
        "MLPs and optimiser state",
        "activations of one step",
        "model",
        "network batch",
        "extraction lattice on the device",
    }
)


def _estimate(parts: dict[str, int], device: str) -> Estimate:
    host = {k: v for k, v in parts.items() if device == "cpu" or k not in DEVICE_PARTS}
    gpu = {k: v for k, v in parts.items() if k not in host}
    return Estimate(BASE_BYTES + sum(host.values()), host, sum(gpu.values()), gpu)


def train_estimate(cfg: Config, shapes: int, device: str = "cpu") -> Estimate:
    m, t = cfg.model, cfg.train
    grid = m.grid_res**3 * m.grid_channels * F32
    grid_state = grid * (3 if t.sparse_grid else 4)  # values + Adam moments (+ a dense gradient)
    mlps = _mlp_params(m.code_dim + 3 + pe_dim(m.pe_freqs), m.hidden, m.layers)
    mlps += _mlp_params(m.code_dim + m.grid_channels + 3, m.hidden, m.layers)
    batch = t.samples_per_shape * max(1, min(shapes, t.shapes_per_batch))
    activations = 2 * batch * (m.hidden * (m.layers + 1) * 3 + m.grid_channels * 9) * F32
    points = shape_points(cfg)
    parts = {
        "grid and optimiser state": grid_state,
        "MLPs and optimiser state": mlps * F32 * 4,
        "training samples": shapes * points * 16,
        "one shape's preparation": points * PREP_BYTES_PER_POINT,
        "activations of one step": activations,
    }
    return _estimate(parts, device)


def extract_estimate(cfg: Config, resolution: int, device: str = "cpu", *, join: bool = False) -> Estimate:
    """One extraction; ``join``: in-betweens whose parts are joined (``connect``) need more."""
    m = cfg.model
    vertices = (resolution + 1) ** 3
    model = m.grid_res**3 * m.grid_channels * F32
    batch = cfg.extract.batch_points * (m.hidden * 2 + m.grid_channels + m.code_dim) * F32
    parts = {"model": model, "network batch": batch}
    lattice = vertices * LATTICE_BYTES_PER_VERTEX  # about the same on either path (measured at N = 384)
    on_device = meshing_on_device(cfg.extract, device)
    if on_device:
        parts["extraction lattice on the device"] = lattice
    if join or not on_device:  # a join walks the lattice in numpy (on_device.py)
        parts["extraction lattice"] = lattice
    if join:
        parts["joining parts"] = vertices * JOIN_BYTES_PER_VERTEX
    return _estimate(parts, device)


def evaluate_estimate(
    cfg: Config, resolution: int, samples: int = 0, device: str = "cpu", *, join: bool = False
) -> Estimate:
    """Extraction plus the metrics' samples (``samples`` 0: extraction alone)."""
    base = extract_estimate(cfg, resolution, device, join=join)
    return _estimate(
        {**base.parts, **base.gpu_parts, "metric samples": samples * METRIC_BYTES_PER_SAMPLE}, device
    )


def largest_resolution(
    cfg: Config, budget: int, samples: int = 0, device: str = "cpu", *, join: bool = False
) -> int:
    """The highest extraction resolution (a multiple of 8) whose estimate fits ``budget``."""
    fitting = [
        n for n in range(8, 2049, 8) if evaluate_estimate(cfg, n, samples, device, join=join).total <= budget
    ]
    return fitting[-1] if fitting else 0


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where there is no /proc)."""
    return proc_bytes("/proc/meminfo", "MemAvailable")


def host_budgets(job_memory_bytes: int | None) -> list[Budget]:
    """Every limit that would stop a job's process on the host: the machine's available memory,
    ``--job-memory-mb`` (extra data memory above the fresh process, which holds ``BASE_BYTES``), the
    address-space limit job processes inherit, and the container's cgroup limit."""
    out = []
    available = available_bytes()
    if available is not None:
        out.append(Budget(available, "the machine's available memory"))
    if job_memory_bytes is not None:
        mb = job_memory_bytes // 1024**2
        out.append(Budget(job_memory_bytes + BASE_BYTES, f"the per-job memory limit (--job-memory-mb {mb})"))
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        held = proc_bytes("/proc/self/status", "VmSize") or 0
        out.append(Budget(max(soft - held, 0) + BASE_BYTES, "the address-space limit (ulimit -v)"))
    cgroup = _cgroup_room()
    if cgroup is not None:
        out.append(Budget(cgroup, "the container's memory limit (cgroup memory.max)"))
    return out


def _cgroup_room() -> int | None:
    """memory.max less memory.current of this process's cgroup (v2), None without a limit."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        used = int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if not limit.isdigit() else max(int(limit) - used, 0)


def gpu_budget() -> Budget | None:
    """The GPU's free memory (CUDA), what the device-side parts of a job must fit in."""
    import torch

    if not torch.cuda.is_available():
        return None
    free, _ = torch.cuda.mem_get_info()
    return Budget(int(free), "the GPU's free memory")


def tightest(budgets: list[Budget]) -> Budget | None:
    return min(budgets, key=lambda b: b.bytes) if budgets else None


def check_fits(
    estimate: Estimate, budget: Budget | None, what: str, smaller: str, gpu: Budget | None = None
) -> None:
    """Refuse a job whose estimate exceeds a limit, naming the limit, the biggest parts and what to lower."""
    for need, parts, limit in (
        (estimate.total, estimate.parts, budget),
        (estimate.gpu_total, estimate.gpu_parts, gpu),
    ):
        if limit is not None and need > limit.bytes:
            raise InputError(
                f"{what} would need about {gib(need)} of memory ({estimate.describe(parts)}); "
                f"{limit.what} allows about {gib(limit.bytes)}",
                code="too_large",
                hint=smaller,
            )
