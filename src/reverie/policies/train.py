"""Train a goal-conditioned policy on a frozen world model: ``reverie policy train``.

    reverie policy train --checkpoint runs/tworoom                    # -> runs/tworoom/policy
    reverie policy train --checkpoint runs/tworoom --method idm --out runs/tworoom/policy-idm

Both methods start from the world model's own dataset, encoded once by its frozen encoder.
Every training sample is a *hindsight* pair: a frame ``s`` of an episode (with its k-frame
history, frameskip apart), the frame ``Δ`` model steps later as the goal (Δ in 1..``max_gap``),
and the action block the data actually took at ``s``.

- ``idm``: goal-conditioned inverse dynamics / behaviour cloning: regress the action block taken
  at ``s`` (the GC-IDM / GCBC baseline every peer reports).
- ``imagine``: learning in the model's imagination. From the real history, the policy acts for
  ``imagine_horizon`` steps *through the frozen predictor* (its own predictions fed back in) and is
  trained to shrink the summed squared latent distance to the goal, the cost CEM minimises; the
  gradient flows through the predictor into the policy (pathwise, no critic). The hindsight term
  (weight ``bc_weight``) anchors it to actions the data shows are real, so it cannot drift to
  actions that only fool the model.

The world model is never updated: it is loaded eval, with ``requires_grad`` off, and only the
policy's parameters reach the optimizer. The run is a checkpoint in the one layout (kind
``reverie-policy``) recording the world model's path and weight checksum, its env, and a latent
success radius measured on the data (for the imagined-success figure of ``reverie eval``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reverie.io import ReverieError
from reverie.policies.model import GoalPolicy, PolicyConfig

KIND = "reverie-policy"
POLICY_DIR = "policy"
METHODS = ("idm", "imagine")


@dataclass(frozen=True)
class PolicyTrainConfig:
    """Train a goal-conditioned policy for a world-model checkpoint (the model stays frozen)."""

    checkpoint: Path
    """Run directory of the trained world model."""
    method: str = "idm"
    """idm (hindsight inverse dynamics, the default: on Two-Room 94% real success against 80% for
    imagine, which reached 100% success in imagination, i.e. exploited the model) | imagine
    (through the frozen predictor, anchored by hindsight labels). BENCHMARKS.md has both."""
    out: Path | None = None
    """The policy's run directory (default: CHECKPOINT/policy)."""
    data: Path | None = None
    """Dataset; None: the one recorded in the checkpoint."""
    steps: int = 3000
    """Optimizer steps (an upper bound with --minutes)."""
    batch_size: int = 256
    """Hindsight pairs per step."""
    lr: float = 1e-3
    """Peak AdamW learning rate (warmup, cosine to 10%)."""
    max_gap: int = 10
    """Goals are 1..max_gap model steps after the frame they are paired with."""
    imagine_horizon: int = 5
    """imagine: steps the policy acts through the predictor per sample (CEM plans 5)."""
    bc_weight: float = 1.0
    """imagine: weight of the hindsight action term beside the imagined goal cost."""
    hidden: int = 256
    """Width of the policy's hidden layers."""
    depth: int = 3
    """Hidden layers of the policy."""
    minutes: float | None = None
    """Wall-clock budget of the loop (the schedule follows it)."""
    seed: int = 0
    """Seed of the policy's initial weights and of batch sampling."""
    precision: str = "fp32"
    """fp32 | bf16 | auto (the policy is small; fp32 is as fast)."""
    device: str = "auto"
    """auto (cuda if available) | cpu | cuda."""
    threads: int | None = 1
    """torch CPU threads (None: torch's default). The policy's matmuls are small: on a loaded
    2-core machine one thread ran an imagine step in 115 ms, two in 0.5-5 s (spin-waiting)."""
    resume: bool = False
    """Continue the policy run in --out."""
    overwrite: bool = False
    """Replace the policy in --out."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        from reverie.trainer import check_choice, check_frozen_run

        check_frozen_run(self)
        check_choice("method", self.method, METHODS)
        for name in ("steps", "batch_size", "max_gap", "imagine_horizon", "hidden", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value}")
        if not (math.isfinite(self.bc_weight) and self.bc_weight >= 0):
            raise ValueError(f"--bc-weight must be finite and >= 0, got {self.bc_weight}")

    def to_json(self) -> dict[str, Any]:
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }

    def run_dir(self) -> Path:
        return self.out if self.out is not None else self.checkpoint / POLICY_DIR


# ------------------------------------------------------------------------------ hindsight pairs
class GoalPairs:
    """Every (frame s, goal s + Δ·frameskip) pair of a dataset's episodes, over frozen embeddings.

    ``get_batch(idx)`` returns ``z_hist`` (B, k, D) (frames s-(k-1)·fs .. s, clamped at the
    episode's first frame, as the model pads), ``z_goal`` (B, D), ``action`` (B, A') (the raw
    actions s .. s+fs-1 concatenated, the dataset's order) and ``gap`` (B,) in model steps. The
    pairs are enumerated once, so an index always names the same pair (resume is exact).
    """

    def __init__(
        self,
        z: torch.Tensor,
        actions: torch.Tensor,
        lengths: list[int],
        history: int,
        frameskip: int,
        max_gap: int,
    ) -> None:
        self.z, self.actions = z, actions  # (F, D), (F, A) (the last action of an episode: pad)
        self.history, self.frameskip = history, frameskip
        src, gap, first = [], [], []
        offset = 0
        for n in lengths:  # n frames, n - 1 actions
            for d in range(1, max_gap + 1):
                # s needs its action block (s + fs <= n - 1) and its goal (s + d·fs <= n - 1).
                last = n - 1 - max(frameskip, d * frameskip)
                if last < 0:
                    break
                s = np.arange(last + 1)
                src.append(offset + s)
                gap.append(np.full(len(s), d))
                first.append(np.full(len(s), offset))
            offset += n
        if not src:
            raise ReverieError(
                f"episodes are too short for a goal {frameskip} env steps ahead (frameskip)"
            )
        self.src = torch.from_numpy(np.concatenate(src)).long()  # (P,)
        self.gap = torch.from_numpy(np.concatenate(gap)).long()  # (P,)
        self.first = torch.from_numpy(np.concatenate(first)).long()  # (P,)
        self._hist = torch.arange(-(history - 1), 1) * frameskip  # (k,) offsets, oldest first
        self._acts = torch.arange(frameskip)  # (fs,)

    def __len__(self) -> int:
        return len(self.src)

    def get_batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        s, gap, first = self.src[idx], self.gap[idx], self.first[idx]  # (B,)
        hist = torch.maximum(s[:, None] + self._hist[None], first[:, None])  # (B, k)
        acts = self.actions[s[:, None] + self._acts[None]]  # (B, fs, A)
        return {
            "z_hist": self.z[hist],
            "z_goal": self.z[s + gap * self.frameskip],
            "action": acts.reshape(len(idx), -1),  # (B, fs·A): "k a -> (k a)"
            "gap": gap,
        }


def imagined_costs(
    model: nn.Module, policy: nn.Module, z_hist: torch.Tensor, z_goal: torch.Tensor, horizon: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Roll ``policy`` through the predictor for ``horizon`` steps from real histories.

    Returns per-step squared latent distances to the goal (B, H) and the first actions (B, A').
    Differentiable with respect to the policy (the predictor's weights may be frozen).
    """
    window, costs, first = z_hist, [], None
    for _ in range(horizon):
        action = policy(window, z_goal)  # (B, A')
        first = action if first is None else first
        z_next = model.predict(window, action)  # (B, D)
        costs.append((z_next.float() - z_goal.float()).pow(2).sum(-1))
        window = torch.cat([window[:, 1:], z_next[:, None].to(window.dtype)], dim=1)
    assert first is not None
    return torch.stack(costs, dim=1), first


class PolicyLoss(nn.Module):
    """The policy's training loss as the trainer sees it: a hindsight batch → terms."""

    def __init__(self, policy: GoalPolicy, model: nn.Module, cfg: PolicyTrainConfig) -> None:
        super().__init__()
        self.policy, self.cfg = policy, cfg
        self._model = [model]  # not a submodule: never saved, never trained, never in .train()

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        z_hist, z_goal, target = batch["z_hist"], batch["z_goal"], batch["action"]
        if self.cfg.method == "idm":
            bc = (self.policy(z_hist, z_goal) - target).pow(2).mean()
            return {"loss": bc, "bc": bc}
        costs, first = imagined_costs(
            self._model[0], self.policy, z_hist, z_goal, self.cfg.imagine_horizon
        )
        # Per embedding dimension, relative to where the sample started: goals far away do not
        # drown the near ones, and the scale does not depend on D.
        start = (z_hist[:, -1].float() - z_goal.float()).pow(2).sum(-1)  # (B,)
        imagine = (costs.mean(1) / (start + 1.0)).mean()
        bc = (first - target).pow(2).mean()
        return {"loss": imagine + self.cfg.bc_weight * bc, "imagine": imagine, "bc": bc}


def success_radius(
    env: Any, z: torch.Tensor, states: torch.Tensor, lengths: list[int], samples: int = 4000
) -> float:
    """Squared latent distance containing 90% of frame pairs the env counts as at the goal.

    Pairs are drawn within episodes, at most 10 frames apart; a pair counts when the env's own
    success test passes between its two true states. NaN when no sampled pair passes.
    """
    rng = np.random.default_rng(0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    found: list[float] = []
    for _ in range(samples):
        e = int(rng.integers(len(lengths)))
        i = int(rng.integers(lengths[e]))
        j = int(np.clip(i + rng.integers(-10, 11), 0, lengths[e] - 1))
        a, b = offsets[e] + i, offsets[e] + j
        if env.is_success(states[a].numpy(), states[b].numpy()):
            found.append(float((z[a] - z[b]).pow(2).sum()))
    return float(np.percentile(found, 90)) if found else float("nan")


def _episodes(data: Path, ids: list[int] | None) -> tuple[Any, list[int]]:
    from reverie.data.dataset import SequenceDataset

    ds = SequenceDataset(data, history=1, horizon=0, episodes=ids)
    lengths = [int(ds.episode(e)["obs"].shape[0]) for e in ds.episode_ids]
    return ds, lengths


def train_policy(cfg: PolicyTrainConfig) -> dict[str, Any]:
    """Train, score and save a policy run for ``cfg.checkpoint``; returns the report dict."""
    from reverie.checkpoint import load_checkpoint
    from reverie.data.splits import run_dataset, run_split
    from reverie.envs import make
    from reverie.models.decoder import frozen_embeddings
    from reverie.trainer import TrainTask, fit, loop_from, runtime

    t_start = time.perf_counter()
    loop = loop_from(cfg, weight_decay=1e-4, warmup=100, tensorboard=True, desc="policy")
    with runtime(loop) as rt:
        # Step 1. The world model, frozen for good.
        model, meta = load_checkpoint(cfg.checkpoint, rt.device)
        model.requires_grad_(False).eval()
        env_name = meta.get("env")
        if env_name is None:
            raise ReverieError(f"checkpoint {cfg.checkpoint} does not record its environment")

        # Step 2. The dataset's episodes, split as the world model split them, encoded once.
        data = run_dataset(cfg.checkpoint, cfg.data, meta)
        train_ids, val_ids, source = run_split(data, meta)
        ds, lengths = _episodes(data, train_ids)
        if ds.image_size != model.image_size:
            raise ReverieError(
                f"dataset {data} has {ds.image_size} px frames, the model expects "
                f"{model.image_size} px"
            )
        if ds.raw_action_dim * model.frameskip != model.action_dim:
            raise ReverieError(
                f"dataset {data} has {ds.raw_action_dim}-d actions; the model's blocks are "
                f"{model.action_dim} = {model.action_dim // model.frameskip} x frameskip"
            )
        z = frozen_embeddings(model, ds.obs.to(rt.device)).cpu()  # (F, D)
        pairs = GoalPairs(z, ds.actions, lengths, model.history, model.frameskip, cfg.max_gap)
        if val_ids is not None:
            vds, vlengths = _episodes(data, val_ids)
            vz = frozen_embeddings(model, vds.obs.to(rt.device)).cpu()
            val_pairs = GoalPairs(
                vz, vds.actions, vlengths, model.history, model.frameskip, cfg.max_gap
            )
        else:
            val_pairs = pairs
        env = make(env_name, size=model.image_size)
        radius = success_radius(env, z, ds.states, lengths)
        if hasattr(env, "close"):
            env.close()

        # Step 3. Policy and loss; the trainer runs the loop.
        torch.manual_seed(cfg.seed)
        pcfg = PolicyConfig(
            embed_dim=model.embed_dim,
            action_dim=model.action_dim,
            history=model.history,
            hidden=cfg.hidden,
            depth=cfg.depth,
            action_low=float(ds.manifest["action_space"]["low"][0]),
            action_high=float(ds.manifest["action_space"]["high"][0]),
        )
        policy = GoalPolicy(pcfg).to(rt.device)
        pick = torch.linspace(0, len(val_pairs) - 1, min(2048, len(val_pairs))).round().long()
        val_batch = {k: v.to(rt.device) for k, v in val_pairs.get_batch(pick).items()}

        def validate(step: int) -> dict[str, float]:
            return policy_scores(model, policy, val_batch, cfg.imagine_horizon, radius)

        task = TrainTask(
            kind=KIND,
            module=policy,
            loss=PolicyLoss(policy, model, cfg),
            data=pairs,
            validate=validate,
            resume_key={k: v for k, v in cfg.to_json().items() if k in _RESUME_KEYS},
            meta={
                "env": env_name,
                "manifest_hash": meta.get("manifest_hash"),
                "world_model": str(cfg.checkpoint),
                "world_model_sha256": (meta.get("files") or {}).get("model.safetensors"),
                "world_model_step": meta.get("step"),
                "frameskip": model.frameskip,
                "data": str(data),
                "split": {"train_pairs": len(pairs), "val_pairs": len(val_pairs), "val": source},
                "success_radius": radius,
                "method": cfg.method,
                "train": cfg.to_json(),
            },
        )
        out = cfg.run_dir()
        result = fit(task, loop, out, rt, resume=cfg.resume, overwrite=cfg.overwrite)
    report: dict[str, Any] = {**result.metrics, "steps": result.step, "method": cfg.method}
    report["train_pairs"], report["success_radius"] = len(pairs), radius
    report["seconds"] = round(time.perf_counter() - t_start, 2)
    report["loop_seconds"] = round(result.seconds, 2)
    report["path"] = str(out)
    return report


@torch.no_grad()
def policy_scores(
    model: nn.Module,
    policy: GoalPolicy,
    batch: dict[str, torch.Tensor],
    horizon: int,
    radius: float,
) -> dict[str, float]:
    """Held-out scores: action error against the data, and how near the policy gets in imagination.

    ``val/bc_mse``: squared error to the recorded action block; ``val/imagined_ratio``: median of
    the best imagined latent distance over ``horizon`` steps divided by the starting one (lower is
    better; 1 = no progress); ``val/imagined_success``: share of pairs (gap <= horizon) whose
    imagined rollout comes within the latent success radius.
    """
    was = policy.training
    policy.eval()
    costs, first = imagined_costs(model, policy, batch["z_hist"], batch["z_goal"], horizon)
    start = (batch["z_hist"][:, -1] - batch["z_goal"]).pow(2).sum(-1)  # (B,)
    best = costs.min(1).values  # (B,)
    near = batch["gap"] <= horizon
    scores = {
        "val/bc_mse": float((first - batch["action"]).pow(2).mean()),
        "val/imagined_ratio": float((best / start.clamp_min(1e-6)).median()),
    }
    if math.isfinite(radius) and bool(near.any()):
        scores["val/imagined_success"] = float((best[near] <= radius).float().mean())
    policy.train(was)
    return scores


#: Settings a resumed policy run must share.
_RESUME_KEYS = (
    "method",
    "steps",
    "batch_size",
    "lr",
    "max_gap",
    "imagine_horizon",
    "bc_weight",
    "hidden",
    "depth",
    "seed",
)
