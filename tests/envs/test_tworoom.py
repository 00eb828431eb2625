"""Two-Room specifics: the wall blocks, the door lets through, success is 16 units, factors act."""

from __future__ import annotations

import numpy as np

from reverie.envs import make
from reverie.envs.tworoom import DOOR_Y, SUCCESS_RADIUS, WALL_X


def drive(env, state, action, steps=30):
    env.reset(seed=0, options={"state": state})
    for _ in range(steps):
        *_, info = env.step(np.asarray(action, np.float32))
    return info["state"]


def test_wall_blocks_and_door_passes() -> None:
    env = make("tworoom")
    blocked = drive(env, [60.0, 40.0, 0, 0], [1, 0])  # far from the door: stops at the wall
    assert blocked[0] < WALL_X
    through = drive(env, [60.0, DOOR_Y, 0, 0], [1, 0])  # level with the door: crosses
    assert through[0] > WALL_X + 20


def test_success_threshold() -> None:
    env = make("tworoom")
    goal = np.array([50.0, 50.0, 0, 0])
    assert env.is_success(np.array([50.0 + SUCCESS_RADIUS - 0.1, 50.0, 0, 0]), goal)
    assert not env.is_success(np.array([50.0 + SUCCESS_RADIUS + 0.1, 50.0, 0, 0]), goal)


def test_physics_factors_change_the_state_not_just_pixels() -> None:
    base = drive(make("tworoom"), [30.0, 30.0, 0, 0], [0.5, 0.5], steps=5)
    slow = drive(make("tworoom", factors={"gain": 0.5}), [30.0, 30.0, 0, 0], [0.5, 0.5], steps=5)
    heavy = drive(make("tworoom", factors={"mass": 3.0}), [30.0, 30.0, 0, 0], [0.5, 0.5], steps=5)
    assert slow[0] < base[0] and heavy[0] < base[0]


def test_visual_factors_change_pixels_only() -> None:
    a, b = make("tworoom"), make("tworoom", factors={"agent_hue": 0.6, "lighting": 0.7})
    fa, ia = a.reset(seed=1)
    fb, ib = b.reset(seed=1)
    np.testing.assert_array_equal(ia["state"], ib["state"])
    assert np.abs(fa.astype(int) - fb.astype(int)).mean() > 5


def test_randomize_draws_factors_per_reset() -> None:
    env = make("tworoom", randomize="physics")
    env.reset(seed=0)
    first = dict(env.factors)
    env.reset(seed=1)
    assert env.factors["mass"] != first["mass"]
    assert env.factors["agent_hue"] == first["agent_hue"]  # visuals untouched


def test_batch_physics_matches_the_env_step() -> None:
    """The oracle's vectorised step is the env's own physics, state for state."""
    env = make("tworoom", factors={"mass": 2.0, "friction": 0.1, "gravity": 0.3})
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    states = np.stack([env._sample_goal(rng) + [0, 0, *rng.normal(0, 4, 2)] for _ in range(64)])
    states[:8, :2] = [[WALL_X - 20, DOOR_Y + 30]] * 8  # some next to the wall, pushing into it
    actions = rng.uniform(-1, 1, (64, 2))
    actions[:8] = [1.0, 0.2]
    batch = env.batch_step_world(states, actions)
    for s, a, b in zip(states, actions, batch):
        env.set_state(s)
        env._step_world(a)
        np.testing.assert_allclose(env.get_state(), b, atol=1e-9)
