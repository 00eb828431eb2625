"""Tests of the MuJoCo Tabletop env: contract, exact replay, success, falling, factors, editing.

.venv/bin/python -m pytest tests/envs/test_tabletop.py -q
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from reverie.envs import make
from reverie.envs.tabletop import SUCCESS_TOL, TABLE_TOP, TabletopEnv


def _rollout(env: TabletopEnv, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, Hi, Wi, 3) and states (T, S) after each action."""
    frames, states = [], []
    for a in actions:
        obs, _, _, _, info = env.step(a)
        frames.append(obs)
        states.append(info["state"])
    return np.stack(frames), np.stack(states)


def _expert_actions(env: TabletopEnv, n: int) -> np.ndarray:
    """Expert actions from the env's current state, taken (so the objects get pushed)."""
    rng = np.random.default_rng(0)
    actions = []
    for _ in range(n):
        actions.append(env.expert_action(rng))
        env.step(actions[-1])
    return np.stack(actions)


def test_reset_step_render_contract() -> None:
    env = gym.make("reverie/Tabletop-v0").unwrapped
    obs, info = env.reset(seed=0)
    assert isinstance(env, TabletopEnv) and env.object_names == ("cube", "ball")
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and obs.flags["C_CONTIGUOUS"]
    assert info["state"].shape == (env.state_dim,) == (2 + 7 * 2 + 2 + 6 * 2,)
    assert info["state"].dtype == np.float64
    for a in np.random.default_rng(0).uniform(-1, 1, (5, 2)):
        obs, reward, _, _, info = env.step(a)
        assert obs.dtype == np.uint8 and np.all(np.isfinite(info["state"]))
        assert reward == -info["distance"]
    three = make("tabletop", n_objects=3)
    _, info = three.reset(seed=0)
    assert three.object_positions().shape == (3, 3) and info["state"].shape == (2 + 21 + 2 + 18,)
    with pytest.raises(ValueError, match="n_objects"):
        make("tabletop", n_objects=5)


def test_same_seed_same_frames() -> None:
    a, b = make("tabletop"), make("tabletop")
    obs_a, _ = a.reset(seed=3)
    obs_b, _ = b.reset(seed=3)
    np.testing.assert_array_equal(obs_a, obs_b)
    actions = np.random.default_rng(1).uniform(-1, 1, (10, 2))
    np.testing.assert_array_equal(_rollout(a, actions)[0], _rollout(b, actions)[0])
    assert not np.array_equal(obs_a, b.reset(seed=4)[0])


def test_set_state_reproduces_frame_and_contact_trajectory() -> None:
    env = make("tabletop")
    env.reset(seed=1)
    _expert_actions(env, 12)  # get the pusher into contact: the replay must cover contacts
    state, frame = env.get_state(), env.render()
    rng = np.random.default_rng(0)
    actions, frames, states = [], [], []
    for _ in range(15):
        actions.append(env.expert_action(rng))
        obs, _, _, _, info = env.step(actions[-1])
        frames.append(obs)
        states.append(info["state"])
    moved = np.abs(states[-1] - state)[2:].max()
    assert moved > 1e-2, "objects should move in the recorded clip"
    other = make("tabletop")
    other.reset(seed=7)
    other.set_state(state)
    np.testing.assert_array_equal(other.render(), frame)
    replay_frames, replay_states = _rollout(other, np.stack(actions))
    np.testing.assert_array_equal(replay_states, np.stack(states))
    np.testing.assert_array_equal(replay_frames, np.stack(frames))


def test_success_rule_on_constructed_states() -> None:
    env = make("tabletop")
    env.reset(seed=0)
    goal = env.goal.copy()
    state = goal.copy()
    assert env.is_success(state, goal) and env.goal_distance(state, goal) == 0.0
    cube = env._qadr[0]
    state[cube : cube + 3] += [SUCCESS_TOL * 0.6, 0.0, SUCCESS_TOL * 0.7]  # 3-D error 0.92 tol
    assert env.is_success(state, goal)
    state[cube + 2] += SUCCESS_TOL * 0.5  # now 1.2 tol
    assert not env.is_success(state, goal)
    assert env.goal_distance(state, goal) == pytest.approx(np.hypot(0.6, 1.2) * SUCCESS_TOL)
    state = goal.copy()
    state[:2] += 0.3  # the pusher does not count
    assert env.is_success(state, goal)


