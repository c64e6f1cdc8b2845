"""The one training loop: single process on CPU or GPU, or one rank of a torchrun/DDP job.

Each step draws ``shapes_per_batch`` shapes, ``samples_per_shape`` samples per branch for each
(balanced: half near the surface, a quarter outside, a quarter inside), and minimises
``L_gen + L_ovf + w(step) * (reg_code * L_z + reg_feature * L_c)`` with the three-group Adam of
``optim.py``. Everything random comes from explicit ``torch.Generator``s whose states go into the
checkpoint, so a resumed CPU run continues exactly where it stopped.

Beside the model, each checkpoint records where s_o was trained, shape by shape
(``trained_region.py``, read by the fusion), and the held-out check of every shape
(``heldout.py``): ``best.pt`` keeps the state with the lowest mean check.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from compact_sdf import trained_region
from compact_sdf.checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    ShapeInfo,
    model_from_payload,
    read_checkpoint,
    save_checkpoint,
)
from compact_sdf.config import Config
from compact_sdf.data.samples import ShapeSamples
from compact_sdf.errors import CheckpointError, InputError
from compact_sdf.extract import band_check
from compact_sdf.model import DualSDF
from compact_sdf.progress import Progress
from compact_sdf.training import distributed as ddp
from compact_sdf.training import heldout, objective
from compact_sdf.training.code_inversion import fit_row
from compact_sdf.training.divergence import DivergenceWatch
from compact_sdf.training.eta import StepClock
from compact_sdf.training.losslog import LossLog
from compact_sdf.training.objective import DeviceShape, draw_batch
from compact_sdf.training.optim import Optimizers

log = logging.getLogger("compact_sdf.training.train")
_LOSS_NAMES = ("loss_gen", "loss_ovf", "loss_z", "loss_c")
MAX_ROLLBACKS = 4  # learning rates down to 1/16 before a run gives up


@dataclass(frozen=True)
class TrainProgress:
    step: int  # completed steps
    total_steps: int
    loss_gen: float
    loss_ovf: float
    samples_per_s: float  # sample points per second (each point goes through one branch)
    eta_s: float  # NaN until a step after the run's first was timed (eta.py)


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
    shapes: int  # shapes in the model
    rollbacks: int = 0  # times this run went back to its last checkpoint with half the learning rate
    # shapes whose surface s_g holds less of inside the fusion band than band_check.COVERAGE_GOAL
    # (name -> share), and what to do about it ("" when none)
    band_misses: dict[str, float] = field(default_factory=dict)
    band_advice: str = ""
    # shapes whose held-out check ended over heldout.WORSE times its lowest in this run:
    # name -> (lowest, last); best.pt holds the state of step ``best_step``
    check_worse: dict[str, tuple[float, float]] = field(default_factory=dict)
    best_step: int | None = None


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


def train(
    model_dir: str | Path,
    shapes: list[ShapeSamples],
    cfg: Config,
    *,
    resume: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    sources: dict[str, str] | None = None,
    warm_progress: Progress | None = None,
    warm_codes: Mapping[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train (or continue training) a model in ``model_dir`` up to ``cfg.train.steps`` total steps.

    ``sources`` maps shape names to the mesh files they came from (kept in the checkpoint).
    ``warm_progress`` hears the code fits of the shapes a resumed run adds (before its first step);
    ``warm_codes`` are codes of added shapes already fitted that way (an auto fit's), not fitted again.
    """
    model_dir = Path(model_dir)
    _check_shapes(shapes)
    objective.criterion(cfg.train.loss)  # refuse an unknown loss before any work
    world = ddp.setup(cfg.train.device)
    try:
        if resume:
            warm = _Warm(warm_progress, dict(warm_codes or {}))
            state = _restore(model_dir, shapes, cfg, world, sources or {}, warm, should_stop)
        else:
            state = _fresh(model_dir, shapes, cfg, world, sources or {})
        return _Trainer(state, cfg, world, progress, should_stop).run()
    finally:
        ddp.teardown(world)


@dataclass(frozen=True)
class _Warm:
    """The warm start of the codes a resumed run adds: who hears the fits, and codes fitted before."""

    progress: Progress | None = None
    codes: dict[str, torch.Tensor] = field(default_factory=dict)


