"""The streamed form of the one control loop (``episode_steps``, what the viewer draws): a replan
event per plan and a step event per env step, blocks marked where they end (cut short by success
too), and ``run_episode`` giving exactly the result the stream returns.

    .venv/bin/python -m pytest tests/planning/test_mpc_stream.py -q
"""

from __future__ import annotations

import numpy as np
import torch

from reverie.envs import make
from reverie.planning import MPCConfig, ReplanEvent, StepEvent, episode_steps, run_episode


class FixedPlanner:
    """The same raw action every step, shifted a little per replan (so plans differ)."""

    def __init__(self, raw_action: list[float], frameskip: int, horizon: int = 3) -> None:
        self.horizon, self.action_dim = horizon, len(raw_action) * frameskip
        self.value = torch.tensor(raw_action * frameskip).expand(1, horizon, -1).clone()
        self.calls = 0

    def plan(self, objective, init_mean=None):
        self.calls += 1
        return self.value + 0.01 * self.calls, {"best_cost": [3.0, 2.0]}


def drain(events):
    out = []
    while True:
        try:
            out.append(next(events))
        except StopIteration as stop:
            return out, stop.value


def test_events_follow_the_loop_and_match_run_episode() -> None:
    env = make("tworoom")
    start, goal = np.array([150.0, 112.0, 0, 0]), np.array([200.0, 112.0, 0, 0])
    config = MPCConfig(budget=11, frameskip=2, execute_blocks=2, record_frames=True)
    env.reset(seed=0, options={"state": start, "goal": goal})
    events, result = drain(
        episode_steps(env, FixedPlanner([-1.0, 0.0], 2), lambda ctx: None, goal, config)
    )
    replans = [e for e in events if isinstance(e, ReplanEvent)]
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.replan for e in replans] == [1, 2, 3] and [e.step for e in replans] == [0, 4, 8]
    assert all(e.cost == 2.0 and e.plan.shape == (1, 3, 4) for e in replans)
    assert [e.step for e in steps] == list(range(1, 12))
    assert [e.block for e in steps] == [0, 0, 1, 1] * 2 + [0, 0, 1]
    # Block ends every 2 env steps, and at the budget inside the last block.
    assert [e.step for e in steps if e.block_end] == [2, 4, 6, 8, 10, 11]
    for e, frame in zip(steps, result.frames[1:]):
        assert np.array_equal(e.obs, frame) and not e.success
    assert np.array_equal(steps[-1].state, env.get_state())
    env.reset(seed=0, options={"state": start, "goal": goal})
    again = run_episode(env, FixedPlanner([-1.0, 0.0], 2), lambda ctx: None, goal, config)
    a, b = again.to_json(), result.to_json()
    a.pop("plan_ms"), b.pop("plan_ms")
    assert a == b and np.array_equal(np.stack(again.frames), np.stack(result.frames))


def test_success_inside_a_block_ends_the_stream_there() -> None:
    env = make("tworoom")
    start, goal = np.array([40.0, 112.0, 0, 0]), np.array([60.0, 112.0, 0, 0])
    env.reset(seed=0, options={"state": start, "goal": goal})
    events, result = drain(
        episode_steps(env, FixedPlanner([1.0, 0.0], 5), lambda ctx: None, goal, MPCConfig())
    )
    assert [type(e) for e in events] == [ReplanEvent, StepEvent]
    last = events[-1]
    assert last.success and last.block_end and last.step == 1 and result.steps == 1
