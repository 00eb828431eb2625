"""Data-collection policies: random, scripted expert, and a mix of both.

A policy is called once per control step with the env and a numpy Generator and returns an action.
The expert keeps moving after reaching a goal (a new goal is drawn), so expert episodes stay
informative for the whole collection length.

    policy = make_policy("mixed"); policy.reset(env, rng); action = policy(env, rng)
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from reverie.envs.base import ReverieEnv

POLICIES = ("expert", "random", "mixed")


class Policy(Protocol):
    def reset(self, env: ReverieEnv, rng: np.random.Generator) -> None: ...

    def __call__(self, env: ReverieEnv, rng: np.random.Generator) -> np.ndarray: ...


class RandomPolicy:
    """Uniform random actions held for a random 1–6 steps (covers space better than white noise)."""

    def reset(self, env: ReverieEnv, rng: np.random.Generator) -> None:
        self._hold, self._action = 0, env.random_action(rng)

    def __call__(self, env: ReverieEnv, rng: np.random.Generator) -> np.ndarray:
        if self._hold <= 0:
            self._action, self._hold = env.random_action(rng), int(rng.integers(1, 7))
        self._hold -= 1
        return self._action


class ExpertPolicy:
    """The env's scripted expert toward ``env.goal``; draws a fresh goal once it succeeds."""

    def reset(self, env: ReverieEnv, rng: np.random.Generator) -> None:
        pass

    def __call__(self, env: ReverieEnv, rng: np.random.Generator) -> np.ndarray:
        assert env.goal is not None
        if env.is_success(env.get_state(), env.goal):
            env.set_goal(env._sample_goal(rng))
        return np.asarray(env.expert_action(rng), np.float32)


class MixedPolicy:
    """Alternates expert and random segments of 5–20 steps (30% of segments random)."""

    def __init__(self, p_random: float = 0.3) -> None:
        self.p_random = p_random
        self.expert, self.random = ExpertPolicy(), RandomPolicy()

    def reset(self, env: ReverieEnv, rng: np.random.Generator) -> None:
        self.expert.reset(env, rng)
        self.random.reset(env, rng)
        self._left, self._use_random = 0, False

    def __call__(self, env: ReverieEnv, rng: np.random.Generator) -> np.ndarray:
        if self._left <= 0:
            self._use_random = bool(rng.random() < self.p_random)
            self._left = int(rng.integers(5, 21))
        self._left -= 1
        return (self.random if self._use_random else self.expert)(env, rng)


def make_policy(name: str) -> Policy:
    if name == "expert":
        return ExpertPolicy()
    if name == "random":
        return RandomPolicy()
    if name == "mixed":
        return MixedPolicy()
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
