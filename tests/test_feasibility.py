"""Every held-out goal is feasible: the expert's own actions, replayed from the start, reach it.

A planner (or the oracle) that fails on a pair whose goal cannot be reached says nothing about
the planner; this pins that every env's pairs are reachable within ``goal_steps`` (25) actions.
"""

from __future__ import annotations

import numpy as np
import pytest

from reverie.envs import make
from reverie.evaluate import make_pairs

ENVS = ("tworoom", "pusht", "reacher", "tabletop")
PAIRS = 4  # per env: a handful keeps the test fast; the replay is exact, not statistical


def replay(env, pair: dict, actions: np.ndarray) -> bool:
    """Reset to the pair's start, take ``actions`` (T, A) one per env step; success at the end."""
    env.reset(seed=pair["seed"], options={"state": pair["start"], "goal": pair["goal"]})
    for action in actions:
        env.step(action)
    return bool(env.is_success(env.get_state(), pair["goal"]))


@pytest.mark.parametrize("name", ENVS)
def test_replaying_the_experts_goal_steps_reaches_every_goal(name: str) -> None:
    env = make(name)
    pairs, _ = make_pairs(env, PAIRS, seed=0, goal_steps=25)
    for pair in pairs:
        assert pair["expert_actions"].shape[0] == 25
        assert pair["expert_states"].shape == (26, *pair["start"].shape)
        assert replay(env, pair, pair["expert_actions"]), f"{name} seed {pair['seed']}"
        # The replay is exact (deterministic physics, state-only reset): the goal state itself.
        np.testing.assert_allclose(env.get_state(), pair["goal"], atol=1e-6)
    env.close()


@pytest.mark.parametrize("name", ENVS)
def test_a_broken_replay_misses_the_goals(name: str) -> None:
    # The check can fail: the expert's actions reversed in time (or sign-flipped for envs where
    # reversal still lands) do not reach the pairs' goals (make_pairs drops already-solved ones).
    env = make(name)
    pairs, _ = make_pairs(env, PAIRS, seed=0, goal_steps=25)
    hits = [replay(env, p, -p["expert_actions"]) for p in pairs]
    assert not all(hits), f"{name}: sign-flipped expert actions still reach every goal"
    env.close()
