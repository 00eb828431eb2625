"""The one training loop. Every trained thing (the JEPA, the decoder, the pixel baseline,
adaptation) hands it a loss and a data source; none has a loop of its own.

    with runtime(loop) as rt:                        # threads, device, DDP process group
        model = Model(cfg).to(rt.device)
        task = TrainTask(kind="reverie-decoder", module=model, loss=LossModule(model),
                         data=TensorBatches(z=z, obs=obs))
        result = fit(task, loop, out=Path("runs/x"), rt=rt)

It owns: AdamW (weight decay on matrices only), the learning-rate schedule (linear warmup, then
cosine to 10% or constant), bf16 autocast where the hardware runs it natively, gradient clipping,
a wall-clock budget (``minutes``: the schedule follows the budget and the run stops when it is
spent), the non-finite stop naming the step and term, metrics.jsonl + TensorBoard logs, a progress
bar, checkpoints in the one layout of ``reverie.checkpoint`` (atomic), and resume. A resumed run
with a step budget ends with the same weights as an uninterrupted one (the batch sampler's
generator and the RNG are part of the saved state); with a time budget the schedule continues from
the time already spent, so how many steps fit depends on the machine.

A data source is anything with ``__len__`` and ``get_batch(idx) -> dict[str, Tensor]``; the loss
is an ``nn.Module`` whose ``forward(batch, step)`` returns a dict of terms with a scalar
``"loss"`` (0-dim terms are logged and checked for NaN; others, like embeddings, are passed to
``log_extra``). Under ``torchrun`` each rank takes its slice of one global batch and DDP wraps the
loss module, so gradients (and SIGReg's all-reduce) see the global batch.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from reverie.checkpoint import (
    checkpoint_kind,
    has_checkpoint,
    load_train_state,
    save_checkpoint,
)
from reverie.hardware import bf16_native
from reverie.io import ReverieError, atomic_write_bytes

SCHEDULES = ("cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")


class Batches(Protocol):
    """A data source the trainer samples from: windows (or frames) indexed 0..len-1."""

    def __len__(self) -> int: ...

    def get_batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]: ...


class TensorBatches:
    """Tensors of equal length as a data source: ``get_batch(idx)`` indexes each of them."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors must have one length, got {sorted(lengths)}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def get_batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v[idx] for k, v in self.tensors.items()}


@dataclass(frozen=True)
class LoopConfig:
    """How the loop runs (each command fills it from its own config)."""

    steps: int
    """Optimizer steps in total (an upper bound when ``minutes`` is set)."""
    lr: float
    """Peak AdamW learning rate."""
    batch_size: int = 32
    """Samples per step per process."""
    weight_decay: float = 0.0
    """AdamW weight decay on weight matrices (never on biases or norms)."""
    warmup: int = 0
    """Linear warmup steps (at most a tenth of ``steps``)."""
    schedule: str = "cosine"
    """cosine (to 10% of the peak at the end of the steps or of the time budget) | constant."""
    grad_clip: float = 1.0
    """Gradient norm clip (0 disables)."""
    minutes: float | None = None
    """Wall-clock budget of the loop: the schedule follows it and the run stops when it is spent."""
    seed: int = 0
    """Seed of the batch sampler (weights are seeded by whoever builds them)."""
    ckpt_every: int | None = None
    """Checkpoint every this many steps (and always at the end); None: only at the end."""
    log_every: int = 50
    """Log losses and throughput every this many steps (and at the end)."""
    precision: str = "auto"
    """auto (bf16 autocast where the hardware runs it natively) | fp32 | bf16."""
    device: str = "auto"
    """auto (cuda if available) | cpu | cuda."""
    threads: int | None = None
    """torch CPU threads while training (None: torch's default)."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Write TensorBoard event files to OUT/tb."""
    desc: str = "train"
    """Label of the progress bar."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        for name in ("ckpt_every", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"--lr must be finite and > 0, got {self.lr}")
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"--{name.replace('_', '-')} must be finite and >= 0, got {value}")
        if self.warmup < 0:
            raise ValueError(f"--warmup must be >= 0, got {self.warmup}")
        check_minutes(self.minutes)
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("device", self.device, DEVICES)


#: LoopConfig fields a command's config usually carries under the same names.
COMMON_FIELDS = ("steps", "lr", "batch_size", "seed", "minutes", "precision", "device", "threads")
COMMON_FIELDS += ("progress", "tensorboard", "warmup", "weight_decay", "grad_clip")
COMMON_FIELDS += ("ckpt_every", "log_every")


def loop_from(cfg: Any, **knobs: Any) -> LoopConfig:
    """A LoopConfig from the fields of a command's config that share its names, plus ``knobs``
    (the task's own choices: schedule, weight decay, progress label, ...)."""
    common = {f: getattr(cfg, f) for f in COMMON_FIELDS if hasattr(cfg, f)}
    return LoopConfig(**{**common, **knobs})


def check_minutes(minutes: float | None) -> None:
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"--minutes must be finite and > 0, got {minutes}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"--{name} must be one of {', '.join(choices)}, got {value!r}")


def check_frozen_run(cfg: Any) -> None:
    """The options every command that trains on a frozen world model shares (the decoder, the
    policies): ``checkpoint`` required, paths made ``Path``s, precision, device, resume vs
    overwrite, threads, lr and (where the config has one) the minutes budget."""
    if cfg.checkpoint is None:
        raise ValueError("--checkpoint RUN is required")
    for name in ("checkpoint", "data", "out"):
        if getattr(cfg, name, None) is not None:
            object.__setattr__(cfg, name, Path(getattr(cfg, name)))
    check_choice("precision", cfg.precision, PRECISIONS)
    check_choice("device", cfg.device, DEVICES)
    check_minutes(getattr(cfg, "minutes", None))
    if cfg.resume and cfg.overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    if cfg.threads is not None and cfg.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {cfg.threads}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"--lr must be finite and > 0, got {cfg.lr}")