def _warm_stage(progress: Progress | None, name: str, k: int, count: int) -> Progress | None:
    """The code fit of the ``k``-th of ``count`` added shapes as one stretch of a single bar."""
    if progress is None:
        return None
    return lambda text, f: progress(f"warm start {name} ({k + 1}/{count}), {text}", (k + f) / count)


@dataclass
class _State:
    """Everything a checkpoint holds, plus the run's bookkeeping."""

    model_dir: Path
    model: DualSDF
    opts: Optimizers
    shapes: list[DeviceShape]  # checkpoint order, then the new ones
    infos: list[ShapeInfo]
    batch_gen: torch.Generator
    sample_gen: torch.Generator
    start: int  # step the run starts from
    elapsed0: float  # training time before this run
    resumed: bool
    new: int = 0  # shapes added by this run (the last ``new`` of ``shapes``)
    # every time training went back to a checkpoint: {"at": step, "to": step, "lr_scale": s}
    rollbacks: list[dict[str, float]] = field(default_factory=list)
    watch: DivergenceWatch = field(default_factory=DivergenceWatch)
    # band_check's last measurement: at this run's final save, until then the checkpoint's
    coverage: dict[str, band_check.Coverage] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_LOSS_NAMES, math.nan))
    speed: float = 0.0  # sample points per second, smoothed
    clock: StepClock = field(default_factory=StepClock)  # the time left (eta.py)
    t_begin: float = field(default_factory=time.perf_counter)
    held: list[heldout.Held] = field(default_factory=list)  # per shape, in ``shapes`` order
    regions: dict[str, trained_region.TrainedRegion] = field(default_factory=dict)
    checks: heldout.Checks = field(default_factory=heldout.Checks)

    def elapsed(self) -> float:
        return self.elapsed0 + time.perf_counter() - self.t_begin

    def payload(self, cfg: Config, done: int) -> dict[str, Any]:
        tc = cfg.train
        return {
            "config": cfg.to_dict(),
            "shapes": [i.to_dict() for i in self.infos],
            "step": done,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.opts.state_dict(),
            "schedule": {"kind": "step", "decay_every": tc.decay_every, "decay_factor": tc.decay_factor},
            "rng": {"batch": self.batch_gen.get_state(), "sample": self.sample_gen.get_state().cpu()},
            "elapsed": self.elapsed(),
            "last_losses": self.last,
            "rollbacks": self.rollbacks,
            "lowest_losses": self.watch.lowest,
            "band_coverage": {n: asdict(c) for n, c in self.coverage.items()},
            "trained_region": trained_region.to_payload(self.regions),
            "check": self.checks.to_dict(),
        }


def _generators(cfg: Config, world: ddp.World) -> tuple[torch.Generator, torch.Generator]:
    """(batch generator: which shapes, shared by all ranks; sample generator: which points, per rank)."""
    seed = cfg.train.seed
    return torch.Generator().manual_seed(seed), torch.Generator(device=world.device).manual_seed(
        seed + 1 + world.rank
    )


def _fresh(
    model_dir: Path, shapes: list[ShapeSamples], cfg: Config, world: ddp.World, sources: dict[str, str]
) -> _State:
    """A new model (seeded, independent of the global RNG) in an empty ``model_dir``."""
    if (model_dir / CHECKPOINT_NAME).exists():
        raise InputError(f"{model_dir} already holds a model; resume it or choose another output directory")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        model = DualSDF(cfg.model, len(shapes), sparse_grid=cfg.train.sparse_grid)
    infos = [ShapeInfo.of(s, sources.get(s.name)) for s in shapes]
    model.to(world.device)
    opts = Optimizers(model, cfg.train)
    batch_gen, sample_gen = _generators(cfg, world)
    dev, held, regions = _device_shapes(shapes, cfg, world)
    state = _State(model_dir, model, opts, dev, infos, batch_gen, sample_gen, 0, 0.0, resumed=False)
    state.held, state.regions = held, regions
    return state


