"""Train a JEPA world model on a collected dataset: a plain function with numbered steps.

    reverie train --data runs/tworoom-data --out runs/tworoom [--preset cpu] [--steps N] [--resume]
    python -m reverie.train --data runs/tworoom-data --out runs/tworoom      # same, without the CLI
    torchrun --nproc_per_node=2 -m reverie.train --data ... --out ...       # DDP (gloo/nccl)

    from reverie.train import TrainConfig, train
    run_dir = train(TrainConfig(data=Path("runs/tworoom-data"), out=Path("runs/tworoom")))

The loss is ``reverie.models.jepa.JEPALoss`` (teacher-forced next-embedding MSE + a ``rollout``-
frame autoregressive term + λ·SIGReg; ``--regularizer ema`` takes targets from an EMA encoder);
the loop is ``reverie.trainer.fit`` (schedule, precision, checkpoints, resume, logs, DDP). This
module turns a dataset and a preset into that task. ``--minutes M`` gives the run a wall-clock
budget: ``--steps`` becomes an upper bound and the cosine schedule follows the budget.

The dataset is held in RAM and batches are gathered with a seeded generator (part of the saved
state), so a run killed and resumed with ``--resume`` ends with the same weights as an
uninterrupted one (with a step budget). Resuming with other loss or optimiser settings than the
saved run's is refused. Rank 0 writes a progress bar, TensorBoard logs (RUN/tb),
RUN/metrics.jsonl and the checkpoints (see ``reverie.checkpoint``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from reverie.data.augment import AUGMENTS
from reverie.models.encoder import EncoderConfig
from reverie.models.jepa import JEPALoss, StateHead, batch_health, heldout_scores
from reverie.models.predictor import PredictorConfig
from reverie.models.sigreg import REGULARIZERS, build_regularizer, collapse_problems
from reverie.models.world_model import WorldModel, WorldModelConfig
from reverie.recipes import recipe
from reverie.trainer import (
    DEVICES,
    PRECISIONS,
    LoopConfig,
    TrainTask,
    check_choice,
    check_minutes,
    fit,
    learning_rate,
    loop_from,
    runtime,
)

__all__ = ["PRESETS", "JEPALoss", "TrainConfig", "evaluate", "lr_at", "train"]

#: Held-out scores of a world model (the name tests and benchmarks know).
evaluate = heldout_scores

# Preset defaults: training knobs (TrainConfig fields left as None) and the model architecture.
# fmt: off
PRESETS: dict[str, dict[str, Any]] = {
    # Seconds on one core: for tests and smoke runs.
    "tiny": dict(
        steps=200, frameskip=1, batch_size=16, lr=3e-3, weight_decay=1e-3, warmup=10, history=2,
        rollout=2, lam=0.1, sigreg_directions=64, ckpt_every=1000, log_every=10, val_windows=128,
        encoder=dict(channels=(8, 16, 32, 32), embed_dim=32),
        predictor=dict(hidden=64, depth=2, cond_dim=32),
    ),
    # A useful Two-Room model in minutes on 2 cores (bf16 + channels_last where supported).
    # frameskip 5: one model step = 5 env steps, so a 5-step plan spans the room (with 1, the
    # embedding distance to a goal saturated beyond ~4 steps and planning failed).
    # lam: the preset's λ applies unless the dataset's env has a recipe naming its own
    # (``reverie.recipes``: Two-Room 0.003, and why). BatchNorm in the encoder, not SIGReg, is
    # what prevents collapse.
    "cpu": dict(
        steps=5000, frameskip=5, batch_size=32, lr=1e-3, weight_decay=1e-3, warmup=200,
        history=3, rollout=3, lam=0.1, sigreg_directions=256, ckpt_every=500, log_every=25,
        val_windows=512,
        encoder=dict(channels=(32, 64, 128, 256), kernel_size=3, activation="relu", embed_dim=64),
        predictor=dict(hidden=128, depth=3, cond_dim=64),
    ),
    # The cpu preset with a quarter of the encoder's conv FLOPs and a fifth of the predictor's:
    # for CPUs without native bf16 (AVX2 only), where fp32 training and CEM replans of the cpu
    # preset run ~3x slower than with bf16 (BENCHMARKS.md, "CPU classes").
    "lite": dict(
        steps=5000, frameskip=5, batch_size=32, lr=1e-3, weight_decay=1e-3, warmup=200,
        history=3, rollout=3, lam=0.1, sigreg_directions=256, ckpt_every=500, log_every=25,
        val_windows=512,
        encoder=dict(channels=(16, 32, 64, 128), kernel_size=3, activation="relu", embed_dim=64),
        predictor=dict(hidden=64, depth=2, cond_dim=32),
    ),
    # A ViT model, bigger batch and (with data collected at --size 128 or more) images, bf16.
    "gpu": dict(
        steps=30000, frameskip=5, batch_size=128, lr=5e-4, weight_decay=0.05, warmup=1000,
        history=3, rollout=3, lam=0.1, sigreg_directions=1024, ckpt_every=2000, log_every=50,
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
    preset: str | None = None
    """tiny (tests) | cpu | lite (a quarter of cpu's FLOPs) | gpu: fills every field left as None
    and the architecture (None: the env's recipe names one, Two-Room lite, else cpu)."""
    steps: int | None = None
    """Optimizer steps in total (a resumed run continues up to this number)."""
    batch_size: int | None = None
    """Windows per step per process (frames per step = batch_size × (history + rollout))."""
    lr: float | None = None
    """Peak AdamW learning rate (linear warmup, cosine decay to 10%)."""
    weight_decay: float | None = None
    """AdamW weight decay on weight matrices (not on biases or norms)."""
    warmup: int | None = None
    """Linear warmup steps (at most a tenth of --steps)."""
    history: int | None = None
    """k: embeddings the predictor sees (also the context of the rollout term)."""
    rollout: int | None = None
    """Frames after the history in each window, predicted autoregressively by the rollout loss
    term (planning's horizon is a different thing: ``--horizon`` of eval/plan)."""
    frameskip: int | None = None
    """Env steps between model frames (the model action concatenates frameskip raw actions)."""
    latent: str = "vector"
    """Encoder latent: vector (one projected vector) | grid (a 4 x 4 token grid, each cell
    projected on its own; see EncoderConfig.latent)."""
    embed_dim: int | None = None
    """D of the pixel embedding (None: the preset's; a grid latent needs a multiple of 16)."""
    proprio: bool = False
    """Also feed the agent's proprioception (the env's ``proprio_names``: the pusher's position
    and velocity) to the encoder and the planner's goal cost. Pixels-only by default (as LeWM);
    refused for envs whose whole state is the agent's own (Two-Room, Reacher)."""
    proprio_embed: int = 16
    """Dimensions the proprioception adds to the embedding (--proprio)."""
    channels: tuple[int, ...] | None = None
    """Encoder CNN channels per stride-2 stage (None: the preset's, cpu 32 64 128 256). Channels
    at high resolution dominate the FLOPs: the lever for fp32-only CPUs."""
    pred_hidden: int | None = None
    """Width of the predictor's residual stream (None: the preset's; lite 64, cpu 128). Planning
    cost grows with its square."""
    pred_depth: int | None = None
    """Residual blocks of the predictor (None: the preset's; lite 2, cpu 3)."""
    regularizer: str = "sigreg"
    """sigreg | vicreg | ema (EMA target encoder; lam is then unused)."""
    lam: float | None = None
    """λ: weight of the regulariser, the one loss knob (None: the env's recipe if it names one,
    Two-Room 0.003, else the preset's 0.1)."""
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
    augment: str | None = None
    """Per-frame look augmentation (``reverie.data.augment``): none | look (hue, saturation,
    contrast, brightness, 3 px shift) | look-edge | color | shift. Context and target frames get
    independent draws, so the embedding learns to ignore the look (colours, lighting, camera).
    None: the env's recipe (Two-Room: look; others: none); a resumed run keeps its own."""
    invariance: float = 0.0
    """Weight of an invariance term: MSE between embeddings of two augmented looks of the same
    frames (0: off; needs --augment; encodes every frame twice)."""
    state_aux: float = 0.0
    """Weight of a privileged-state auxiliary (0: off, the default): a linear head from the pixel
    embedding to the true physical state (standardised; angles as sin and cos), trained beside
    the JEPA loss. The head is training-only and the checkpoint's model is unchanged, so planning
    still sees pixels; the labels are privileged, so such a model is not pixels-only. A
    diagnostic: does a state the JEPA loss leaves out of z (Push-T's angle) make planning work
    once it is in z?"""
    recon: float = 0.0
    """Weight of a pixel-reconstruction term (0: off, the default): a training-only decoder
    (``reverie.models.decoder``) redraws each frame (at up to 64 px) from its pixel embedding, so
    z must hold whatever the frame shows; pixels-only, unlike --state-aux, but no longer a pure
    JEPA. The checkpoint is an ordinary world model."""
    grad_clip: float = 1.0
    """Gradient norm clip (0 disables)."""
    seed: int = 0
    """Seed of the initial weights and of batch sampling."""
    ckpt_every: int | None = None
    """Write a checkpoint every this many steps (and always at the end)."""
    log_every: int | None = None
    """Log losses, health and frames/s every this many steps."""
    minutes: float | None = None
    """Wall-clock budget of the training loop: --steps becomes an upper bound, the schedule
    follows the budget, and the run stops (with a checkpoint) when it is spent."""
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
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
            if not self.channels or min(self.channels) < 1:
                raise ValueError(f"--channels must be positive ints, got {list(self.channels)}")
        from reverie.models.encoder import LATENTS

        if self.latent not in LATENTS:
            raise ValueError(f"--latent must be one of {', '.join(LATENTS)}, got {self.latent!r}")
        if self.embed_dim is not None and self.embed_dim < 2:
            raise ValueError(f"--embed-dim must be >= 2, got {self.embed_dim}")
        if self.proprio_embed < 1:
            raise ValueError(f"--proprio-embed must be >= 1, got {self.proprio_embed}")
        if self.pred_hidden is not None and self.pred_hidden < 1:
            raise ValueError(f"--pred-hidden must be >= 1, got {self.pred_hidden}")
        if self.pred_depth is not None and self.pred_depth < 0:
            raise ValueError(f"--pred-depth must be >= 0, got {self.pred_depth}")
        if self.proprio and self.regularizer == "ema":
            raise ValueError("--proprio does not combine with --regularizer ema")
        for name in ("state_aux", "recon"):
            if getattr(self, name) > 0 and self.regularizer == "ema":
                flag = name.replace("_", "-")
                raise ValueError(f"--{flag} does not combine with --regularizer ema")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(
                f"--regularizer must be one of {', '.join(REGULARIZERS)}, got {self.regularizer!r}"
            )
        check_choice("device", self.device, DEVICES)
        check_choice("precision", self.precision, PRECISIONS)
        check_minutes(self.minutes)
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
            "rollout",
            "lam",
            "rollout_weight",
            "state_aux",
            "recon",
            "grad_clip",
        ):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"--{name.replace('_', '-')} must be finite and >= 0, got {value}")
        if self.lr == 0:
            raise ValueError("--lr must be > 0")
        if self.augment is not None and self.augment not in AUGMENTS:
            raise ValueError(
                f"--augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}"
            )
        if not (math.isfinite(self.invariance) and self.invariance >= 0):
            raise ValueError(f"--invariance must be finite and >= 0, got {self.invariance}")
        if self.invariance > 0 and self.augment == "none":
            raise ValueError("--invariance needs an augmentation: pass --augment look")
        if not 0 <= self.ema_momentum < 1:
            raise ValueError(f"--ema-momentum must be in [0, 1), got {self.ema_momentum}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")

    def resolved(self, env: str | None = None) -> TrainConfig:
        """A copy with every None field filled from the preset (λ from ``env``'s recipe if it
        names one)."""
        name = self.preset or recipe(env).get("preset", "cpu")
        preset = PRESETS[name]
        fills: dict[str, Any] = {k: preset[k] for k in PRESET_KEYS if getattr(self, k) is None}
        fills["preset"] = name
        if self.preset is None and self.steps is None and "steps" in recipe(env):
            # The env's recipe trains its headline row: its steps, and its time budget unless
            # the run names its own.
            fills["steps"] = recipe(env)["steps"]
            if self.minutes is None and "minutes" in recipe(env):
                fills["minutes"] = recipe(env)["minutes"]
        if self.lam is None and "lam" in recipe(env):
            fills["lam"] = recipe(env)["lam"]
        if self.augment is None:
            fills["augment"] = self._saved_augment() or recipe(env).get("augment", "none")
        if self.invariance > 0 and fills.get("augment", self.augment) == "none":
            raise ValueError("--invariance needs an augmentation: pass --augment look")
        return dataclasses.replace(self, **fills)

    def _saved_augment(self) -> str | None:
        """The augmentation of the run this one resumes (runs from before the option: none)."""
        from reverie.checkpoint import has_checkpoint, read_meta
        from reverie.io import ReverieError

        if not (self.resume and has_checkpoint(self.out)):
            return None
        try:
            return str((read_meta(self.out).get("train") or {}).get("augment", "none"))
        except ReverieError:
            return None

    def model_config(
        self, action_dim: int, image_size: int, proprio_dim: int = 0
    ) -> WorldModelConfig:
        """The preset's architecture for a dataset's action size and image size (and, with
        --proprio, the env's ``proprio_dim`` proprioceptive numbers)."""
        cfg = self.resolved()
        preset = PRESETS[cfg.preset]
        encoder = {**preset["encoder"], "latent": cfg.latent}
        if cfg.channels is not None:
            encoder["channels"] = tuple(cfg.channels)
        if cfg.embed_dim is not None:
            encoder["embed_dim"] = cfg.embed_dim
        predictor = dict(preset["predictor"])
        if cfg.pred_hidden is not None:
            predictor["hidden"] = cfg.pred_hidden
        if cfg.pred_depth is not None:
            predictor["depth"] = cfg.pred_depth
        proprio = proprio_dim if cfg.proprio else 0
        latent = encoder["embed_dim"] + (cfg.proprio_embed if proprio else 0)
        return WorldModelConfig(
            encoder=EncoderConfig(image_size=image_size, **encoder),
            predictor=PredictorConfig(
                embed_dim=latent, action_dim=action_dim, history=cfg.history, **predictor
            ),
            frameskip=cfg.frameskip,
            proprio_dim=proprio,
            proprio_embed=cfg.proprio_embed,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }

    def loop_config(self) -> LoopConfig:
        """How the trainer runs this (resolved) config."""
        return loop_from(self)

    def resume_key(self) -> dict[str, Any]:
        """The settings a resumed run must share (runtime choices such as threads may differ)."""
        runtime_only = ("data", "out", "resume", "progress", "tensorboard", "threads", "device")
        runtime_only += ("ckpt_every", "log_every", "precision")
        return {k: v for k, v in self.to_json().items() if k not in runtime_only}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of a resolved config at 1-based ``step`` (warmup, then cosine to 10%)."""
    return learning_rate(step, cfg.loop_config())


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

    cfg = cfg.resolved(env=load_manifest(cfg.data)["env"])  # the env's recipe may name its λ
    loop = cfg.loop_config()
    with runtime(loop) as rt:
        # Step 1. Data: training and held-out episodes, in RAM.
        train_ids, val_ids = _split_episodes(cfg.data, cfg.val_fraction)
        proprio = proprio_indices(cfg.data) if cfg.proprio else ()
        ds = SequenceDataset(
            cfg.data, cfg.history, cfg.rollout, cfg.frameskip, episodes=train_ids, proprio=proprio
        )
        val_ds = (
            SequenceDataset(
                cfg.data,
                cfg.history,
                cfg.rollout,
                cfg.frameskip,
                episodes=val_ids,
                verify=False,
                proprio=proprio,
            )
            if val_ids
            else None
        )

        # Step 2. Model and loss; channels_last for convs on CPU (~1.2x).
        torch.manual_seed(cfg.seed)
        model_config = cfg.model_config(ds.action_dim, ds.image_size, len(proprio))
        model = WorldModel(model_config).to(rt.device)
        if rt.device.type == "cpu" and model.config.encoder.kind == "cnn":
            model = model.to(memory_format=torch.channels_last)
        regularizer = build_regularizer(cfg.regularizer, cfg.sigreg_directions, cfg.seed)
        ema = None
        if cfg.regularizer == "ema":
            ema = copy.deepcopy(model.encoder).requires_grad_(False)
        pixel_dim = model.config.encoder.embed_dim
        state_head = (
            StateHead(ds.states, ds.env_name, pixel_dim).to(rt.device)
            if cfg.state_aux > 0
            else None
        )
        recon = recon_decoder(pixel_dim, ds.image_size).to(rt.device) if cfg.recon > 0 else None
        # Training-only modules: trained and resumed with the model, never in its checkpoint.
        extras = {k: m for k, m in (("state_head", state_head), ("recon", recon)) if m is not None}
        loss = JEPALoss(
            model,
            regularizer,
            cfg.lam,
            cfg.rollout_weight,
            cfg.rollout,
            ema,
            augment=AUGMENTS[cfg.augment],
            invariance=cfg.invariance,
            seed=cfg.seed,
            state_head=state_head,
            state_aux=cfg.state_aux,
            recon_decoder=recon,
            recon=cfg.recon,
        )
        loss = loss.to(rt.device)

        # Step 3. The task the trainer runs: EMA follows the encoder, held-out scores at
        # checkpoints, what config.json records.
        def validate(step: int) -> dict[str, float]:
            if val_ds is None:
                return {}
            scores = heldout_scores(model, val_ds, cfg.val_windows, cfg.rollout)
            health = {k[4:]: v for k, v in scores.items() if k[4:] in ("std_mean", "eff_rank")}
            problems = collapse_problems(health, model.embed_dim)
            if problems:
                tqdm.write(
                    f"warning: embedding looks collapsed at step {step}: " + "; ".join(problems)
                )
            return scores

        manifest = ds.manifest
        task = TrainTask(
            kind="reverie-world-model",
            module=model,
            loss=loss,
            data=ds,
            params=None
            if not extras
            else [*model.parameters(), *(p for m in extras.values() for p in m.parameters())],
            samples_per_item=cfg.history + cfg.rollout,
            validate=validate,
            after_step=None
            if ema is None
            else lambda step: _ema_update(ema, model.encoder, cfg.ema_momentum),
            log_extra=batch_health,
            state=None if ema is None and not extras else lambda: _extra_state(ema, extras),
            load_state=None
            if ema is None and not extras
            else lambda s: _load_extra_state(ema, extras, s, cfg.out),
            resume_key=cfg.resume_key(),
            meta={
                "env": ds.env_name,
                "manifest_hash": ds.manifest_hash,
                "env_id": manifest.get("env_id"),
                "action_space": manifest.get("action_space"),
                "data": {
                    "path": str(cfg.data),
                    "episodes": manifest.get("episodes"),
                    "settings": manifest.get("settings"),
                    "val_episodes": val_ids,
                },
                "train": cfg.to_json(),
                # The strengths behind the --augment name, as this run applied them.
                "augment": dataclasses.asdict(AUGMENTS[cfg.augment]),
            },
        )
        return fit(task, loop, cfg.out, rt, resume=cfg.resume, on_step=on_step).out


def proprio_indices(data: Path) -> tuple[int, ...]:
    """The state entries a proprio model of ``data``'s env senses; refuses envs without any."""
    from reverie.data.format import load_manifest
    from reverie.envs import env_class
    from reverie.io import ReverieError

    manifest = load_manifest(data)
    klass = env_class(manifest["env"])
    indices = klass.proprio_indices(int(manifest.get("state_dim") or 0))
    if not indices:
        raise ReverieError(
            f"--proprio: {manifest['env']} has no proprioception (its whole state is the "
            "agent's own, so it would hand the model the answer)"
        )
    return indices


