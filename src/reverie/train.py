"""Train a JEPA world model on a collected dataset: a plain function with numbered steps.

    reverie train --data runs/tworoom-data --out runs/tworoom [--preset cpu] [--steps N] [--resume]
    python -m reverie.train --data runs/tworoom-data --out runs/tworoom      # same, without the CLI
    torchrun --nproc_per_node=2 -m reverie.train --data ... --out ...       # DDP (gloo/nccl)

    from reverie.train import TrainConfig, train
    run_dir = train(TrainConfig(data=Path("runs/tworoom-data"), out=Path("runs/tworoom")))

Loss = teacher-forced next-embedding MSE (every step of each window predicted from the previous k
embeddings and its action) + rollout MSE (the last ``horizon`` frames predicted autoregressively
from the first ``history``) + λ·SIGReg over all embeddings of the batch. Targets are not
stop-gradiented (as in LeWM: SIGReg keeps the encoder from collapsing); with ``--regularizer ema``
they come from an EMA copy of the encoder instead.

The dataset is held in RAM and batches are gathered with a seeded generator (part of the saved
state), so a run killed and resumed with ``--resume`` ends with the same weights as an
uninterrupted one. Rank 0 writes a progress bar, TensorBoard logs (RUN/tb), RUN/metrics.jsonl and
the checkpoints (see ``reverie.checkpoint``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from tqdm import tqdm

from reverie.checkpoint import has_checkpoint, load_checkpoint, load_train_state, save_checkpoint
from reverie.hardware import bf16_native
from reverie.io import ReverieError, atomic_write_bytes
from reverie.models.encoder import EncoderConfig
from reverie.models.predictor import PredictorConfig
from reverie.models.sigreg import (
    REGULARIZERS,
    build_regularizer,
    collapse_problems,
    embedding_health,
)
from reverie.models.world_model import WorldModel, WorldModelConfig, teacher_forcing_pairs

# Preset defaults: training knobs (TrainConfig fields left as None) and the model architecture.
# fmt: off
PRESETS: dict[str, dict[str, Any]] = {
    # Seconds on one core: for tests and smoke runs.
    "tiny": dict(
        steps=200, frameskip=1, batch_size=16, lr=3e-3, weight_decay=1e-3, warmup=10, history=2,
        horizon=2, lam=0.1, sigreg_directions=64, ckpt_every=1000, log_every=10, val_windows=128,
        encoder=dict(channels=(8, 16, 32, 32), embed_dim=32),
        predictor=dict(hidden=64, depth=2, cond_dim=32),
    ),
    # A useful Two-Room model in minutes on 2 cores (bf16 + channels_last where supported).
    # frameskip 5: one model step = 5 env steps, so a 5-step plan spans the room (with 1, the
    # embedding distance to a goal saturated beyond ~4 steps and planning failed).
    # lam: the preset's λ applies unless the dataset's env names its own (``sigreg_lam``).
    # SIGReg pushes every projection of the batch toward N(0, 1); a world whose visible state is
    # a flat 2-D sheet (Two-Room) satisfies that only by folding the sheet through all 64
    # dimensions, and the latent goal distance saturates: Spearman(latent, true distance) 0.49
    # at 0.1 vs 0.99 at 0.003, CEM success 38% vs 82%. A world of angles (Reacher: a torus) needs
    # the opposite: at 0.003 its embedding fell to effective rank 2.3 and CEM to 12%, vs 50% at
    # 0.1. BatchNorm in the encoder, not SIGReg, is what prevents collapse.
    "cpu": dict(
        steps=5000, frameskip=5, batch_size=32, lr=1e-3, weight_decay=1e-3, warmup=200,
        history=3, horizon=3, lam=0.1, sigreg_directions=256, ckpt_every=500, log_every=25,
        val_windows=512,
        encoder=dict(channels=(32, 64, 128, 256), kernel_size=3, activation="relu", embed_dim=64),
        predictor=dict(hidden=128, depth=3, cond_dim=64),
    ),
    # A ViT model, bigger batch and (with data collected at --size 128 or more) images, bf16.
    "gpu": dict(
        steps=30000, frameskip=5, batch_size=128, lr=5e-4, weight_decay=0.05, warmup=1000,
        history=3, horizon=3, lam=0.1, sigreg_directions=1024, ckpt_every=2000, log_every=50,
        val_windows=2048,
        encoder=dict(kind="vit", patch_size=8, width=192, depth=6, heads=3, embed_dim=192),
        predictor=dict(hidden=512, depth=6, cond_dim=256),
    ),
}
# fmt: on
PRESET_KEYS = tuple(k for k in PRESETS["cpu"] if k not in ("encoder", "predictor"))


@dataclass(frozen=True)
class TrainConfig:
    """What to train on, where to write, and the few knobs that matter (None: preset default)."""

    data: Path
    """Dataset directory written by ``reverie collect``."""
    out: Path
    """Run directory: checkpoint, metrics.jsonl, TensorBoard logs (tb/)."""
    preset: str = "cpu"
    """tiny (tests) | cpu (default) | gpu: fills every field left as None and the architecture."""
    steps: int | None = None
    """Optimizer steps in total (a resumed run continues up to this number)."""
    batch_size: int | None = None
    """Windows per step per process (frames per step = batch_size × (history + horizon))."""
    lr: float | None = None
    """Peak AdamW learning rate (linear warmup, cosine decay to 10%)."""
    weight_decay: float | None = None
    """AdamW weight decay on weight matrices (not on biases or norms)."""
    warmup: int | None = None
    """Linear warmup steps (at most a tenth of --steps)."""
    history: int | None = None
    """k: embeddings the predictor sees (also the context of the rollout term)."""
    horizon: int | None = None
    """Frames after the history in each window: the length of the rollout loss term."""
    frameskip: int | None = None
    """Env steps between model frames (the model action concatenates frameskip raw actions)."""
    regularizer: str = "sigreg"
    """sigreg | vicreg | ema (EMA target encoder; lam is then unused)."""
    lam: float | None = None
    """λ: weight of the regulariser, the one loss knob (None: the env's ``sigreg_lam`` if it has
    one, Two-Room 0.003, else the preset's 0.1)."""
    rollout_weight: float = 1.0
    """Weight of the multi-step rollout term (0 disables it)."""
    ema_momentum: float = 0.996
    """EMA target encoder momentum (regularizer=ema only)."""
    sigreg_directions: int | None = None
    """M: random projections per SIGReg evaluation."""
    val_fraction: float = 0.05
    """Fraction of episodes held out for validation metrics (at least one when there are two)."""
    val_windows: int | None = None
    """Held-out windows scored at every checkpoint."""
    grad_clip: float = 1.0
    """Gradient norm clip (0 disables)."""
    seed: int = 0
    """Seed of the initial weights and of batch sampling."""
    ckpt_every: int | None = None
    """Write a checkpoint every this many steps (and always at the end)."""
    log_every: int | None = None
    """Log losses, health and frames/s every this many steps."""
    resume: bool = False
    """Continue from the checkpoint in ``out`` (starts fresh when there is none)."""
    device: str = "auto"
    """auto (cuda if available) | cpu | cuda."""
    precision: str = "auto"
    """auto (bf16 autocast where the hardware runs it natively, else fp32) | fp32 | bf16."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    tensorboard: bool = True
    """Write TensorBoard event files to out/tb."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        if self.preset not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(
                f"--regularizer must be one of {', '.join(REGULARIZERS)}, got {self.regularizer!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"--precision must be auto, fp32 or bf16, got {self.precision!r}")
        positive = (
            "steps",
            "batch_size",
            "history",
            "sigreg_directions",
            "val_windows",
            "ckpt_every",
            "log_every",
            "frameskip",
            "threads",
        )
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        for name in (
            "lr",
            "weight_decay",
            "warmup",
            "horizon",
            "lam",
            "rollout_weight",
            "grad_clip",
        ):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"--{name.replace('_', '-')} must be finite and >= 0, got {value}")
        if self.lr == 0:
            raise ValueError("--lr must be > 0")
        if not 0 <= self.ema_momentum < 1:
            raise ValueError(f"--ema-momentum must be in [0, 1), got {self.ema_momentum}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")

    def resolved(self, env: str | None = None) -> TrainConfig:
        """A copy with every None field filled from the preset (λ from ``env`` if it names one)."""
        preset = PRESETS[self.preset]
        fills = {k: preset[k] for k in PRESET_KEYS if getattr(self, k) is None}
        if self.lam is None and env is not None:
            from reverie.envs import env_class

            env_lam = env_class(env).sigreg_lam
            if env_lam is not None:
                fills["lam"] = env_lam
        return dataclasses.replace(self, **fills)

    def model_config(self, action_dim: int, image_size: int) -> WorldModelConfig:
        """The preset's architecture for a dataset's action size and image size."""
        cfg, preset = self.resolved(), PRESETS[self.preset]
        return WorldModelConfig(
            encoder=EncoderConfig(image_size=image_size, **preset["encoder"]),
            predictor=PredictorConfig(
                embed_dim=preset["encoder"]["embed_dim"],
                action_dim=action_dim,
                history=cfg.history,
                **preset["predictor"],
            ),
            frameskip=cfg.frameskip,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }


