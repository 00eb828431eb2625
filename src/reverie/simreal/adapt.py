"""Few-shot adaptation: K episodes under a shift, a short JEPA fine-tune, a new checkpoint.

    reverie adapt --checkpoint runs/tworoom --shift physics-hard --episodes 20 --out runs/tw-adapt20
    reverie adapt --checkpoint runs/tworoom --curve 0 5 20 100 --out runs/tworoom/simreal
    python -c "from reverie.simreal.adapt import AdaptConfig, adapt; adapt(AdaptConfig(...))"

The K episodes are collected in memory (``reverie.data.collect.run_episode`` on the shifted env,
latency included) from the top of the collection seed range, so they never repeat the source
training episodes and K = 5 is a prefix of K = 20 (the adaptation curve is nested). Fine-tuning
uses the training loss (``reverie.models.jepa.JEPALoss``: teacher-forced + rollout MSE +
λ·SIGReg) on windows of ``history + rollout`` frames at the model's frameskip, run by the one
trainer (``reverie.trainer.fit``: constant learning rate, fp32 by default, resumable).
``params="predictor"`` freezes the encoder (BatchNorm statistics included), so only the dynamics
adapt and the source embedding space stays; ``params="all"`` trains everything. K = 0 writes the
source weights unchanged.

``adaptation_curve`` runs K in (0, 5, 20, 100), evaluates each adapted model under the shift and
writes ``OUT/adapt_curve.json``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from reverie.checkpoint import has_checkpoint
from reverie.envs import env_class, resolve
from reverie.io import ReverieError, atomic_write_json
from reverie.simreal.shifts import (
    collect_episodes,
    heldout_seed_base,
    make_shifted,
    parse_shift,
    to_blocks,
)
from reverie.trainer import DEVICES, PRECISIONS, check_choice

#: checkpoint meta keys that save_checkpoint writes itself (everything else is carried over).
_OWN_META = {
    "format_version",
    "kind",
    "reverie_version",
    "torch_version",
    "model",
    "env",
    "manifest_hash",
    "step",
    "metrics",
    "files",
}


@dataclass(frozen=True)
class AdaptConfig:
    """``reverie adapt``: fine-tune a checkpoint on K episodes collected under a shift."""

    checkpoint: Path
    """Source run directory."""
    out: Path
    """New run directory for the adapted checkpoint."""
    env: str | None = None
    """Environment (default: the checkpoint's)."""
    shift: str = "physics-hard"
    """One shift: a preset or name=value items (see reverie.simreal.shifts)."""
    episodes: int = 20
    """K: episodes collected under the shift (0 = copy the weights unchanged)."""
    params: Literal["predictor", "all"] = "predictor"
    """What trains: the predictor only (encoder frozen) or the whole model."""
    steps: int = 200
    """Fine-tuning optimizer steps."""
    lr: float = 3e-4
    """AdamW learning rate (constant: short runs need no schedule)."""
    batch_size: int = 32
    """Windows per step."""
    rollout: int = 3
    """Frames after the history in each window (the rollout loss length)."""
    lam: float | None = None
    """SIGReg weight (only matters with params=all: a frozen encoder gets no gradient); None: the
    λ the checkpoint was trained with."""
    rollout_weight: float = 1.0
    """Weight of the rollout loss term."""
    policy: str = "mixed"
    """Collection policy under the shift: expert | mixed | random."""
    seed: int = 0
    """Seeds the episodes (collection seed base 999 - seed) and batch sampling."""
    precision: str = "fp32"
    """fp32 | bf16 | auto (bf16 autocast where the hardware runs it natively)."""
    device: str = "auto"
    """auto (cuda if available) | cpu | cuda."""
    threads: int | None = None
    """torch CPU threads while fine-tuning (None: torch's default)."""
    resume: bool = False
    """Continue an interrupted adaptation in --out."""
    overwrite: bool = False
    """Replace an adapted checkpoint already in --out."""
    progress: bool = True
    """Print progress."""
    curve: tuple[int, ...] = ()
    """K values (e.g. 0 5 20 100): run the adaptation curve instead of one K: OUT/k<K> per K, SR
    under the shift for each, OUT/adapt_curve.json (``reverie report`` shows it when OUT is
    RUN/simreal)."""
    curve_episodes: int = 50
    """Held-out pairs per point of the curve."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        object.__setattr__(self, "curve", tuple(int(k) for k in self.curve))
        if any(k < 0 for k in self.curve):
            raise ValueError(f"--curve values must be >= 0, got {list(self.curve)}")
        if self.curve_episodes < 1:
            raise ValueError("--curve-episodes must be >= 1")
        object.__setattr__(self, "out", Path(self.out))
        if self.env is not None:
            object.__setattr__(self, "env", resolve(self.env))
            parse_shift(self.env, self.shift)
        if self.params not in ("predictor", "all"):
            raise ValueError(f"--params must be predictor or all, got {self.params!r}")
        if self.episodes < 0:
            raise ValueError(f"--episodes must be >= 0, got {self.episodes}")
        for name in ("steps", "batch_size", "rollout"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if not self.lr > 0 or (self.lam is not None and self.lam < 0) or self.rollout_weight < 0:
            raise ValueError("--lr must be > 0, --lam and --rollout-weight >= 0")
        if self.policy not in ("expert", "mixed", "random"):
            raise ValueError(f"--policy must be expert, mixed or random, got {self.policy!r}")
        if not 0 <= self.seed <= 999:
            raise ValueError(f"--seed must be in [0, 999], got {self.seed}")
        if self.out.resolve() == self.checkpoint.resolve():
            raise ValueError("--out must differ from --checkpoint (the source stays intact)")
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("device", self.device, DEVICES)
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite exclude each other")

    def to_json(self) -> dict[str, Any]:
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }


def windows(
    episodes: list[dict[str, Any]], frameskip: int, length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """All windows of ``length`` model frames: obs (N, T, 3, Hi, Wi) uint8, actions (N, T-1, A')"""
    obs_w, act_w = [], []
    for ep in episodes:
        obs, acts = to_blocks(ep, frameskip)  # (T_ep, 3, Hi, Wi), (T_ep-1, A')
        for s in range(obs.shape[0] - length + 1):
            obs_w.append(obs[s : s + length])
            act_w.append(acts[s : s + length - 1])
    if not obs_w:
        raise ReverieError(f"episodes are too short for windows of {length} frames")
    return torch.stack(obs_w), torch.stack(act_w)


def adapt(cfg: AdaptConfig) -> Path:
    """Collect K shifted episodes, fine-tune, write the checkpoint to ``cfg.out``; returns it."""
    from reverie.checkpoint import load_checkpoint, save_checkpoint
    from reverie.models.jepa import JEPALoss
    from reverie.models.sigreg import build_regularizer
    from reverie.trainer import TensorBatches, TrainTask, fit, loop_from, runtime

    t0 = time.perf_counter()
    if has_checkpoint(cfg.out) and not (cfg.resume or cfg.overwrite):
        raise ReverieError(
            f"{cfg.out} already holds a checkpoint: pass --overwrite to replace it (or --resume "
            "to continue it), or choose another --out"
        )
    model, meta = load_checkpoint(cfg.checkpoint)
    env = cfg.env or meta.get("env")
    if env is None:
        raise ReverieError(f"checkpoint {cfg.checkpoint} does not record its environment")
    if meta.get("env") not in (None, env):
        raise ReverieError(f"checkpoint {cfg.checkpoint} was trained on {meta['env']!r}, not {env}")
    shift = parse_shift(env, cfg.shift)
    trained_lam = (meta.get("train") or {}).get("lam")
    if cfg.lam is None and trained_lam is not None:  # the weight the model was trained with
        cfg = dataclasses.replace(cfg, lam=float(trained_lam))
    extra = {k: v for k, v in meta.items() if k not in _OWN_META}
    record: dict[str, Any] = {
        "source_checkpoint": str(cfg.checkpoint),
        "source_step": meta.get("step"),
        "shift": shift.to_json(),
        "episodes": cfg.episodes,
        "windows": 0,
        "config": cfg.to_json(),
        "loss_first": None,
        "loss_last": None,
        "seconds": 0.0,
    }
    extra.update(adapt=record, env=env, manifest_hash=meta.get("manifest_hash"))
    if cfg.episodes == 0:  # K = 0: the source weights, unchanged
        record["seconds"] = round(time.perf_counter() - t0, 2)
        return save_checkpoint(
            cfg.out,
            model,
            step=int(meta.get("step") or 0),
            metrics=dict(meta.get("metrics") or {}),
            extra=extra,
        )

    # Step 1. K episodes under the shift, from the top of the collection seed range (999 - seed,
    # refused when the source data used that seed); all windows of history + rollout frames.
    base = heldout_seed_base(meta, cfg.seed)
    torch.manual_seed(cfg.seed)
    sim = make_shifted(env, shift, size=model.image_size)
    eps = collect_episodes(sim, cfg.episodes, base, env_class(env).max_episode_steps, cfg.policy)
    obs, actions = windows(eps, model.frameskip, model.history + cfg.rollout)
    record["windows"] = obs.shape[0]
    if cfg.progress:
        print(f"adapt: {cfg.episodes} episodes, {obs.shape[0]} windows, {cfg.steps} steps")

    # Step 2. What trains: the predictor alone (the frozen encoder, BatchNorm statistics
    # included, stays in eval mode) or everything with SIGReg at the trained λ.
    loop = loop_from(cfg, weight_decay=1e-3, schedule="constant", tensorboard=False, desc="adapt")
    predictor_only = cfg.params == "predictor"
    regularizer = None if predictor_only else build_regularizer("sigreg", 256, cfg.seed)
    # A checkpoint that records no λ gets LeWM's 0.1 (only matters with params=all).
    lam = 0.1 if cfg.lam is None else cfg.lam
    if predictor_only:
        model.encoder.requires_grad_(False)

    def train_mode() -> None:
        model.train()
        if predictor_only:
            model.encoder.eval()

    def on_step(step: int, module: Any, losses: dict[str, float]) -> None:
        # The record is part of config.json, written after this at the last step.
        record["loss_first"] = (
            losses["loss"] if record["loss_first"] is None else record["loss_first"]
        )
        record["loss_last"] = losses["loss"]
        record["seconds"] = round(time.perf_counter() - t0, 2)

    with runtime(loop) as rt:
        model.to(rt.device)
        task = TrainTask(
            kind="reverie-world-model",
            module=model,
            loss=JEPALoss(model, regularizer, lam, cfg.rollout_weight, cfg.rollout),
            data=TensorBatches(obs=obs, actions=actions),
            params=list((model.predictor if predictor_only else model).parameters()),
            train_mode=train_mode,
            samples_per_item=model.history + cfg.rollout,
            meta=extra,
            resume_key={k: v for k, v in cfg.to_json().items() if k not in _RUNTIME_KEYS},
        )
        result = fit(
            task, loop, cfg.out, rt, resume=cfg.resume, overwrite=cfg.overwrite, on_step=on_step
        )
    model.requires_grad_(True)
    return result.out


#: AdaptConfig fields that a resumed adaptation may change.
_RUNTIME_KEYS = ("out", "precision", "device", "threads", "resume", "overwrite", "progress")
_RUNTIME_KEYS += ("curve", "curve_episodes")


def adaptation_curve(
    cfg: AdaptConfig,
    ks: tuple[int, ...] = (0, 5, 20, 100),
    eval_episodes: int = 50,
    **eval_kwargs: Any,
) -> dict[str, Any]:
    """SR under ``cfg.shift`` after adapting with each K; checkpoints in OUT/k<K>, JSON at
    OUT/adapt_curve.json. ``eval_kwargs`` go to ``EvalConfig`` (planner,
    planning=PlannerOptions(...), ...)."""
    from reverie.evaluate import EvalConfig, evaluate

    points = []
    shift = None
    for k in ks:
        run = adapt(dataclasses.replace(cfg, episodes=k, out=cfg.out / f"k{k:03d}", curve=()))
        env = cfg.env or read_env(run)
        shift = parse_shift(env, cfg.shift)
        ev = evaluate(
            EvalConfig(
                checkpoint=run,
                episodes=eval_episodes,
                seed=cfg.seed,
                out=run / "eval_shift.json",
                videos=0,
                factors=shift.factor_string(),
                latency=shift.latency,
                source_pairs=True,
                **eval_kwargs,
            ),
            progress=False,
        )
        points.append(
            {
                "k": k,
                "success_rate": ev["success_rate"],
                "successes": ev["successes"],
                "episodes": ev["episodes"],
                "ci95": ev["ci95"],
                "checkpoint": str(run),
            }
        )
        if cfg.progress:
            print(f"adapt curve: K={k} SR={ev['success_rate']}% {ev['ci95']}", flush=True)
    result = {
        "source_checkpoint": str(cfg.checkpoint),
        "shift": shift.to_json() if shift else None,
        "params": cfg.params,
        "steps": cfg.steps,
        "points": points,
    }
    atomic_write_json(cfg.out / "adapt_curve.json", result)
    return result


def read_env(run: Path) -> str:
    from reverie.checkpoint import read_meta

    return str(read_meta(run)["env"])