def test_success_margin_and_approach_margin() -> None:
    env = make("tabletop")
    env.reset(seed=0)
    goal = env.goal.copy()
    state = goal.copy()
    assert env.success_margin(state, goal).max() == 0.0 and env.approach_margin(state, goal) == 0
    cube = env._qadr[0]
    state[cube] += 5 * SUCCESS_TOL  # the cube 5 tolerances too far along +x
    np.testing.assert_allclose(env.success_margin(state, goal), [5.0, 0.0])
    # The pusher pushes from behind (the +x side, to send the cube back along -x): nearer that
    # spot, the approach margin falls; at it, it is 0.
    obj = state[cube : cube + 2]
    reach = env._object_radius(0) + 0.03 + 0.01  # object + pusher radius + clearance
    far, near, there = state.copy(), state.copy(), state.copy()
    far[:2] = obj + [-0.2, 0.0]
    near[:2] = obj + [reach + 0.05, 0.0]
    there[:2] = obj + [reach, 0.0]
    assert env.approach_margin(far, goal) > env.approach_margin(near, goal) > 0
    assert env.approach_margin(there, goal) == pytest.approx(0.0, abs=1e-9)


def test_reach_places_objects_one_at_a_time() -> None:
    # Both objects out of place; the pusher has just pushed the cube into tolerance and now
    # stands far from the ball. Finishing the cube must lower the oracle's cost: the single-
    # object form (max margin + approach to the worst object) rose there, as the approach switched
    # to the far ball, so the search never finished the first object (Tabletop oracle 84%).
    from reverie.planning.objective import STAGE_COST, state_cost

    env = make("tabletop")
    env.reset(seed=0)
    goal = env.goal.copy()
    cube, ball = env._qadr[0], env._qadr[1]
    before = goal.copy()
    before[ball] += 1.5 * SUCCESS_TOL  # the ball 1.5 tolerances off
    before[cube] += 1.6 * SUCCESS_TOL  # the cube 1.6 off: the worst, being pushed
    reach = env._object_radius(0) + 0.03 + 0.01
    before[:2] = before[cube : cube + 2] + [reach, 0.0]  # the pusher right behind the cube
    after = before.copy()
    after[cube] = goal[cube] + 0.9 * SUCCESS_TOL  # pushed in: placed
    after[:2] = after[cube : cube + 2] + [reach, 0.0]
    assert state_cost(env, after, goal, "reach") < state_cost(env, before, goal, "reach")
    # Each object still to place costs STAGE_COST; none left: only the tie-break sum remains.
    assert state_cost(env, before, goal, "reach") > 2 * STAGE_COST
    assert STAGE_COST < state_cost(env, after, goal, "reach") < 2 * STAGE_COST
    assert state_cost(env, goal, goal, "reach") == 0.0
    # Knocking the ball off the table to be rid of it never pays.
    dropped = after.copy()
    dropped[ball + 2] -= 0.3
    assert env.approach_margins(dropped, goal)[1] == np.inf
    assert state_cost(env, dropped, goal, "reach") > state_cost(env, after, goal, "reach")
    # The approach to each object: 0 right behind it (opposite its goal direction).
    assert env.approach_margins(before, goal)[0] == pytest.approx(0.0, abs=1e-9)
    assert env.approach_margins(before, goal)[1] > 1.0


def test_goal_objects_rest_on_the_table() -> None:
    env = make("tabletop")
    for seed in range(3):
        env.reset(seed=seed)
        pos = env.object_positions(env.goal)
        assert np.all(np.abs(pos[:, :2]) < 0.3) and np.all(pos[:, 2] > TABLE_TOP)
        assert np.linalg.norm(pos[0, :2] - pos[1, :2]) > 0.1, "goal objects must not overlap"