# --------------------------------------------------------------------------------------- loss
class JEPALoss(nn.Module):
    """World model + regulariser → loss terms; the module DDP wraps (so gradients sync)."""

    def __init__(
        self,
        model: WorldModel,
        regularizer: nn.Module | None,
        lam: float,
        rollout_weight: float,
        horizon: int,
    ) -> None:
        super().__init__()
        self.model, self.regularizer = model, regularizer
        self.lam, self.rollout_weight, self.horizon = lam, rollout_weight, horizon

    def forward(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        step: int,
        target_z: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        B, T = obs.shape[:2]
        k, H = self.model.history, self.horizon
        z = self.model.encode(obs)  # (B, T, D)
        target = z if target_z is None else target_z  # (B, T, D)
        terms: dict[str, torch.Tensor] = {}
        # Teacher forcing: frames t-k+1..t and action t predict frame t+1, for every t.
        z_hist, act, _ = teacher_forcing_pairs(z, actions, k)  # (B(T-1), k, D), (B(T-1), A)
        pred = self.model.predict(z_hist, act)  # (B(T-1), D)
        terms["pred"] = F.mse_loss(
            pred.float(), rearrange(target[:, 1:], "b t d -> (b t) d").float()
        )
        # Rollout: the last H frames from the first T-H, feeding predictions back in.
        if self.rollout_weight > 0 and H > 1:
            future = self.model.rollout(z[:, : T - H], actions[:, T - H - 1 :])  # (B, H, D)
            terms["rollout"] = F.mse_loss(future.float(), target[:, T - H :].float())
        if self.regularizer is not None:
            terms["reg"] = self.regularizer(rearrange(z, "b t d -> (b t) d"), step)
        terms["loss"] = (
            terms["pred"]
            + self.rollout_weight * terms.get("rollout", 0.0)
            + self.lam * terms.get("reg", 0.0)
        )
        terms["z"] = z.detach()
        return terms


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to 10% of it at cfg.steps (1-based step).

    The warmup is capped at a tenth of the run so a short run still reaches the peak rate.
    """
    warmup = min(cfg.warmup, cfg.steps // 10)
    if warmup and step <= warmup:
        return cfg.lr * step / warmup
    progress = min(1.0, (step - warmup) / max(1, cfg.steps - warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


# ---------------------------------------------------------------------------------- utilities
def _setup_device(cfg: TrainConfig) -> tuple[int, int, torch.device, bool]:
    """(rank, world size, device, whether we initialised a process group)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    initialised = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
        initialised = True
    rank = dist.get_rank() if world > 1 else 0
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local), initialised
    return rank, world, torch.device("cpu"), initialised


