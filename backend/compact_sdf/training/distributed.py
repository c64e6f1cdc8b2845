"""torchrun / DistributedDataParallel plumbing for the one training loop.

When ``WORLD_SIZE > 1`` (torchrun sets it) the loop joins a process group (gloo on CPU, NCCL on
CUDA), wraps the network in DDP and shards each step's shapes across ranks; rank 0 alone writes
files. NCCL cannot all-reduce sparse tensors, so with a sparse grid DDP ignores the grid and
``allreduce_sparse_grad_`` averages its sparse gradient itself (padded all-gather of the touched
rows), the same code on both backends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from compact_sdf.device import resolve_device


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # this process created the group and must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def setup(device_name: str) -> World:
    """Join the torchrun process group when there is one; otherwise a world of one."""
    device = resolve_device(device_name)
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(device=device)
    owns = False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    return World(rank=dist.get_rank(), size=dist.get_world_size(), device=device, owns_group=owns)


def teardown(world: World) -> None:
    """Leave the group together: a rank that destroys it (and exits) while another is still in its
    last collective makes gloo abort the slower one ("terminate called without an active
    exception", seen about once in six two-rank runs on a busy CPU)."""
    if world.owns_group and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, world: World) -> nn.Module:
    """DDP over the dense parameters; a sparse grid is left to ``allreduce_sparse_grad_``."""
    if not world.distributed:
        return model
    if getattr(model, "sparse_grid", False):
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ["grid.weight"])
    ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def allreduce_sparse_grad_(param: torch.Tensor, world: World) -> None:
    """Replace ``param.grad`` (sparse COO) by its average over ranks, identical on every rank."""
    grad = param.grad
    if grad is None:
        grad = torch.sparse_coo_tensor(
            torch.zeros(1, 0, dtype=torch.long, device=param.device),
            param.new_zeros(0, *param.shape[1:]),
            param.shape,
            check_invariants=False,
        )
    grad = grad.coalesce()
    idx, val = grad.indices()[0], grad.values()
    count = torch.tensor([idx.numel()], device=idx.device)
    counts = [torch.zeros_like(count) for _ in range(world.size)]
    dist.all_gather(counts, count)
    most = int(max(int(c) for c in counts))
    pad = most - idx.numel()
    idx_p = torch.cat([idx, idx.new_zeros(pad)])
    val_p = torch.cat([val, val.new_zeros(pad, *val.shape[1:])])
    all_idx = [torch.empty_like(idx_p) for _ in range(world.size)]
    all_val = [torch.empty_like(val_p) for _ in range(world.size)]
    dist.all_gather(all_idx, idx_p)
    dist.all_gather(all_val, val_p)
    keep = [int(c) for c in counts]
    idx_all = torch.cat([t[:k] for t, k in zip(all_idx, keep, strict=True)])
    val_all = torch.cat([t[:k] for t, k in zip(all_val, keep, strict=True)]) / world.size
    # indices come from coalesced gradients of this very parameter: valid by construction
    param.grad = torch.sparse_coo_tensor(
        idx_all.unsqueeze(0), val_all, param.shape, check_invariants=False
    ).coalesce()


def mean_over_ranks(values: list[float], world: World) -> list[float]:
    """Average a few scalars over ranks (for logging)."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return (t / world.size).tolist()


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank when ``flag`` is true on any (a cancel seen by rank 0 stops all)."""
    if not world.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=world.device)
    dist.all_reduce(t)
    return bool(t.item() > 0)
