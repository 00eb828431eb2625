"""Gradient planner: Adam on the action sequence, back-propagating the cost through the predictor.

N sequences per problem are optimised in parallel from different starts (candidate 0 is the warm
start or the bounds' centre, the rest add Gaussian noise), and the cheapest sequence seen at any
iteration is returned. Bounds are kept by clipping after each step (projected gradient, the
default: optima often sit on a bound, e.g. full speed, where a tanh squash's gradient vanishes
and Adam crawls) or by a tanh squash (``a = centre + half_range * tanh(u)``). The objective
must be differentiable: ``LatentGoalObjective(..., differentiable=True)``.

    planner = GradientPlanner(GradientConfig(), action_dim=model.action_dim)
    actions, info = planner.plan(LatentGoalObjective(model, z_ctx, z_goal, differentiable=True))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from reverie.planning.objective import Objective, SeededPlanner, check_bounds, start_mean

SQUASHES = ("tanh", "clip")


@dataclass(frozen=True)
class GradientConfig:
    """Settings of the gradient planner."""

    samples: int = 16
    """N: sequences optimised in parallel per problem (random restarts)."""
    iterations: int = 100
    """Adam steps per replan."""
    lr: float = 0.1
    """Adam learning rate (on the unsquashed parameters)."""
    horizon: int = 5
    """H: planned model steps."""
    init_std: float = 0.5
    """Std of the Gaussian noise added to the start for candidates 1..N-1."""
    squash: str = "clip"
    """How bounds are kept: ``clip`` projects after each step, ``tanh`` reparameterises."""
    action_low: float = -1.0
    """Lower action bound."""
    action_high: float = 1.0
    """Upper action bound."""
    seed: int = 0
    """Seed of the planner's own generator."""

    def __post_init__(self) -> None:
        for name in ("samples", "iterations", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"gradient planner {name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.init_std < 0:
            raise ValueError(
                f"gradient planner needs lr > 0 and init_std >= 0, got {self.lr}, {self.init_std}"
            )
        if self.squash not in SQUASHES:
            raise ValueError(f"squash must be one of {SQUASHES}, got {self.squash!r}")
        check_bounds(self.action_low, self.action_high)


class GradientPlanner(SeededPlanner):
    """Adam over N parallel action sequences; ``plan`` returns the best one seen (B, H, A')."""

    def plan(
        self, objective: Objective, init_mean: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        """Optimise; ``init_mean`` (B, H, A') is candidate 0's start. Returns (actions, info)."""
        c = self.config
        if not getattr(objective, "differentiable", True):
            raise ValueError(
                "the gradient planner needs a differentiable objective "
                "(e.g. LatentGoalObjective(..., differentiable=True))"
            )
        centre, half = (c.action_low + c.action_high) / 2, (c.action_high - c.action_low) / 2
        mean = start_mean(
            objective, init_mean, c.horizon, self.action_dim, c.action_low, c.action_high
        )  # (B, H, A)
        B, H, A = mean.shape
        N = c.samples
        gen = self.generators(mean.device)
        # Step 1. N starts per problem: the mean itself, then noisy copies, clipped to the bounds.
        noise = torch.randn((B, N, H, A), generator=gen, device=mean.device) * c.init_std
        noise[:, 0] = 0
        start = (mean[:, None] + noise).clamp(c.action_low, c.action_high)  # (B, N, H, A)

        def to_actions(u: Tensor) -> Tensor:
            return centre + half * torch.tanh(u) if c.squash == "tanh" else u

        if c.squash == "tanh":  # invert the squash; stay off ±1 where atanh is infinite
            limit = math.tanh(3.0)
            u0 = torch.atanh(((start - centre) / half).clamp(-limit, limit))
        else:
            u0 = start
        u = u0.detach().clone().requires_grad_(True)
        # Adam written out (the standard bias-corrected update): constructing torch.optim.Adam
        # costs ~2 s of imports in a fresh process, more than a whole replan.
        m1, m2 = torch.zeros_like(u), torch.zeros_like(u)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        best_cost = torch.full((B,), float("inf"), device=mean.device)
        best = mean.clone()  # (B, H, A)
        best_hist, mean_hist = [], []
        with torch.enable_grad():
            for t in range(1, c.iterations + 1):
                # Step 2. cost of every sequence; each depends only on its own actions, so one
                # backward of the sum gives every sequence its own gradient.
                actions = to_actions(u)  # (B, N, H, A)
                costs = objective(actions)  # (B, N)
                if costs.shape != (B, N):
                    raise ValueError(
                        f"objective returned {tuple(costs.shape)}, expected ({B}, {N})"
                    )
                if not costs.requires_grad:
                    raise ValueError(
                        "objective costs carry no gradient; build it with differentiable=True"
                    )
                # Step 3. remember the best sequence seen so far (scored before this step).
                with torch.no_grad():
                    cmin, idx = costs.min(1)  # (B,)
                    better = cmin < best_cost
                    best_cost = torch.where(better, cmin, best_cost)
                    chosen = actions[torch.arange(B, device=mean.device), idx]  # (B, H, A)
                    best = torch.where(better[:, None, None], chosen, best)
                    best_hist.append(best_cost.mean())
                    mean_hist.append(costs.mean())
                # Step 4. Adam step; autograd.grad leaves the model's parameter .grad untouched.
                (grad,) = torch.autograd.grad(costs.sum(), [u])
                with torch.no_grad():
                    m1.mul_(beta1).add_(grad, alpha=1 - beta1)
                    m2.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    step = c.lr * (m1 / (1 - beta1**t)) / ((m2 / (1 - beta2**t)).sqrt() + eps)
                    u.sub_(step)
                    if c.squash == "clip":
                        u.clamp_(c.action_low, c.action_high)
            with torch.no_grad():  # the final step's result has not been scored yet
                actions = to_actions(u)
                cmin, idx = objective(actions).min(1)
                better = cmin < best_cost
                best_cost = torch.where(better, cmin, best_cost)
                best = torch.where(
                    better[:, None, None], actions[torch.arange(B, device=mean.device), idx], best
                )
        info = {
            "best_cost": torch.stack(best_hist).tolist(),  # best seen so far, averaged over B
            "mean_cost": torch.stack(mean_hist).tolist(),  # mean over the N sequences
            "final_best_cost": float(best_cost.mean()),
        }
        return best.detach().clamp(c.action_low, c.action_high), info
