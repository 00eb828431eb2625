"""Action latency: an env proxy that executes each action a fixed number of steps late.

Used by the sim-to-real shifts (``latency=1`` in a shift string) and by ``reverie eval --latency``.

    from reverie.envs.latency import LatencyEnv
    env = LatencyEnv(make("tworoom"), latency=1)   # step(a) applies the previous step's action
"""

from __future__ import annotations

from typing import Any

import numpy as np


class LatencyEnv:
    """Env proxy whose ``step(a)`` executes the action given ``latency`` steps earlier.

    Everything else (state, rendering, factors, expert, oracle batch physics) forwards to the
    wrapped env, so planners and policies use it unchanged. The delay line is refilled with zero
    actions at every reset (the actuator is idle before the first command).
    """

    def __init__(self, env: Any, latency: int) -> None:
        self.env, self.latency = env, latency
        self._queue: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        out = self.env.reset(**kwargs)
        zero = np.zeros(self.env.action_space.shape, np.float32)
        self._queue = [zero] * self.latency
        return out

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._queue.append(np.asarray(action, np.float32))
        return self.env.step(self._queue.pop(0))