def _split_episodes(root: Path, fraction: float) -> tuple[list[int], list[int]]:
    from reverie.data.format import load_manifest

    ids = sorted(e for shard in load_manifest(root)["shards"] for e in shard["episodes"])
    n_val = 0 if len(ids) < 2 or fraction == 0 else max(1, round(fraction * len(ids)))
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


@torch.no_grad()
def evaluate(model: WorldModel, ds: Any, windows: int, horizon: int) -> dict[str, float]:
    """Held-out scores in eval mode: one-step MSE vs copy-last baseline, rollout MSE, health."""
    was_training = model.training
    model.eval()
    idx = torch.linspace(0, len(ds) - 1, min(windows, len(ds))).round().long()
    out: dict[str, list[torch.Tensor]] = {"z": [], "pred": [], "copy": [], "rollout": []}
    for chunk in idx.split(128):
        batch = ds.get_batch(chunk)
        z = model.encode(batch["obs"]).float()  # (B, T, D)
        actions = batch["actions"].to(z.device)
        z_hist, act, target = teacher_forcing_pairs(z, actions, model.history)
        out["pred"].append(((model.predict(z_hist, act) - target) ** 2).mean(1))
        out["copy"].append(((z_hist[:, -1] - target) ** 2).mean(1))
        if horizon >= 1:
            T = z.shape[1]
            future = model.rollout(z[:, : T - horizon], actions[:, T - horizon - 1 :])
            out["rollout"].append(((future - z[:, T - horizon :]) ** 2).mean((1, 2)))
        out["z"].append(rearrange(z, "b t d -> (b t) d"))
    model.train(was_training)
    scores = {f"val/{k}_mse": float(torch.cat(v).mean()) for k, v in out.items() if k != "z" and v}
    health = embedding_health(torch.cat(out["z"]))
    scores.update({f"val/{k}": v for k, v in health.items()})
    return scores


