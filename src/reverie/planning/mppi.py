"""Model-predictive path integral (MPPI): a softmax-weighted refit instead of CEM's hard elites.

Each iteration samples N sequences around the mean, turns their costs into weights
``softmax(-(cost - min) / (temperature * std(cost)))`` and moves the mean (and, if ``adapt_std``,
the std) to the weighted average. Costs are normalised by their spread per problem, so one
``temperature`` works whatever the scale of the objective (latent distances or simulator units).

    planner = MPPI(MPPIConfig(), action_dim=model.action_dim)
    actions, info = planner.plan(objective, init_mean=previous_plan_shifted)   # (B, H, A')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from reverie.planning.objective import Objective, SeededPlanner, check_bounds, start_mean


@dataclass(frozen=True)
class MPPIConfig:
    """Settings of MPPI."""

    samples: int = 300
    """N: candidate sequences scored per iteration (per problem)."""
    iterations: int = 30
    """Weighted refits per replan (classic MPPI does 1 per control step with a warm start)."""
    horizon: int = 5
    """H: planned model steps (each is one action block of ``frameskip`` env steps)."""
    temperature: float = 0.3
    """Softmax temperature on spread-normalised costs: lower is greedier."""
    noise_std: float = 1.0
    """Starting std of the sampling noise (and its ceiling when it adapts)."""
    warm_std: float | None = None
    """Starting std when warm-started (``init_mean`` given); None = ``noise_std``."""
    adapt_std: bool = True
    """Refit the std to the weighted spread each iteration (as TD-MPC2 does)."""
    min_std: float = 0.05
    """Floor on the std when it adapts."""
    action_low: float = -1.0
    """Lower action bound; candidates are clipped into [action_low, action_high]."""
    action_high: float = 1.0
    """Upper action bound."""
    include_mean: bool = True
    """Score the current mean as candidate 0."""
    seed: int = 0
    """Seed of the planner's own generator."""

    def __post_init__(self) -> None:
        for name in ("samples", "iterations", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"MPPI {name} must be >= 1, got {getattr(self, name)}")
        if not self.temperature > 0:
            raise ValueError(f"MPPI temperature must be > 0, got {self.temperature}")
        if self.warm_std is not None and not self.warm_std > 0:
            raise ValueError(f"MPPI warm_std must be > 0 or None, got {self.warm_std}")
        if not self.noise_std > 0 or self.min_std < 0:
            raise ValueError(
                f"MPPI needs noise_std > 0 and min_std >= 0, got {self.noise_std}, {self.min_std}"
            )
        check_bounds(self.action_low, self.action_high)


class MPPI(SeededPlanner):
    """MPPI over action sequences; ``plan`` returns the final weighted mean (B, H, A')."""

    @torch.no_grad()
    def plan(
        self, objective: Objective, init_mean: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        """Search; ``init_mean`` (B, H, A') warm-starts the mean. Returns (actions, info)."""
        c = self.config
        mean = start_mean(
            objective, init_mean, c.horizon, self.action_dim, c.action_low, c.action_high
        )  # (B, H, A)
        B, H, A = mean.shape
        N = c.samples
        gen = self.generators(mean.device)
        warm = init_mean is not None and c.warm_std is not None
        std = torch.full_like(mean, c.warm_std if warm else c.noise_std)  # (B, H, A)
        noise = torch.empty((B, N, H, A), device=mean.device)
        weighted_cost, best_cost, mean_std = [], [], []
        for _ in range(c.iterations):
            # Step 1. sample around the mean, clipped to the bounds.
            noise.normal_(generator=gen)
            candidates = torch.addcmul(mean[:, None], std[:, None], noise)  # (B, N, H, A)
            candidates.clamp_(c.action_low, c.action_high)
            if c.include_mean:
                candidates[:, 0] = mean
            # Step 2. costs -> weights; normalising by the spread makes temperature scale-free.
            costs = objective(candidates).float()  # (B, N)
            if costs.shape != (B, N):
                raise ValueError(f"objective returned {tuple(costs.shape)}, expected ({B}, {N})")
            low = costs.min(1, keepdim=True).values  # (B, 1)
            spread = costs.std(1, keepdim=True).clamp_min(1e-8)  # (B, 1)
            weights = torch.softmax(-(costs - low) / (c.temperature * spread), dim=1)  # (B, N)
            # Step 3. move the mean (and std) to the weighted statistics.
            w = weights[:, :, None, None]  # (B, N, 1, 1)
            mean = (w * candidates).sum(1)  # (B, H, A)
            if c.adapt_std:
                var = (w * (candidates - mean[:, None]).pow(2)).sum(1)
                std = var.sqrt().clamp(c.min_std, c.noise_std)
            weighted_cost.append((weights * costs).sum(1).mean())
            best_cost.append(low.mean())
            mean_std.append(std.mean())
        info = {
            "weighted_cost": torch.stack(weighted_cost).tolist(),  # softmax-weighted mean cost
            "best_cost": torch.stack(best_cost).tolist(),  # cheapest candidate, averaged over B
            "std": torch.stack(mean_std).tolist(),  # mean sampling std after the update
        }
        return mean, info
