"""The one training loop: single process on CPU or GPU, or one rank of a torchrun/DDP job.

Each step draws ``shapes_per_batch`` shapes, ``samples_per_shape`` samples per branch for each
(balanced: half near the surface, a quarter outside, a quarter inside), and minimises
``L_gen + L_ovf + w(step) * (reg_code * L_z + reg_feature * L_c)`` with the three-group Adam of
``optim.py``. Everything random comes from explicit ``torch.Generator``s whose states go into the
checkpoint, so a resumed CPU run continues exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compact_sdf import distributed as ddp
from compact_sdf.checkpoint import (
    CHECKPOINT_NAME,
    ShapeInfo,
    model_from_payload,
    read_checkpoint,
    save_checkpoint,
)
from compact_sdf.config import Config, TrainConfig
from compact_sdf.data.sampler import BalancedSampler
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.errors import CheckpointError, InputError
from compact_sdf.losslog import LossLog
from compact_sdf.model import DualSDF
from compact_sdf.optim import Optimizers


@dataclass(frozen=True)
class TrainProgress:
    step: int  # completed steps
    total_steps: int
    loss_gen: float
    loss_ovf: float
    samples_per_s: float  # sample points per second (each point goes through one branch)
    eta_s: float


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    step: int
    total_steps: int
    cancelled: bool
    loss_gen: float
    loss_ovf: float
    samples_per_s: float
    elapsed_s: float


class _DeviceShape:
    """One shape's two sample sets as tensors on the training device."""

    def __init__(self, s: ShapeSamples, device: torch.device, near: float) -> None:
        if len(s.ovf_sdf) == 0 or len(s.gen_sdf) == 0:
            raise InputError(f"shape '{s.name}' has no training samples")
        self.ovf_x = torch.as_tensor(s.ovf_points, dtype=torch.float32).to(device)
        self.ovf_y = torch.as_tensor(s.ovf_sdf, dtype=torch.float32).to(device)
        self.gen_x = torch.as_tensor(s.gen_points, dtype=torch.float32).to(device)
        self.gen_y = torch.as_tensor(s.gen_sdf, dtype=torch.float32).to(device)
        self.ovf_pool = BalancedSampler(self.ovf_y, near)
        self.gen_pool = BalancedSampler(self.gen_y, near)

    def draw(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        io = self.ovf_pool.sample(n, gen)
        ig = self.gen_pool.sample(n, gen)
        return self.gen_x[ig], self.gen_y[ig], self.ovf_x[io], self.ovf_y[io]


def _criterion(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if kind == "mse":
        return lambda p, y: (p - y).square().mean()
    if kind == "l1":
        return lambda p, y: (p - y).abs().mean()
    raise ValueError(f"train.loss must be 'mse' or 'l1', got '{kind}'")


@contextlib.contextmanager
def _precision(device: torch.device, precision: str) -> Iterator[contextlib.AbstractContextManager[Any]]:
    """Yield the autocast context for each step; TF32 is switched on for the run and restored after."""
    if precision not in ("fp32", "tf32", "bf16"):
        raise ValueError(f"train.precision must be fp32, tf32 or bf16, got '{precision}'")
    cuda = device.type == "cuda"
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if cuda and precision in ("tf32", "bf16"):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        if cuda and precision == "bf16":
            yield torch.autocast("cuda", dtype=torch.bfloat16)
        else:
            yield contextlib.nullcontext()  # CPU runs are fp32: bf16 matmuls are slower there
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _order_shapes(shapes: list[ShapeSamples], known: list[ShapeInfo]) -> tuple[list[ShapeSamples], int]:
    """Checkpoint shapes first (same order, same meshes), then the new ones; returns (ordered, new count)."""
    by_name = {s.name: s for s in shapes}
    missing = [k.name for k in known if k.name not in by_name]
    if missing:
        raise InputError(f"resume needs every shape of the checkpoint; missing: {', '.join(missing)}")
    for k in known:
        if by_name[k.name].mesh_hash != k.mesh_hash:
            raise InputError(f"shape '{k.name}' is a different mesh from the one in the checkpoint")
    old = {k.name for k in known}
    new = [s for s in shapes if s.name not in old]
    return [by_name[k.name] for k in known] + new, len(new)


def _check_shapes(shapes: list[ShapeSamples]) -> None:
    if not shapes:
        raise InputError("training needs at least one shape")
    names = [s.name for s in shapes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"shape names must be unique; repeated: {', '.join(dupes)}")


def _warmup(cfg: TrainConfig, step: int) -> float:
    return 1.0 if cfg.reg_warmup <= 0 else min(1.0, (step + 1) / cfg.reg_warmup)


def train(
    model_dir: str | Path,
    shapes: list[ShapeSamples],
    cfg: Config,
    *,
    resume: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    sources: dict[str, str] | None = None,
) -> TrainResult:
    """Train (or continue training) a model in ``model_dir`` up to ``cfg.train.steps`` total steps.

    ``sources`` maps shape names to the mesh files they came from (kept in the checkpoint).
    """
    model_dir = Path(model_dir)
    _check_shapes(shapes)
    tc = cfg.train
    criterion = _criterion(tc.loss)
    world = ddp.setup(tc.device)
    try:
        return _run(model_dir, shapes, cfg, world, criterion, resume, progress, should_stop, sources or {})
    finally:
        ddp.teardown(world)


def _run(
    model_dir: Path,
    shapes: list[ShapeSamples],
    cfg: Config,
    world: ddp.World,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    resume: bool,
    progress: Callable[[TrainProgress], None] | None,
    should_stop: Callable[[], bool] | None,
    sources: dict[str, str],
) -> TrainResult:
    tc, device = cfg.train, world.device
    ckpt_path = model_dir / CHECKPOINT_NAME
    batch_gen = torch.Generator().manual_seed(tc.seed)
    sample_gen = torch.Generator(device=device).manual_seed(tc.seed + 1 + world.rank)
    data: dict[str, Any] | None = None
    infos: list[ShapeInfo] = []
    if resume:
        data = read_checkpoint(model_dir)
        saved = Config.from_dict(data["config"])
        if saved.model != cfg.model:
            raise CheckpointError(
                "the model settings differ from the checkpoint's; resume with the same ones"
            )
        if saved.train.sparse_grid != tc.sparse_grid:
            raise CheckpointError(
                "train.sparse_grid differs from the checkpoint's; resume with the same setting"
            )
        infos = [ShapeInfo.from_dict(s) for s in data["shapes"]]
        shapes, new = _order_shapes(shapes, infos)
        model, _ = model_from_payload(data, "cpu")
        model.add_shapes(new, torch.Generator().manual_seed(tc.seed + len(infos)))
        start = int(data["step"])
        elapsed0 = float(data.get("elapsed", 0.0))
    else:
        if ckpt_path.exists():
            raise InputError(
                f"{model_dir} already holds a model; resume it or choose another output directory"
            )
        new = 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(tc.seed)
            model = DualSDF(cfg.model, len(shapes), sparse_grid=tc.sparse_grid)
        start, elapsed0 = 0, 0.0
    known = {i.name for i in infos}
    infos += [
        ShapeInfo(s.name, s.mesh_hash, s.normalization, sources.get(s.name))
        for s in shapes
        if s.name not in known
    ]
    model.to(device)
    opts = Optimizers(model, tc)
    if data is not None:
        try:
            opts.load_state_dict(data["optimizer"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"optimiser state does not fit the model: {str(exc).splitlines()[0]}"
            ) from None
        rng = data["rng"]
        batch_gen.set_state(rng["batch"])
        if world.rank == 0 and not new:
            sample_gen.set_state(rng["sample"].to("cpu"))
        elif world.rank > 0:
            sample_gen.manual_seed(tc.seed + 1 + world.rank + 7919 * start)
    if len(shapes) < world.size:
        raise InputError(f"{world.size} ranks need at least as many shapes; got {len(shapes)}")
    near = cfg.sampling.near_threshold
    dev_shapes = [_DeviceShape(s, device, near) for s in shapes]
    net = ddp.wrap(model, world)
    if world.is_main:
        model_dir.mkdir(parents=True, exist_ok=True)
    log = LossLog(model_dir / "log.csv", resume_step=start if resume else None) if world.is_main else None

    total, n_shapes = tc.steps, len(shapes)
    per_step = max(min(tc.shapes_per_batch, n_shapes), world.size)
    s_per = tc.samples_per_shape
    last = {"loss_gen": math.nan, "loss_ovf": math.nan, "loss_z": math.nan, "loss_c": math.nan}
    acc = {k: 0.0 for k in last}
    acc_n = 0
    speed = 0.0
    t_begin = time.perf_counter()
    step = start
    cancelled = False

    def payload(done: int) -> dict[str, Any]:
        return {
            "config": cfg.to_dict(),
            "shapes": [i.to_dict() for i in infos],
            "step": done,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": opts.state_dict(),
            "schedule": {"kind": "step", "decay_every": tc.decay_every, "decay_factor": tc.decay_factor},
            "rng": {"batch": batch_gen.get_state(), "sample": sample_gen.get_state().cpu()},
            "elapsed": elapsed0 + time.perf_counter() - t_begin,
            "last_losses": last,
        }

    with _precision(device, tc.precision) as autocast:
        for step in range(start, total):
            if should_stop is not None and ddp.any_rank(should_stop(), world):
                cancelled = True
                break
            t0 = time.perf_counter()
            opts.set_step(step)
            chosen = torch.randperm(n_shapes, generator=batch_gen)[:per_step]
            mine = chosen[world.rank :: world.size].tolist()
            draws = [dev_shapes[i].draw(s_per, sample_gen) for i in mine]
            xg, yg, xo, yo = (torch.stack(parts) for parts in zip(*draws, strict=True))
            idx = torch.tensor(mine, device=device)
            with autocast:
                s_gen, s_ovf, feats = net(idx, xg, xo)
            loss_gen = criterion(s_gen.float(), yg)
            loss_ovf = criterion(s_ovf.float(), yo)
            loss_z = model.codes.weight[idx].norm(dim=-1).mean()
            loss_c = feats.float().norm(dim=-1).mean()
            w = _warmup(tc, step)
            loss = loss_gen + loss_ovf + w * (tc.reg_code * loss_z + tc.reg_feature * loss_c)
            opts.zero_grad()
            (loss * (len(mine) * world.size / per_step)).backward()
            if world.distributed and model.sparse_grid:
                ddp.allreduce_sparse_grad_(model.grid.weight, world)
            opts.step()
            model.project_codes()
            values = [loss_gen.item(), loss_ovf.item(), loss_z.item(), loss_c.item()]
            if not all(math.isfinite(v) for v in values):
                raise FloatingPointError(f"training diverged at step {step + 1} (loss is not finite)")
            dt = time.perf_counter() - t0
            rate = per_step * s_per * 2 / max(dt, 1e-9)  # all ranks together: they step in lockstep
            speed = rate if speed == 0.0 else 0.9 * speed + 0.1 * rate
            for k, v in zip(acc, values, strict=True):
                acc[k] += v
            acc_n += 1
            done = step + 1
            if done % max(1, tc.log_every) == 0 or done == total:
                means = ddp.mean_over_ranks([acc[k] / acc_n for k in acc], world)
                last = dict(zip(acc, means, strict=True))
                acc, acc_n = {k: 0.0 for k in acc}, 0
                if log is not None:
                    log.append(
                        step=done,
                        lr=opts.lr("grid"),
                        samples_per_s=speed,
                        elapsed=elapsed0 + time.perf_counter() - t_begin,
                        **last,
                    )
            if world.is_main and done % max(1, tc.checkpoint_every) == 0 and done < total:
                save_checkpoint(model_dir, payload(done))
            if progress is not None and world.is_main:
                eta = (total - done) * per_step * s_per * 2 / max(speed, 1e-9)
                progress(TrainProgress(done, total, values[0], values[1], speed, eta))
        else:
            step = max(total, start)
    done = step
    if world.is_main and (done > start or cancelled or not ckpt_path.exists()):
        save_checkpoint(model_dir, payload(done))
    return TrainResult(
        model_dir=model_dir,
        step=done,
        total_steps=total,
        cancelled=cancelled,
        loss_gen=last["loss_gen"],
        loss_ovf=last["loss_ovf"],
        samples_per_s=speed,
        elapsed_s=elapsed0 + time.perf_counter() - t_begin,
    )