class _Logger:
    """Rank-0 sinks: metrics.jsonl (one JSON object per line) and TensorBoard."""

    def __init__(self, out: Path, start_step: int, tensorboard: bool) -> None:
        self.path = out / "metrics.jsonl"
        if self.path.exists():  # drop lines a killed run logged after its last checkpoint
            keep = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= start_step
            ]
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


# ------------------------------------------------------------------------------------- train
def train(
    cfg: TrainConfig, on_step: Callable[[int, WorldModel, dict[str, float]], None] | None = None
) -> Path:
    """Train (or resume) a world model as ``cfg`` says; returns the run directory.

    ``on_step(step, model, losses)`` runs after every optimizer step (tests use it to interrupt a
    run or poison weights).
    """
    from reverie.data.dataset import SequenceDataset
    from reverie.data.format import load_manifest

    cfg = cfg.resolved(env=load_manifest(cfg.data)["env"])  # the env may name its own λ
    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    rank, world, device, own_group = _setup_device(cfg)
    try:
        return _train(cfg, on_step, rank, world, device, SequenceDataset)
    finally:
        torch.set_num_threads(threads)
        if own_group:
            dist.destroy_process_group()


def _train(
    cfg: TrainConfig, on_step: Any, rank: int, world: int, device: torch.device, dataset_cls: Any
) -> Path:
    # Step 1. Data: training and held-out episodes, in RAM.
    train_ids, val_ids = _split_episodes(cfg.data, cfg.val_fraction)
    ds = dataset_cls(cfg.data, cfg.history, cfg.horizon, cfg.frameskip, episodes=train_ids)
    val_ds = (
        dataset_cls(
            cfg.data, cfg.history, cfg.horizon, cfg.frameskip, episodes=val_ids, verify=False
        )
        if val_ids
        else None
    )
    T = cfg.history + cfg.horizon

    # Step 2. Model, regulariser, optimiser; precision and memory format for this hardware.
    torch.manual_seed(cfg.seed)
    model_cfg = cfg.model_config(ds.action_dim, ds.image_size)
    model = WorldModel(model_cfg).to(device)
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and bf16_native(device))
    if device.type == "cpu" and model_cfg.encoder.kind == "cnn":
        model = model.to(memory_format=torch.channels_last)  # ~1.2x for convs on CPU
    regularizer = build_regularizer(cfg.regularizer, cfg.sigreg_directions, cfg.seed)
    loss_fn = JEPALoss(model, regularizer, cfg.lam, cfg.rollout_weight, cfg.horizon).to(device)
    ema = copy.deepcopy(model.encoder).requires_grad_(False) if cfg.regularizer == "ema" else None
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )
    sampler = torch.Generator().manual_seed(cfg.seed)

    # Step 3. Fresh start or resume from the checkpoint in cfg.out.
    start = 0
    if has_checkpoint(cfg.out):
        if not cfg.resume:
            raise ReverieError(
                f"{cfg.out} already holds a checkpoint: pass --resume to continue it, or choose "
                "another --out"
            )
        start = _restore(cfg, model, optimizer, sampler, ema, ds, device)
    if start >= cfg.steps:
        return cfg.out
    ddp = (
        nn.parallel.DistributedDataParallel(
            loss_fn, device_ids=[device] if device.type == "cuda" else None
        )
        if world > 1
        else loss_fn
    )
    if rank == 0:
        cfg.out.mkdir(parents=True, exist_ok=True)
    logger = _Logger(cfg.out, start, cfg.tensorboard) if rank == 0 else None
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        disable=rank != 0 or not cfg.progress,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
    model.train()
    t_last, frames = time.perf_counter(), 0
    last: dict[str, float] = {}
    try:
        for step in range(start + 1, cfg.steps + 1):
            # Step 4. Batch: global indices from the shared generator, this rank's slice.
            idx = torch.randint(len(ds), (world * cfg.batch_size,), generator=sampler)
            batch = ds.get_batch(idx[rank * cfg.batch_size : (rank + 1) * cfg.batch_size])
            obs = batch["obs"].to(device, non_blocking=True)  # (B, T, 3, Hi, Wi) uint8
            actions = batch["actions"].to(device, non_blocking=True)  # (B, T-1, A')

            # Step 5. Forward: loss terms (EMA targets if that is the regulariser).
            target_z = None
            if ema is not None:
                with torch.no_grad(), autocast:
                    target_z = rearrange(
                        ema(rearrange(obs, "b t c h w -> (b t) c h w")), "(b t) d -> b t d", t=T
                    )
            with autocast:
                terms = ddp(obs, actions, step, target_z)
            _check_finite(terms, step, world)

            # Step 6. Backward and update, learning rate from the schedule.
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()

            # Step 7. EMA target encoder follows the online one.
            if ema is not None:
                _ema_update(ema, model.encoder, cfg.ema_momentum)

            # Step 8. Logs (rank 0): losses, lr, frames/s, embedding health of the batch.
            frames += cfg.batch_size * T * world
            last = {k: float(v.detach()) for k, v in terms.items() if k != "z"}
            if on_step is not None:
                on_step(step, model, last)
            bar.update(1)
            if logger is not None and (step % cfg.log_every == 0 or step == cfg.steps):
                now = time.perf_counter()
                fps = frames / max(now - t_last, 1e-9)
                t_last, frames = now, 0
                health = embedding_health(rearrange(terms["z"], "b t d -> (b t) d"))
                logger.log(
                    step,
                    {
                        **last,
                        "lr": lr_at(step, cfg),
                        "frames_per_s": fps,
                        **{f"health/{k}": v for k, v in health.items()},
                    },
                )
                bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()} | {"fr/s": f"{fps:.0f}"})

            # Step 9. Checkpoint (rank 0), with held-out scores.
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                metrics = dict(last)
                if rank == 0:
                    if val_ds is not None:
                        metrics.update(evaluate(model, val_ds, cfg.val_windows, cfg.horizon))
                        problems = collapse_problems(
                            {
                                k[4:]: v
                                for k, v in metrics.items()
                                if k.startswith("val/") and k[4:] in ("std_mean", "eff_rank")
                            },
                            model.embed_dim,
                        )
                        if problems:
                            tqdm.write(
                                f"warning: embedding looks collapsed at step {step}: "
                                + "; ".join(problems)
                            )
                        assert logger is not None
                        logger.log(step, {k: v for k, v in metrics.items() if k.startswith("val/")})
                    _save(cfg, model, optimizer, sampler, ema, ds, step, metrics, val_ids)
                if world > 1:
                    dist.barrier()  # no rank runs ahead of a checkpoint it may resume from
    finally:
        bar.close()
        if logger is not None:
            logger.close()
    return cfg.out


