"""Cross-entropy method (CEM): Reverie's default planner, batched over B problems and N candidates.

Each iteration samples N action sequences around a Gaussian (mean, std) per problem, scores them
with the objective, and refits the Gaussian to the ``elites`` lowest-cost sequences. The defaults
are the public latent-planning protocol's (300 samples, 30 iterations, top 30, horizon 5) so
success rates compare with published numbers.

    planner = CEM(CEMConfig(), action_dim=model.action_dim)
    actions, info = planner.plan(objective, init_mean=None)   # actions (B, H, A')
    info["elite_cost"], info["best_cost"], info["std"]        # one float per iteration
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from reverie.planning.objective import Objective, SeededPlanner, check_bounds, start_mean


@dataclass(frozen=True)
class CEMConfig:
    """Settings of the cross-entropy method."""

    samples: int = 300
    """N: candidate sequences scored per iteration (per problem)."""
    iterations: int = 30
    """Refits of the sampling distribution per replan."""
    elites: int = 30
    """How many lowest-cost candidates the distribution is refit to."""
    horizon: int = 5
    """H: planned model steps (each is one action block of ``frameskip`` env steps)."""
    init_std: float = 1.0
    """Starting standard deviation of the sampling distribution."""
    warm_std: float | None = None
    """Starting std when warm-started (``init_mean`` given); None = ``init_std``. Smaller trusts
    the previous plan more and converges in fewer iterations, at the cost of exploration."""
    min_std: float = 0.05
    """Floor on the std, so late iterations keep exploring instead of collapsing to a point."""
    momentum: float = 0.0
    """Fraction of the previous mean/std kept at each refit (0 = plain CEM)."""
    action_low: float = -1.0
    """Lower action bound; candidates are clipped into [action_low, action_high]."""
    action_high: float = 1.0
    """Upper action bound."""
    include_mean: bool = True
    """Score the current mean as candidate 0, so a good warm start can never be lost."""
    seed: int = 0
    """Seed of the planner's own generator (global RNG is never used)."""

    def __post_init__(self) -> None:
        for name in ("samples", "iterations", "elites", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"CEM {name} must be >= 1, got {getattr(self, name)}")
        if self.elites > self.samples:
            raise ValueError(f"CEM elites ({self.elites}) must be <= samples ({self.samples})")
        if self.elites < 2:
            raise ValueError(f"CEM elites must be >= 2 to estimate a std, got {self.elites}")
        if self.warm_std is not None and not self.warm_std > 0:
            raise ValueError(f"CEM warm_std must be > 0 or None, got {self.warm_std}")
        if not self.init_std > 0 or self.min_std < 0:
            raise ValueError(
                f"CEM needs init_std > 0 and min_std >= 0, got {self.init_std}, {self.min_std}"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"CEM momentum must be in [0, 1), got {self.momentum}")
        check_bounds(self.action_low, self.action_high)


class CEM(SeededPlanner):
    """Cross-entropy method over action sequences; ``plan`` returns the final mean (B, H, A')."""

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
        N, E = c.samples, c.elites
        gen = self.generators(mean.device)
        warm = init_mean is not None and c.warm_std is not None
        std = torch.full_like(mean, c.warm_std if warm else c.init_std)  # (B, H, A)
        noise = torch.empty((B, N, H, A), device=mean.device)  # reused every iteration
        elite_cost, best_cost, mean_std = [], [], []
        for _ in range(c.iterations):
            # Step 1. sample N candidates around the current Gaussian, clipped to the bounds.
            noise.normal_(generator=gen)
            candidates = torch.addcmul(mean[:, None], std[:, None], noise)  # (B, N, H, A)
            candidates.clamp_(c.action_low, c.action_high)
            if c.include_mean:
                candidates[:, 0] = mean
            # Step 2. score them and keep the E cheapest per problem.
            costs = objective(candidates)  # (B, N)
            if costs.shape != (B, N):
                raise ValueError(f"objective returned {tuple(costs.shape)}, expected ({B}, {N})")
            top_cost, top_idx = torch.topk(costs, E, dim=1, largest=False)  # (B, E)
            elites = torch.gather(
                candidates, 1, top_idx[:, :, None, None].expand(B, E, H, A)
            )  # (B, E, H, A)
            # Step 3. refit the Gaussian to the elites (optionally smoothed by momentum).
            new_mean, new_std = elites.mean(1), elites.std(1).clamp_min(c.min_std)
            mean = c.momentum * mean + (1 - c.momentum) * new_mean
            std = c.momentum * std + (1 - c.momentum) * new_std
            elite_cost.append(top_cost.mean())
            best_cost.append(top_cost[:, 0].mean())
            mean_std.append(std.mean())
        info = {
            "elite_cost": torch.stack(elite_cost).tolist(),  # mean elite cost, averaged over B
            "best_cost": torch.stack(best_cost).tolist(),  # cheapest candidate, averaged over B
            "std": torch.stack(mean_std).tolist(),  # mean sampling std after the refit
        }
        return mean, info