def test_object_pushed_off_the_table_falls_to_the_floor() -> None:
    env = make("tabletop")
    env.reset(seed=0)
    env.set_object_pose(0, [0.3, 0.0, TABLE_TOP + 0.045], [1.0, 0.0, 0.0, 0.0])
    env.launch(0, [1.2, 0.0, 0.0])
    for _ in range(10):
        env.step(np.zeros(2))
    cube = env.object_positions()[0]
    assert cube[0] > 0.4 and cube[2] < 0.1, f"cube should be on the floor, at {cube}"
    ball = env.object_positions()[1]
    assert ball[2] > TABLE_TOP, "the ball was not launched and stays on the table"


@pytest.mark.parametrize(("factor", "value"), [("gravity", -1.0), ("mass_scale", 2.0)])
def test_physics_factor_changes_the_motion(factor: str, value: float) -> None:
    base = make("tabletop")
    base.reset(seed=2)
    actions = _expert_actions(base, 20)
    finals = []
    for v in (TabletopEnv.physics_factors[factor].default, value):
        env = make("tabletop", factors={factor: v})
        env.reset(seed=2)
        finals.append(_rollout(env, actions)[1][-1])
    assert np.abs(finals[0] - finals[1]).max() > 1e-2


def test_gravity_flip_mid_episode_lifts_objects() -> None:
    env = make("tabletop")
    env.reset(seed=0)
    env.step(np.zeros(2))
    env.set_factors({"gravity": -1.0})
    for _ in range(3):
        env.step(np.zeros(2))
    assert np.all(env.object_positions()[:, 2] > TABLE_TOP + 0.2)


def test_physics_randomisation_never_flips_gravity() -> None:
    env = make("tabletop", randomize="physics")
    draws = []
    for seed in range(20):
        env.reset(seed=seed)
        draws.append(env.factors["gravity"])
    assert min(draws) >= 0.5 and len(set(draws)) > 1


def test_unknown_or_out_of_range_factor_raises() -> None:
    with pytest.raises(ValueError, match="unknown factor"):
        make("tabletop", factors={"wind": 1.0})
    env = make("tabletop")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown factor"):
        env.set_factors({"wind": 1.0})
    with pytest.raises(ValueError, match="outside its range"):
        env.set_factors({"gravity": -5.0})


def test_editing_objects() -> None:
    env = make("tabletop")
    obs, _ = env.reset(seed=0)
    env.hide_object(1)
    hidden = env.render()
    assert env.object_positions()[1, 0] > 5 and not np.array_equal(obs, hidden)
    env.set_object_rgba(0, [0.0, 1.0, 0.0, 1.0])
    recoloured = env.render()
    assert not np.array_equal(recoloured, hidden)
    env.set_factors({"friction": 1.2})  # edits survive set_factors ...
    np.testing.assert_array_equal(env.render(), recoloured)
    env.set_object_size(0, 2.0)
    assert not np.array_equal(env.render(), recoloured)
    obs_again, _ = env.reset(seed=0)  # ... and end at reset
    np.testing.assert_array_equal(obs_again, obs)
    with pytest.raises(ValueError, match="object index"):
        env.set_object_pose(2, [0, 0, 1])


def test_expert_beats_random() -> None:
    env = make("tabletop")
    rng = np.random.default_rng(0)
    gains = {"expert": [], "random": []}
    for policy in gains:
        for seed in range(3):
            _, info = env.reset(seed=seed)
            start = info["distance"]
            for _ in range(40):
                a = env.expert_action(rng) if policy == "expert" else env.random_action(rng)
                _, _, _, _, info = env.step(a)
            gains[policy].append(start - info["distance"])
    assert np.mean(gains["expert"]) > np.mean(gains["random"]) + 0.1