def _check_finite(terms: dict[str, torch.Tensor], step: int, world: int) -> None:
    names = [k for k in ("pred", "rollout", "reg", "loss") if k in terms]
    finite = torch.stack([torch.isfinite(terms[k].detach().float()) for k in names]).float().cpu()
    if world > 1:  # every rank must stop together, or the others hang in the next all-reduce
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    for name, ok in zip(names, finite.tolist()):
        if not ok:
            raise ReverieError(
                f"non-finite loss at step {step}: term '{name}' = "
                f"{float(terms[name].detach())} (try a lower --lr; check the data for NaNs)"
            )


@torch.no_grad()
def _ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    for t, o in zip(target.parameters(), online.parameters()):
        t.lerp_(o, 1 - momentum)
    for t, o in zip(target.buffers(), online.buffers()):
        t.copy_(o)


def _save(
    cfg: TrainConfig,
    model: WorldModel,
    optimizer: torch.optim.Optimizer,
    sampler: torch.Generator,
    ema: nn.Module | None,
    ds: Any,
    step: int,
    metrics: dict[str, float],
    val_ids: list[int],
) -> None:
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "sampler": sampler.get_state(),
        "torch_rng": torch.get_rng_state(),
        "ema": ema.state_dict() if ema is not None else None,
        "config": cfg.to_json(),
    }
    manifest = ds.manifest
    save_checkpoint(
        cfg.out,
        model,
        step=step,
        metrics=metrics,
        env_name=ds.env_name,
        manifest_hash=ds.manifest_hash,
        train_state=state,
        extra={
            "env_id": manifest.get("env_id"),
            "action_space": manifest.get("action_space"),
            "data": {
                "path": str(cfg.data),
                "episodes": manifest.get("episodes"),
                "settings": manifest.get("settings"),
                "val_episodes": val_ids,
            },
            "train": cfg.to_json(),
        },
    )