def _restore(
    model_dir: Path,
    shapes: list[ShapeSamples],
    cfg: Config,
    world: ddp.World,
    sources: dict[str, str],
    warm: _Warm | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> _State:
    """The checkpoint's model, optimiser and random streams, with codes appended for new shapes."""
    tc = cfg.train
    data = read_checkpoint(model_dir)
    saved = Config.from_dict(data["config"])
    if saved.model != cfg.model:
        raise CheckpointError("the model settings differ from the checkpoint's; resume with the same ones")
    if saved.train.sparse_grid != tc.sparse_grid:
        raise CheckpointError("train.sparse_grid differs from the checkpoint's; resume with the same setting")
    infos = [ShapeInfo.from_dict(s) for s in data["shapes"]]
    shapes, new = _order_shapes(shapes, infos)
    model, _ = model_from_payload(data, "cpu")
    first = len(infos)
    model.add_shapes(new, torch.Generator().manual_seed(tc.seed + first))
    infos += [ShapeInfo.of(s, sources.get(s.name)) for s in shapes[first:]]
    model.to(world.device)
    added, warm = len(shapes) - first, warm or _Warm()
    for k, index in enumerate(range(first, len(shapes))):
        if shapes[index].name in warm.codes:
            with torch.no_grad():
                model.codes.weight[index] = warm.codes[shapes[index].name].to(model.codes.weight)
            continue
        # Warm start: from a random code a new shape's first losses are 20x the trained ones', and
        # their gradients shake the shared grid and MLPs (the old shapes' CD rose 1.5x over 600
        # steps, docs/benchmarks/collection.md); a code fitted to the frozen decoder starts close.
        # It may be cancelled (the checkpoint is not touched yet) unless ranks would disagree.
        fit_row(
            model,
            index,
            shapes[index],
            cfg,
            progress=_warm_stage(warm.progress, shapes[index].name, k, added),
            should_stop=None if world.distributed else should_stop,
        )
    opts = Optimizers(model, tc)
    try:
        opts.load_state_dict(data["optimizer"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"optimiser state does not fit the model: {str(exc).splitlines()[0]}") from None
    start = int(data["step"])
    batch_gen, sample_gen = _generators(cfg, world)
    _set_generators(batch_gen, sample_gen, data, cfg, world, fresh_samples=bool(new))
    dev, held, regions = _device_shapes(shapes, cfg, world)
    elapsed0 = float(data.get("elapsed", 0.0))
    state = _State(
        model_dir, model, opts, dev, infos, batch_gen, sample_gen, start, elapsed0, resumed=True, new=new
    )
    state.held, state.regions = held, regions
    # added shapes change what the mean is over: their run starts a new best
    state.checks = heldout.Checks() if new else heldout.Checks.carried(data.get("check"))
    state.rollbacks = list(data.get("rollbacks", []))
    # the last measurement until this run measures again (a resume with no new steps reports it)
    state.coverage = band_check.recorded(data.get("band_coverage", {}))
    if not new:  # added shapes raise the loss for a while: their run starts a new history
        state.watch.lowest.update(data.get("lowest_losses", {}))
    return state


def _set_generators(
    batch_gen: torch.Generator,
    sample_gen: torch.Generator,
    data: dict[str, Any],
    cfg: Config,
    world: ddp.World,
    *,
    fresh_samples: bool,
) -> None:
    """Continue the checkpoint's random streams; other ranks (and runs with added shapes, whose
    sample draws differ) reseed theirs from the step instead."""
    batch_gen.set_state(data["rng"]["batch"])
    if world.rank == 0 and not fresh_samples:
        sample_gen.set_state(data["rng"]["sample"].to("cpu"))
    elif world.rank > 0:
        sample_gen.manual_seed(cfg.train.seed + 1 + world.rank + 7919 * int(data["step"]))


def _device_shapes(
    shapes: list[ShapeSamples], cfg: Config, world: ddp.World
) -> tuple[list[DeviceShape], list[heldout.Held], dict[str, trained_region.TrainedRegion]]:
    """Each shape's training samples on the device (its held-out points removed), its held-out
    points, and the record of where its s_o samples lie."""
    if len(shapes) < world.size:
        raise InputError(f"{world.size} ranks need at least as many shapes; got {len(shapes)}")
    sampling = cfg.sampling
    cells = trained_region.region_cells(sampling.fine_cells)
    dev, held, regions = [], [], {}
    for s in shapes:
        kept, h = heldout.split(s, sampling.band_width, cfg.train.seed, world.device)
        dev.append(DeviceShape(kept, world.device, sampling))
        held.append(h)
        regions[s.name] = trained_region.record(dev[-1].ovf_x, dev[-1].ovf_y, sampling.band_width, cells)
    return dev, held, regions


class _Trainer:
    """Runs steps ``state.start .. cfg.train.steps`` on one rank: step, log, checkpoint, report."""

    def __init__(
        self,
        state: _State,
        cfg: Config,
        world: ddp.World,
        progress: Callable[[TrainProgress], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.s, self.cfg, self.world = state, cfg, world
        self.progress, self.should_stop = progress, should_stop
        self.net = ddp.wrap(state.model, world)
        self.per_step = max(min(cfg.train.shapes_per_batch, len(state.shapes)), world.size)
        self.points_per_step = self.per_step * cfg.train.samples_per_shape * 2  # all ranks, both branches
        self.acc: dict[str, float] = {}
        self.acc_n = 0
        self.log: LossLog | None = None
        self.saved_step = state.start if state.resumed else None  # the step of the checkpoint on disk
        state.watch.restart(state.start)
        if world.is_main:
            state.model_dir.mkdir(parents=True, exist_ok=True)
            resume_step = state.start if state.resumed else None
            self.log = LossLog(state.model_dir / "log.csv", resume_step=resume_step)

    def run(self) -> TrainResult:
        s, total = self.s, self.cfg.train.steps
        done, cancelled, first = s.start, False, len(s.rollbacks)
        if s.resumed and self.world.is_main:
            self._check(s.start)  # the start state is measured: a resume must not make it worse
        s.clock.start(time.perf_counter())
        with _precision(self.world.device, self.cfg.train.precision) as autocast:
            while done < total:
                if self.should_stop is not None and ddp.any_rank(self.should_stop(), self.world):
                    cancelled = True
                    break
                t0 = time.perf_counter()
                values = self._step(done, autocast)
                done += 1
                finite = not ddp.any_rank(not all(math.isfinite(v) for v in values.values()), self.world)
                if finite:
                    self._record(done, values, time.perf_counter() - t0)
                if not finite or s.watch.diverged or (done == total and not s.watch.healthy):
                    done = self._go_back(done, "the loss is not finite" if not finite else "a loss spike")
                elif (
                    self.world.is_main
                    and done % max(1, self.cfg.train.checkpoint_every) == 0
                    and done < total
                    and s.watch.healthy  # never save the middle of a spike: it may not recover
                ):
                    self._checkpoint(done)
        saved = (s.model_dir / CHECKPOINT_NAME).exists()
        if self.world.is_main and (not saved or (s.watch.healthy and (done > s.start or cancelled))):
            names = [i.name for i in s.infos]
            sets = [(d.gen_x, d.gen_y) for d in s.shapes]
            s.coverage = dict(zip(names, band_check.band_coverage(s.model, sets, self.cfg), strict=True))
            self._checkpoint(done)
        elif cancelled and not s.watch.healthy and self.saved_step is not None:
            done = self.saved_step  # the open spike was not saved: the model on disk is this step's
        band_misses, band_advice = band_check.verdict(s.coverage)
        return TrainResult(
            model_dir=s.model_dir,
            step=done,
            total_steps=total,
            cancelled=cancelled,
            loss_gen=s.last["loss_gen"],
            loss_ovf=s.last["loss_ovf"],
            samples_per_s=s.speed,
            elapsed_s=s.elapsed(),
            shapes=len(s.infos),
            rollbacks=len(s.rollbacks) - first,
            band_misses=band_misses,
            band_advice=band_advice,
            check_worse=heldout.got_worse(s.checks.lowest, s.checks.last),
            best_step=s.checks.best_step,
        )

    def _go_back(self, at: int, why: str) -> int:
        """Load the last checkpoint again with half the learning rates; returns its step.

        It was saved while every branch's loss was within divergence.SPIKE of its lowest, so the
        run goes on from a model that was still learning (a dead s_o does not come back by itself).
        """
        s, world = self.s, self.world
        data = read_checkpoint(s.model_dir) if (s.model_dir / CHECKPOINT_NAME).exists() else None
        if len(s.rollbacks) >= MAX_ROLLBACKS or data is None or len(data["shapes"]) != len(s.infos):
            kept = "nothing was saved yet" if data is None else f"{s.model_dir} keeps step {data['step']}"
            raise FloatingPointError(
                f"training diverged at step {at} ({why}) after {len(s.rollbacks)} restart(s) with lower "
                f"learning rates; {kept}. Try lower train.lr_mlp and train.lr_grid, or train.precision=fp32"
            )
        scale = s.opts.scale * 0.5
        s.model.load_state_dict({k: v.to(world.device) for k, v in data["model"].items()})
        s.opts = Optimizers(s.model, self.cfg.train)
        s.opts.load_state_dict(data["optimizer"])
        s.opts.scale = scale
        _set_generators(s.batch_gen, s.sample_gen, data, self.cfg, world, fresh_samples=False)
        back = self.saved_step = int(data["step"])
        s.rollbacks.append({"at": at, "to": back, "lr_scale": s.opts.scale})
        s.watch.restart(back)
        self.acc, self.acc_n = {}, 0
        if self.log is not None:
            self.log = LossLog(s.model_dir / "log.csv", resume_step=back)
        if world.is_main:
            log.warning("%s at step %d; back to step %d, learning rates x%g", why, at, back, s.opts.scale)
        return back

    def _choose(self) -> torch.Tensor:
        """The step's shapes: shapes added by this run fill up to half of every batch (they start
        from random codes next to trained ones, and a uniform draw of 5 new among 55 would see
        each only once in 4 steps), the rest is a uniform draw of the others (replay, so the old
        shapes are not forgotten). Without new shapes: a uniform draw, as in a fresh run."""
        s, count = self.s, len(self.s.shapes)
        always = torch.arange(count - s.new, count)[: self.per_step // 2]
        rest = torch.ones(count, dtype=torch.bool)
        rest[always] = False
        others = torch.arange(count)[rest]
        drawn = others[torch.randperm(len(others), generator=s.batch_gen)[: self.per_step - len(always)]]
        return torch.cat([always, drawn])

    def _step(self, step: int, autocast: contextlib.AbstractContextManager[Any]) -> dict[str, float]:
        """One optimiser step on this rank's share of the step's shapes; returns the loss values."""
        s, tc, world = self.s, self.cfg.train, self.world
        s.opts.set_step(step)
        chosen = self._choose()
        mine = chosen[world.rank :: world.size].tolist()
        batch = draw_batch({i: s.shapes[i] for i in mine}, tc.samples_per_shape, s.sample_gen, world.device)
        terms = objective.losses(s.model, batch, self.cfg, net=self.net, autocast=autocast)
        s.opts.zero_grad()
        (objective.total(terms, tc, step) * (len(mine) * world.size / self.per_step)).backward()
        if world.distributed and s.model.sparse_grid:
            ddp.allreduce_sparse_grad_(s.model.grid.weight, world)
        s.opts.step()
        s.model.project_codes()
        return {k: v.item() for k, v in terms.items()}

    def _record(self, done: int, values: dict[str, float], dt: float) -> None:
        """Smoothed speed, the loss log every ``log_every`` steps, and the progress callback."""
        s, total = self.s, self.cfg.train.steps
        rate = self.points_per_step / max(dt, 1e-9)  # all ranks together: they step in lockstep
        s.speed = rate if s.speed == 0.0 else 0.9 * s.speed + 0.1 * rate
        s.clock.tick(time.perf_counter())
        for k, v in values.items():
            self.acc[k] = self.acc.get(k, 0.0) + v
        self.acc_n += 1
        if done % max(1, self.cfg.train.log_every) == 0 or done == total:
            means = ddp.mean_over_ranks([a / self.acc_n for a in self.acc.values()], self.world)
            s.last = dict(zip(self.acc, means, strict=True))
            self.acc, self.acc_n = {}, 0
            s.watch.update(done, s.last)
            if self.log is not None:
                self.log.append(
                    step=done, lr=s.opts.lr("grid"), samples_per_s=s.speed, elapsed=s.elapsed(), **s.last
                )
        if self.progress is not None and self.world.is_main:
            eta = s.clock.eta(total - done)
            self.progress(TrainProgress(done, total, values["loss_gen"], values["loss_ovf"], s.speed, eta))

    def _check(self, done: int) -> dict[str, Any] | None:
        """Measure the held-out checks; a new lowest mean writes ``best.pt``. Returns the payload
        when it was built (the caller saves the same state)."""
        s = self.s
        values = heldout.measure(s.model, s.held)
        if not s.checks.update([i.name for i in s.infos], values, done):
            return None
        payload = s.payload(self.cfg, done)
        save_checkpoint(s.model_dir, payload, name=BEST_NAME)
        return payload

    def _checkpoint(self, done: int) -> None:
        payload = self._check(done) or self.s.payload(self.cfg, done)
        save_checkpoint(self.s.model_dir, payload)
        self.saved_step = done
