"""Tests of the MuJoCo Reacher env: contract, determinism, exact state replay, success, factors.

.venv/bin/python -m pytest tests/envs/test_reacher.py -q
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from reverie.envs import make
from reverie.envs.reacher import SUCCESS_TOL, ReacherEnv


def _rollout(env: ReacherEnv, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, Hi, Wi, 3) and states (T, 4) after each action."""
    frames, states = [], []
    for a in actions:
        obs, _, _, _, info = env.step(a)
        frames.append(obs)
        states.append(info["state"])
    return np.stack(frames), np.stack(states)


def _actions(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 2)).astype(np.float32)


def test_reset_step_render_contract() -> None:
    env = gym.make("reverie/Reacher-v0").unwrapped
    obs, info = env.reset(seed=0)
    assert isinstance(env, ReacherEnv)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and obs.flags["C_CONTIGUOUS"]
    assert info["state"].shape == (4,) and info["state"].dtype == np.float64
    assert info["goal"].shape == (4,)
    for a in _actions(5):
        obs, reward, success, truncated, info = env.step(a)
        assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
        assert np.all(np.isfinite(info["state"])) and np.isfinite(reward)
        assert reward == -info["distance"] and not truncated
    assert obs.std() > 5, "the frame should show an arm, not a blank floor"
    env.close()
    assert env.render().shape == (64, 64, 3), "render after close makes a new renderer"


def test_same_seed_same_frames() -> None:
    a, b = make("reacher"), make("reacher")
    obs_a, _ = a.reset(seed=3)
    obs_b, _ = b.reset(seed=3)
    np.testing.assert_array_equal(obs_a, obs_b)
    frames_a, _ = _rollout(a, _actions(10))
    frames_b, _ = _rollout(b, _actions(10))
    np.testing.assert_array_equal(frames_a, frames_b)
    obs_c, _ = b.reset(seed=4)
    assert not np.array_equal(obs_a, obs_c)


def test_set_state_reproduces_frame_and_trajectory() -> None:
    env = make("reacher")
    env.reset(seed=1)
    _rollout(env, _actions(7, seed=1))
    state, frame = env.get_state(), env.render()
    later_frames, later_states = _rollout(env, _actions(10, seed=2))
    other = make("reacher")
    other.reset(seed=9)
    other.set_state(state)
    np.testing.assert_array_equal(other.render(), frame)
    frames, states = _rollout(other, _actions(10, seed=2))
    np.testing.assert_array_equal(states, later_states)
    np.testing.assert_array_equal(frames, later_frames)
    with pytest.raises(ValueError, match="state must be 4"):
        other.set_state(np.zeros(5))


def test_success_rule_on_constructed_states() -> None:
    env = make("reacher")
    goal = np.array([np.pi - 0.01, 1.0, 0.0, 0.0])
    near = np.array([-np.pi + 0.01, 1.0 + SUCCESS_TOL * 0.8, 3.0, 0.0])  # wraps round ±π
    assert env.is_success(near, goal)
    assert env.goal_distance(near, goal) == pytest.approx(np.hypot(0.02, SUCCESS_TOL * 0.8))
    assert not env.is_success(near + [0.0, SUCCESS_TOL, 0, 0], goal)
    assert not env.is_success(np.array([0.0, 1.0, 0, 0]), goal)
    assert env.goal_distance(goal, goal) == 0.0


def test_goal_is_a_configuration_at_rest_and_rendered() -> None:
    env = make("reacher")
    env.reset(seed=5)
    assert env.goal is not None and np.all(env.goal[2:] == 0.0)
    assert not np.array_equal(env.render_state(env.goal), env.render())


@pytest.mark.parametrize("factor", ["mass_scale", "damping", "actuator_gain", "gravity"])
def test_physics_factor_changes_the_motion(factor: str) -> None:
    actions = _actions(8, seed=3)
    start = np.array([0.3, -0.5, 0.0, 0.0])
    finals = []
    for value in (
        ReacherEnv.physics_factors[factor].default,
        ReacherEnv.physics_factors[factor].high,
    ):
        env = make("reacher", factors={factor: value})
        env.reset(seed=0, options={"state": start})
        finals.append(_rollout(env, actions)[1][-1])
    assert np.abs(finals[0] - finals[1]).max() > 1e-2


def test_visual_factor_changes_pixels_not_physics() -> None:
    a, b = make("reacher"), make("reacher", factors={"arm_hue": 0.1, "camera_dx": 0.02})
    obs_a, info_a = a.reset(seed=2)
    obs_b, info_b = b.reset(seed=2)
    np.testing.assert_array_equal(info_a["state"], info_b["state"])
    assert np.abs(obs_a.astype(int) - obs_b.astype(int)).mean() > 1.0


def test_unknown_or_out_of_range_factor_raises() -> None:
    with pytest.raises(ValueError, match="unknown factor"):
        make("reacher", factors={"wind": 1.0})
    env = make("reacher")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown factor"):
        env.set_factors({"wind": 1.0})
    with pytest.raises(ValueError, match="outside its range"):
        env.set_factors({"mass_scale": 100.0})


def test_expert_beats_random() -> None:
    env = make("reacher")
    rng = np.random.default_rng(0)
    gains = {"expert": [], "random": []}
    for policy in gains:
        for seed in range(3):
            _, info = env.reset(seed=seed)
            start = info["distance"]
            for _ in range(30):
                a = env.expert_action(rng) if policy == "expert" else env.random_action(rng)
                _, _, success, _, info = env.step(a)
            gains[policy].append(start - info["distance"])
            if policy == "expert":
                assert success, f"expert should reach the goal within 30 steps (seed {seed})"
    assert np.mean(gains["expert"]) > np.mean(gains["random"]) + 1.0