def _restore(
    cfg: TrainConfig,
    model: WorldModel,
    optimizer: torch.optim.Optimizer,
    sampler: torch.Generator,
    ema: nn.Module | None,
    ds: Any,
    device: torch.device,
) -> int:
    """Load the checkpoint in cfg.out into the live objects; returns its step."""
    saved, meta = load_checkpoint(cfg.out, device)
    if saved.config != model.config:
        raise ReverieError(
            f"cannot resume {cfg.out}: its model config differs from this run's "
            "(preset, history or frameskip changed?)"
        )
    if meta.get("manifest_hash") != ds.manifest_hash:
        raise ReverieError(
            f"cannot resume {cfg.out}: it was trained on a different dataset "
            f"(manifest {meta.get('manifest_hash')} vs {ds.manifest_hash})"
        )
    state, _ = load_train_state(cfg.out)
    with torch.no_grad():
        for name, value in saved.state_dict().items():
            model.state_dict()[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    sampler.set_state(state["sampler"])
    torch.set_rng_state(state["torch_rng"])
    if ema is not None:
        if state.get("ema") is None:
            raise ReverieError(f"cannot resume {cfg.out} with --regularizer ema: no EMA state")
        ema.load_state_dict(state["ema"])
    return int(state["step"])


if __name__ == "__main__":
    import tyro

    print(train(tyro.cli(TrainConfig)))
