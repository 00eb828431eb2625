"""Policies as planners: the MPC loop, ``reverie eval``, ``reverie plan`` and the viewer use them
like CEM.

    policy, info = load_policy("runs/tworoom/policy", world_model_meta)
    planner = PolicyPlanner(policy, model, horizon=5)                    # no search at all
    planner = PolicySeededCEM(policy, model, CEMConfig(iterations=5))  # the policy seeds CEM

Both read the current embeddings and the goal from the ``LatentGoalObjective`` that
``LatentGoalFactory`` builds at each replan (the encoding is shared with CEM, so timings compare).
``PolicyPlanner`` answers with the policy's action for the current state; with ``imagine=True``
it also rolls the policy through the predictor for the rest of the horizon (the plan the viewer
draws and ``PolicySeededCEM`` starts from). ``PolicySeededCEM`` runs CEM from that rollout with a
narrower starting spread, so a few refits polish what the policy proposes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from reverie.io import ReverieError
from reverie.models.world_model import pad_history
from reverie.planning.cem import CEM, CEMConfig
from reverie.policies.model import GoalPolicy


def load_policy(
    path: str | Path,
    model_meta: dict[str, Any],
    device: str | torch.device = "cpu",
) -> tuple[GoalPolicy, dict[str, Any]]:
    """The policy run at ``path`` (eval mode) and its metadata, checked against a world model.

    Refused with a one-line error: a run that is not a policy, a policy trained on another env,
    or one trained on other world-model weights (their sha256 differs).
    """
    from reverie.checkpoint import checkpoint_kind, load_module
    from reverie.policies.train import KIND

    path = Path(path)
    if checkpoint_kind(path) != KIND:
        found = checkpoint_kind(path)
        what = f"it holds a {found}" if found else "no policy checkpoint there"
        raise ReverieError(
            f"{path} is not a policy run ({what}): train one with "
            f"`reverie policy train --checkpoint RUN`"
        )
    policy, info = load_module(path, KIND, device)
    assert isinstance(policy, GoalPolicy)
    env, trained_on = model_meta.get("env"), info.get("env")
    if env is not None and trained_on != env:
        raise ReverieError(f"policy {path} was trained on {trained_on!r}, not {env!r}")
    want = (model_meta.get("files") or {}).get("model.safetensors")
    if info.get("world_model_sha256") != want:
        raise ReverieError(
            f"policy {path} was trained for other world-model weights ({info.get('world_model')}"
            f" at step {info.get('world_model_step')}): retrain it with `reverie policy train "
            f"--checkpoint RUN --overwrite`"
        )
    return policy.eval(), info


def policy_rollout(
    policy: GoalPolicy,
    model: Any,
    z_context: Tensor,
    z_goal: Tensor,
    horizon: int,
    imagine: bool = True,
) -> Tensor:
    """Actions (B, H, A'): the policy's action now and, with ``imagine``, at each imagined state
    of its own rollout through the predictor (else the first action repeated)."""
    window = pad_history(z_context, policy.history)[:, -policy.history :]  # (B, k, D)
    first = policy(window, z_goal)  # (B, A')
    if not imagine or horizon == 1:
        return first[:, None].expand(-1, horizon, -1)
    actions = [first]
    for _ in range(horizon - 1):
        z_next = model.predict(window, actions[-1].to(window.dtype))  # (B, D)
        window = torch.cat([window[:, 1:], z_next[:, None].to(window.dtype)], dim=1)
        actions.append(policy(window, z_goal))
    return torch.stack(actions, dim=1)  # (B, H, A')


def _latents(objective: Any) -> tuple[Tensor, Tensor]:
    if not (hasattr(objective, "z_context") and hasattr(objective, "z_goal")):
        raise ValueError("a policy plans from a latent objective (LatentGoalFactory)")
    return objective.z_context, objective.z_goal


@dataclass(frozen=True)
class PolicyPlannerConfig:
    """What ``PolicyPlanner`` was built with (recorded in eval results)."""

    horizon: int
    imagine: bool


class PolicyPlanner:
    """A ``Planner`` that asks the policy instead of searching (deterministic: no seed used)."""

    def __init__(self, policy: GoalPolicy, model: Any, horizon: int, imagine: bool = False):
        if policy.action_dim != model.action_dim:
            raise ReverieError(
                f"policy action size {policy.action_dim} != model's {model.action_dim}"
            )
        self.policy, self.model, self.horizon, self.imagine = policy, model, horizon, imagine
        self.action_dim = policy.action_dim
        self.config = PolicyPlannerConfig(horizon, imagine)

    def plan(
        self, objective: Any, init_mean: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        z_context, z_goal = _latents(objective)
        with torch.inference_mode():
            actions = policy_rollout(
                self.policy, self.model, z_context, z_goal, self.horizon, self.imagine
            )
        return actions.float(), {}


class PolicySeededCEM:
    """CEM started from the policy's imagined rollout (``warm_std`` spread) at every replan."""

    def __init__(self, policy: GoalPolicy, model: Any, config: CEMConfig):
        if policy.action_dim != model.action_dim:
            raise ReverieError(
                f"policy action size {policy.action_dim} != model's {model.action_dim}"
            )
        self.policy, self.model = policy, model
        self.cem = CEM(config, policy.action_dim)
        self.config = config
        self.horizon, self.action_dim = config.horizon, policy.action_dim

    def reseed(self, seed: int) -> None:
        self.cem.reseed(seed)

    def plan(
        self, objective: Any, init_mean: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        z_context, z_goal = _latents(objective)
        with torch.inference_mode():
            seed = policy_rollout(self.policy, self.model, z_context, z_goal, self.horizon)
        return self.cem.plan(objective, init_mean=seed.float())


@torch.inference_mode()
def imagined_episode(
    policy: GoalPolicy,
    model: Any,
    frames: list[np.ndarray],
    goal_frame: np.ndarray,
    blocks: int,
    radius: float,
) -> dict[str, Any]:
    """The episode as the model imagines it: the policy acts on its own predictions for
    ``blocks`` steps from the encoded start ``frames`` (uint8 (Hi, Wi, 3), oldest first).

    Success is coming within the latent ``radius`` of the goal embedding at any step (the
    policy run's ``success_radius``); compare it with the real episode's success to see how much
    the policy exploits the model's errors.
    """
    obs = torch.from_numpy(rearrange(np.stack([*frames, goal_frame]), "t h w c -> t c h w").copy())
    z = model.encode(obs.to(next(model.parameters()).device)).float()  # (k'+1, D)
    window = pad_history(z[None, :-1], policy.history)[:, -policy.history :]  # (1, k, D)
    z_goal = z[None, -1]
    distances = []
    for _ in range(blocks):
        z_next = model.predict(window, policy(window, z_goal)).float()  # (1, D)
        distances.append(float((z_next - z_goal).pow(2).sum()))
        window = torch.cat([window[:, 1:], z_next[:, None].to(window.dtype)], dim=1)
    best = min(distances)
    return {"imagined_success": bool(best <= radius), "imagined_min_distance": round(best, 4)}