def _split_episodes(root: Path, fraction: float) -> tuple[list[int], list[int]]:
    from reverie.data.format import load_manifest

    ids = sorted(e for shard in load_manifest(root)["shards"] for e in shard["episodes"])
    n_val = 0 if len(ids) < 2 or fraction == 0 else max(1, round(fraction * len(ids)))
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


@torch.no_grad()
def _ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    for t, o in zip(target.parameters(), online.parameters()):
        t.lerp_(o, 1 - momentum)
    for t, o in zip(target.buffers(), online.buffers()):
        t.copy_(o)


def recon_decoder(embed_dim: int, image_size: int) -> nn.Module:
    """``--recon``'s decoder: frames at the largest power of two <= min(image_size, 64)."""
    from reverie.models.decoder import Decoder, DecoderConfig

    size = min(64, 1 << (int(image_size).bit_length() - 1))
    stages = max(1, size.bit_length() - 3)  # one doubling per stage from 4 px
    return Decoder(DecoderConfig(embed_dim, size, tuple(max(8, 64 >> i) for i in range(stages))))


def _extra_state(ema: nn.Module | None, extras: dict[str, nn.Module]) -> dict[str, Any]:
    """Resumable training-only modules: the EMA target encoder, the auxiliary heads."""
    out: dict[str, Any] = {name: m.state_dict() for name, m in extras.items()}
    if ema is not None:
        out["ema"] = ema.state_dict()
    return out


def _load_extra_state(
    ema: nn.Module | None, extras: dict[str, nn.Module], state: Any, out: Path
) -> None:
    if ema is not None:
        _load_ema(ema, state, out)
    for name, module in extras.items():
        if not state or state.get(name) is None:
            from reverie.io import ReverieError

            flag = {"state_head": "--state-aux", "recon": "--recon"}[name]
            raise ReverieError(f"cannot resume {out} with {flag}: its weights are not saved")
        module.load_state_dict(state[name])


def _load_ema(ema: nn.Module, state: Any, out: Path) -> None:
    if not state or state.get("ema") is None:
        from reverie.io import ReverieError

        raise ReverieError(f"cannot resume {out} with --regularizer ema: no EMA state")
    ema.load_state_dict(state["ema"])


if __name__ == "__main__":
    import sys

    from reverie.cli import main

    raise SystemExit(main(["train", *sys.argv[1:]]))
