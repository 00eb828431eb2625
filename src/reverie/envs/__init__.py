"""Environment registry: short names (CLI) ↔ Gymnasium ids ↔ classes, imported lazily.

from reverie.envs import make, ENV_NAMES
env = make("tworoom", size=64)       # same as gym.make("reverie/TwoRoom-v0").unwrapped
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from reverie.envs.base import RANDOMIZE_CHOICES, Factor, ReverieEnv

# short name -> (gymnasium id, "module:Class"); modules import lazily so a missing backend only
# breaks its own env.
REGISTRY: dict[str, tuple[str, str]] = {
    "tworoom": ("reverie/TwoRoom-v0", "reverie.envs.tworoom:TwoRoomEnv"),
    "pusht": ("reverie/PushT-v0", "reverie.envs.pusht:PushTEnv"),
    "reacher": ("reverie/Reacher-v0", "reverie.envs.reacher:ReacherEnv"),
    "tabletop": ("reverie/Tabletop-v0", "reverie.envs.tabletop:TabletopEnv"),
}
ENV_NAMES: tuple[str, ...] = tuple(REGISTRY)

__all__ = [
    "ENV_NAMES",
    "REGISTRY",
    "RANDOMIZE_CHOICES",
    "Factor",
    "ReverieEnv",
    "env_class",
    "make",
    "resolve",
]


def resolve(name: str) -> str:
    """Map a short name or Gymnasium id to the short name; unknown names list the known ones."""
    key = name.strip()
    if key.lower() in REGISTRY:
        return key.lower()
    for short, (gym_id, _) in REGISTRY.items():
        if key == gym_id:
            return short
    raise ValueError(f"unknown environment {name!r}; known: {', '.join(ENV_NAMES)}")


def env_class(name: str) -> type[ReverieEnv]:
    module, cls = REGISTRY[resolve(name)][1].split(":")
    return getattr(importlib.import_module(module), cls)


def make(name: str, **kwargs: Any) -> ReverieEnv:
    """Build an environment by short name or id (unwrapped: no TimeLimit or checkers)."""
    return env_class(name)(**kwargs)


for _short, (_gym_id, _entry) in REGISTRY.items():
    if _gym_id not in gym.registry:
        gym.register(id=_gym_id, entry_point=_entry, max_episode_steps=None)