def learning_rate(step: int, loop: LoopConfig, elapsed: float = 0.0) -> float:
    """The rate at 1-based ``step`` after ``elapsed`` seconds of training.

    Linear warmup (capped at a tenth of the run so a short run still reaches the peak), then
    cosine decay to 10% of the peak at the last step, or at the end of the time budget when that
    comes first, or constant.
    """
    warmup = min(loop.warmup, loop.steps // 10)
    if warmup and step <= warmup:
        return loop.lr * step / warmup
    if loop.schedule == "constant":
        return loop.lr
    progress = (step - warmup) / max(1, loop.steps - warmup)
    if loop.minutes is not None:
        progress = max(progress, elapsed / (60.0 * loop.minutes))
    progress = min(1.0, progress)
    return loop.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


# ------------------------------------------------------------------------------------- runtime
@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its rank among ``world`` processes and its device."""

    rank: int
    world: int
    device: torch.device


@contextmanager
def runtime(loop: LoopConfig) -> Iterator[Runtime]:
    """Set threads and device (and the DDP process group under torchrun); restore them after."""
    threads = torch.get_num_threads()
    if loop.threads is not None:
        torch.set_num_threads(loop.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = loop.device == "cuda" or (loop.device == "auto" and torch.cuda.is_available())
    if loop.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    own_group = False
    try:
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo")
            own_group = True
        rank = dist.get_rank() if world > 1 else 0
        device = torch.device("cpu")
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        yield Runtime(rank, world, device)
    finally:
        torch.set_num_threads(threads)
        if own_group:
            dist.destroy_process_group()


# ------------------------------------------------------------------------------------ the task
@dataclass
class TrainTask:
    """One trained thing, as the loop sees it."""

    kind: str
    """Checkpoint kind in config.json (``reverie-world-model``, ``reverie-decoder``, ...)."""
    module: nn.Module
    """What the checkpoint saves (``module.config`` rebuilds it)."""
    loss: nn.Module
    """``forward(batch, step) -> {"loss": scalar, ...}``; DDP wraps it."""
    data: Batches
    """Training samples."""
    params: list[nn.Parameter] | None = None
    """Parameters the optimizer trains (None: every parameter of ``module`` that wants a grad)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Extra config.json keys (env, manifest_hash, data, the command's config, ...)."""
    resume_key: dict[str, Any] = field(default_factory=dict)
    """Settings a resumed run must share with the saved one (a difference is refused)."""
    samples_per_item: int = 1
    """Frames per data item (a window of T frames counts T), for the frames/s log."""
    validate: Callable[[int], dict[str, float]] | None = None
    """Held-out scores at each checkpoint (rank 0); they join the checkpoint's metrics."""
    after_step: Callable[[int], None] | None = None
    """Runs after each optimizer step (e.g. the EMA target update)."""
    train_mode: Callable[[], None] | None = None
    """Puts the module in training mode (None: ``module.train()``); a frozen part stays eval."""
    log_extra: Callable[[dict[str, torch.Tensor]], dict[str, float]] | None = None
    """More values to log from the loss terms (e.g. embedding health)."""
    state: Callable[[], Any] | None = None
    """Extra resumable state (e.g. the EMA encoder), saved with the optimizer's."""
    load_state: Callable[[Any], None] | None = None
    """Inverse of ``state``."""


@dataclass(frozen=True)
class FitResult:
    out: Path
    step: int
    metrics: dict[str, float]
    seconds: float
    """Wall time of the loop, this run and every run it resumes together."""


# ------------------------------------------------------------------------------------- the loop
def fit(
    task: TrainTask,
    loop: LoopConfig,
    out: Path,
    rt: Runtime,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_step: Callable[[int, nn.Module, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train ``task`` as ``loop`` says, checkpointing into ``out``.

    An ``out`` that holds a checkpoint is continued with ``resume``, replaced with ``overwrite``,
    and otherwise refused. ``on_step(step, module, losses)`` runs after every optimizer step
    (tests use it to interrupt a run or poison weights).
    """
    out = Path(out)
    # Step 1. Optimiser: weight decay on matrices only.
    params = task.params or [p for p in task.module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": loop.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=loop.lr,
    )
    sampler = torch.Generator().manual_seed(loop.seed)

    # Step 2. Fresh start, resume, or refuse to touch an existing run.
    start, elapsed, metrics = 0, 0.0, {}
    if has_checkpoint(out):
        found = checkpoint_kind(out)
        if found != task.kind:
            raise ReverieError(
                f"{out} holds a {found} checkpoint, not a {task.kind}: choose another --out"
            )
        if resume:
            start, elapsed, metrics = _restore(task, optimizer, sampler, out, rt.device)
        elif not overwrite:
            raise ReverieError(
                f"{out} already holds a checkpoint: pass --resume to continue it, or choose "
                "another --out"
            )
    budget = None if loop.minutes is None else 60.0 * loop.minutes
    if start >= loop.steps or (budget is not None and elapsed >= budget):
        return FitResult(out, start, metrics, elapsed)
    loss = (
        nn.parallel.DistributedDataParallel(
            task.loss, device_ids=[rt.device] if rt.device.type == "cuda" else None
        )
        if rt.world > 1
        else task.loss
    )
    if rt.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    logger = _Logger(out, start, loop.tensorboard) if rt.rank == 0 else None
    bar = tqdm(
        total=loop.steps,
        initial=start,
        disable=rt.rank != 0 or not loop.progress,
        desc=loop.desc,
        unit="step",
        dynamic_ncols=True,
    )
    use_bf16 = loop.precision == "bf16" or (loop.precision == "auto" and bf16_native(rt.device))
    autocast = torch.autocast(rt.device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
    (task.train_mode or task.module.train)()
    B = loop.batch_size
    t_start, t_log, frames = time.perf_counter(), time.perf_counter(), 0
    last: dict[str, float] = {}
    step = start
    try:
        for step in range(start + 1, loop.steps + 1):
            # Step 3. Batch: global indices from the shared generator, this rank's slice.
            idx = torch.randint(len(task.data), (rt.world * B,), generator=sampler)
            batch = task.data.get_batch(idx[rt.rank * B : (rt.rank + 1) * B])
            batch = {k: v.to(rt.device, non_blocking=True) for k, v in batch.items()}

            # Step 4. Forward: the task's loss terms; stop on a non-finite one.
            with autocast:
                terms = loss(batch, step)
            scalars = {k: v for k, v in terms.items() if v.ndim == 0}
            _check_finite(scalars, step, rt.world)

            # Step 5. Backward and update, learning rate from the schedule.
            lr = learning_rate(step, loop, elapsed + time.perf_counter() - t_start)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if loop.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, loop.grad_clip)
            optimizer.step()
            if task.after_step is not None:
                task.after_step(step)

            # Step 6. Budget: every rank stops at the same step (rank 0's clock decides).
            last = {k: float(v.detach()) for k, v in scalars.items()}
            if on_step is not None:
                on_step(step, task.module, last)
            bar.update(1)
            spent = elapsed + time.perf_counter() - t_start
            out_of_time = _agree(budget is not None and spent >= budget, rt.world)
            final = out_of_time or step == loop.steps

            # Step 7. Logs (rank 0): losses, lr, frames/s, the task's extras.
            frames += B * task.samples_per_item * rt.world
            if logger is not None and (step % loop.log_every == 0 or final):
                now = time.perf_counter()
                fps = frames / max(now - t_log, 1e-9)
                t_log, frames = now, 0
                extra = task.log_extra(terms) if task.log_extra is not None else {}
                logger.log(step, {**last, "lr": lr, "frames_per_s": fps, **extra})
                bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()} | {"fr/s": f"{fps:.0f}"})

            # Step 8. Checkpoint (rank 0) with held-out scores; no rank runs ahead of it.
            if final or (loop.ckpt_every is not None and step % loop.ckpt_every == 0):
                metrics = dict(last)
                if rt.rank == 0:
                    if task.validate is not None:
                        scores = task.validate(step)
                        metrics.update(scores)
                        assert logger is not None
                        logger.log(step, scores)
                    spent = elapsed + time.perf_counter() - t_start
                    _save(task, optimizer, sampler, out, step, metrics, spent)
                if rt.world > 1:
                    dist.barrier()
            if out_of_time:
                if rt.rank == 0:
                    tqdm.write(
                        f"{loop.desc}: the {loop.minutes:g}-minute budget is spent: stopped at "
                        f"step {step} of {loop.steps}"
                    )
                break
    finally:
        bar.close()
        if logger is not None:
            logger.close()
    task.module.eval()
    return FitResult(out, step, metrics, elapsed + time.perf_counter() - t_start)


def _agree(flag: bool, world: int) -> bool:
    """Rank 0's ``flag`` on every rank (wall clocks differ between processes)."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)])
    dist.broadcast(t, src=0)
    return bool(t.item())


def _check_finite(scalars: dict[str, torch.Tensor], step: int, world: int) -> None:
    names = list(scalars)
    finite = torch.stack([torch.isfinite(scalars[k].detach().float()) for k in names]).float().cpu()
    if world > 1:  # every rank must stop together, or the others hang in the next all-reduce
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    for name, ok in zip(names, finite.tolist()):
        if not ok:
            raise ReverieError(
                f"non-finite loss at step {step}: term '{name}' = "
                f"{float(scalars[name].detach())} (try a lower --lr; check the data for NaNs)"
            )


def _save(
    task: TrainTask,
    optimizer: torch.optim.Optimizer,
    sampler: torch.Generator,
    out: Path,
    step: int,
    metrics: dict[str, float],
    seconds: float,
) -> None:
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "sampler": sampler.get_state(),
        "torch_rng": torch.get_rng_state(),
        "seconds": seconds,
        "resume": task.resume_key,
        "task": task.state() if task.state is not None else None,
    }
    meta = {**task.meta, "train_seconds": round(seconds, 2)}
    save_checkpoint(
        out, task.module, kind=task.kind, step=step, metrics=metrics, extra=meta, train_state=state
    )


def _restore(
    task: TrainTask,
    optimizer: torch.optim.Optimizer,
    sampler: torch.Generator,
    out: Path,
    device: torch.device,
) -> tuple[int, float, dict[str, float]]:
    """Load the checkpoint in ``out`` into the live objects; (step, seconds spent, metrics)."""
    from reverie.checkpoint import load_module

    saved, meta = load_module(out, task.kind, device)
    if getattr(saved, "config", None) != getattr(task.module, "config", None):
        raise ReverieError(
            f"cannot resume {out}: its model config differs from this run's "
            "(preset, history or frameskip changed?)"
        )
    if meta.get("manifest_hash") != task.meta.get("manifest_hash"):
        raise ReverieError(
            f"cannot resume {out}: it was trained on a different dataset "
            f"(manifest {meta.get('manifest_hash')} vs {task.meta.get('manifest_hash')})"
        )
    state, _ = load_train_state(out)
    # Runs written before the trainer recorded "resume" kept their whole config under "config".
    before = state.get("resume") or state.get("config") or {}
    current = json.loads(json.dumps(task.resume_key))  # as saved: tuples become lists
    changed = {k: (before[k], v) for k, v in current.items() if k in before and before[k] != v}
    if changed:
        items = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
        raise ReverieError(
            f"cannot resume {out}: settings differ from the saved run ({items}); keep them, or "
            "train into another --out"
        )
    with torch.no_grad():
        for name, value in saved.state_dict().items():
            task.module.state_dict()[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    sampler.set_state(state["sampler"])
    torch.set_rng_state(state["torch_rng"])
    extra = state.get("task")
    if extra is None and "ema" in state:  # pre-trainer world-model runs
        extra = {"ema": state["ema"]}
    if task.load_state is not None:
        task.load_state(extra)
    return int(state["step"]), float(state.get("seconds") or 0.0), dict(meta.get("metrics") or {})


class _Logger:
    """Rank-0 sinks: metrics.jsonl (one JSON object per line) and TensorBoard."""

    def __init__(self, out: Path, start_step: int, tensorboard: bool) -> None:
        self.path = out / "metrics.jsonl"
        if self.path.exists():  # drop lines a killed run logged after its last checkpoint
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a torn last line from a crash mid-write
                    continue
                if isinstance(record, dict) and record.get("step", 0) <= start_step:
                    keep.append(line)
            atomic_write_bytes(self.path, "".join(line + "\n" for line in keep).encode())
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tb"), purge_step=start_step + 1)

    def log(self, step: int, values: dict[str, float]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k if "/" in k else f"train/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
