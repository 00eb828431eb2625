"""A goal-conditioned policy on frozen world-model embeddings: (last k embeddings, goal) → action.

    policy = GoalPolicy(PolicyConfig(embed_dim=64, action_dim=10, history=3))
    action = policy(z_hist, z_goal)     # (B, k, D), (B, D) -> (B, A') within the action bounds

The input is the flattened history, the goal and the goal minus the newest embedding (the
direction still to travel, which the network would otherwise have to learn to subtract). An MLP
with LayerNorm maps it to ``tanh`` outputs rescaled into ``[action_low, action_high]``, so every
action it emits is one the env accepts. One forward pass is a few small matmuls: the policy is what
acts when there is no time to search.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class PolicyConfig:
    """Everything needed to rebuild a policy (saved as JSON in its checkpoint)."""

    embed_dim: int
    """D: the world model's embedding size."""
    action_dim: int
    """A': the model's action block (raw action size × frameskip)."""
    history: int = 1
    """k: embeddings of past frames the policy sees (newest last)."""
    hidden: int = 256
    """Width of the hidden layers."""
    depth: int = 3
    """Hidden layers."""
    action_low: float = -1.0
    """Lower bound of every action component."""
    action_high: float = 1.0
    """Upper bound of every action component."""

    def __post_init__(self) -> None:
        for name in ("embed_dim", "action_dim", "history", "hidden", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"policy {name} must be an integer >= 1, got {value!r}")
        if not (math.isfinite(self.action_low) and math.isfinite(self.action_high)):
            raise ValueError("policy action bounds must be finite")
        if self.action_low >= self.action_high:
            raise ValueError(
                f"policy action_low {self.action_low} must be < action_high {self.action_high}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> PolicyConfig:
        if not isinstance(d, dict):
            raise ValueError(f"policy config must be an object, got {d!r}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"policy config has unknown keys: {sorted(unknown)}")
        return cls(**d)


class GoalPolicy(nn.Module):
    """(z_hist (B, k, D), z_goal (B, D)) → action block (B, A') in the configured bounds."""

    config_class = PolicyConfig

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        D, k = config.embed_dim, config.history
        layers: list[nn.Module] = []
        width = (k + 2) * D
        for _ in range(config.depth):
            layers += [nn.Linear(width, config.hidden), nn.LayerNorm(config.hidden), nn.SiLU()]
            width = config.hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, config.action_dim)
        # Start near the middle of the action range: small first actions, not saturated ones.
        nn.init.zeros_(self.head.bias)
        nn.init.normal_(self.head.weight, std=0.01)
        self.register_buffer("low", torch.tensor(config.action_low), persistent=False)
        self.register_buffer("high", torch.tensor(config.action_high), persistent=False)

    @property
    def history(self) -> int:
        return self.config.history

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    def forward(self, z_hist: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        B, k, D = z_hist.shape
        if (k, D) != (self.config.history, self.config.embed_dim) or z_goal.shape != (B, D):
            c = self.config
            raise ValueError(
                f"policy expects z_hist (B, {c.history}, {c.embed_dim}) and z_goal "
                f"(B, {c.embed_dim}); got {tuple(z_hist.shape)}, {tuple(z_goal.shape)}"
            )
        z_hist, z_goal = z_hist.float(), z_goal.float()
        x = torch.cat([z_hist.reshape(B, k * D), z_goal, z_goal - z_hist[:, -1]], dim=-1)
        unit = torch.tanh(self.head(self.body(x)))  # (B, A') in (-1, 1)
        return self.low + (self.high - self.low) * (unit + 1) / 2
