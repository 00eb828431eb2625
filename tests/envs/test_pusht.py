"""Push-T specifics: exact state round trips, the success rule, factors that act, a useful expert.

.venv/bin/python -m pytest tests/envs/test_pusht.py -q
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from reverie.envs import make
from reverie.envs.policies import RandomPolicy
from reverie.envs.pusht import (
    AGENT_RADIUS,
    GOAL_MARGIN,
    START_MARGIN,
    WORLD,
    _rot,
    t_signed_distance,
)

# Pusher left of the T's stem, both at rest; the T is upright at the table centre.
PUSH_START = [150.0, 256.0, 0.0, 0.0, 256.0, 256.0, 0.0, 0.0, 0.0, 0.0]


def expert_run(env, seed: int, steps: int):
    """Frames, states and actions of an expert episode (actions are what replays need)."""
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    frames, states, actions = [obs], [info["state"]], []
    for _ in range(steps):
        action = env.expert_action(rng)
        obs, *_, info = env.step(action)
        frames.append(obs)
        states.append(info["state"])
        actions.append(action)
    return np.stack(frames), np.stack(states), actions


def push(factors: dict[str, float], steps: int = 12) -> np.ndarray:
    """State after pushing right from PUSH_START for ``steps`` steps, then coasting 5 steps."""
    env = make("pusht", size=32, factors=factors)
    env.reset(seed=0, options={"state": PUSH_START})
    for t in range(steps + 5):
        *_, info = env.step(np.array([1.0, 0.0] if t < steps else [0.0, 0.0], np.float32))
    return info["state"]


def test_reset_step_render_contract() -> None:
    env = make("pusht")
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (64, 64, 3)
    assert info["state"].dtype == np.float64 and info["state"].shape == (10,)
    assert info["goal"].shape == (10,) and not info["success"]
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs, reward, term, trunc, info = env.step(env.random_action(rng))
        assert obs.dtype == np.uint8 and obs.shape == (64, 64, 3)
        assert np.all(np.isfinite(info["state"])) and np.isfinite(reward)
        assert reward == -info["distance"] and term == info["success"] and not trunc
    assert env.max_episode_steps == 200 and env.action_space.shape == (2,)


def test_render_draws_the_state_where_it_is() -> None:
    """At 512 px one pixel is one unit: the T's centre, the pusher and bare table land right."""
    env = make("pusht", size=512)
    env.reset(seed=0, options={"state": [100.0, 400.0, 0, 0, 300.0, 200.0, 0.0, 0, 0, 0]})
    img = env.render().astype(int)
    floor, block, agent = img[480, 480], img[200, 300], img[400, 100]
    assert np.abs(block - floor).sum() > 100 and np.abs(agent - floor).sum() > 100
    assert np.abs(agent - block).sum() > 100
    # Upright T: the bar spans x = 300 ± 60 at y = 200 - 40.7 + 15; beyond it, floor again.
    assert np.array_equal(img[174, 250], block) and np.array_equal(img[174, 370], floor)
    # Anti-aliased edges: some pixels are neither floor nor T.
    small = make("pusht", size=64)
    small.reset(seed=0, options={"state": [100.0, 400.0, 0, 0, 300.0, 200.0, 0.4, 0, 0, 0]})
    pixels = small.render().reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 6


def test_same_seed_same_frames() -> None:
    frames_a, states_a, _ = expert_run(make("pusht", size=48), seed=5, steps=25)
    frames_b, states_b, _ = expert_run(make("pusht", size=48), seed=5, steps=25)
    np.testing.assert_array_equal(frames_a, frames_b)
    np.testing.assert_array_equal(states_a, states_b)
    assert np.abs(states_a[-1] - states_a[0]).max() > 1.0  # something moved


def test_set_state_reproduces_frame_and_trajectory() -> None:
    """From a recorded mid-contact state, another env with another history replays exactly."""
    env = make("pusht", size=48)
    frames, states, actions = expert_run(env, seed=3, steps=40)
    moving = np.linalg.norm(states[1:, 7:9], axis=1) > 1.0
    assert moving.sum() > 5, "the expert never moved the T: the replay would test little"
    other = make("pusht", size=48)
    other.reset(seed=99)
    for _ in range(7):  # leave contact and solver memory behind in the other env
        other.step(other.random_action(np.random.default_rng(1)))
    for k in (int(np.argmax(moving)), 25):
        other.set_state(states[k])
        np.testing.assert_array_equal(other.render(), frames[k])
        for t in range(k, 40):
            obs, *_, info = other.step(actions[t])
        np.testing.assert_array_equal(info["state"], states[40])
        np.testing.assert_array_equal(obs, frames[40])
    np.testing.assert_array_equal(env.render_state(states[10]), frames[10])


def test_set_state_rejects_bad_vectors() -> None:
    env = make("pusht")
    with pytest.raises(ValueError, match="10 finite numbers"):
        env.set_state(np.zeros(4))
    with pytest.raises(ValueError, match="10 finite numbers"):
        env.set_state(np.full(10, np.nan))


def test_success_rule_tolerances_and_angle_wrap() -> None:
    env = make("pusht")
    goal = np.array([200.0, 100.0, 0, 0, 300.0, 300.0, math.pi - 0.1, 0, 0, 0])
    assert env.is_success(goal, goal) and env.goal_distance(goal, goal) == 0.0

    def moved(**kw: float) -> np.ndarray:
        s = goal.copy()
        for i, name in enumerate(("ax", "ay", "avx", "avy", "bx", "by", "ba")):
            s[i] += kw.get(name, 0.0)
        return s

    assert env.is_success(moved(ax=19.0, bx=-19.0, ba=math.radians(19)), goal)
    assert not env.is_success(moved(ay=21.0), goal)  # pusher too far
    assert not env.is_success(moved(by=21.0), goal)  # T too far
    assert not env.is_success(moved(ba=math.radians(21)), goal)  # T turned too far
    # Across the ±pi seam: pi - 0.1 and -pi + 0.1 are 0.2 rad (11.5°) apart.
    wrapped = goal.copy()
    wrapped[6] = -math.pi + 0.1
    assert env.is_success(wrapped, goal)
    assert env.goal_distance(wrapped, goal) == pytest.approx(math.degrees(0.2))
    assert env.goal_distance(moved(bx=30.0, ba=math.radians(10)), goal) == pytest.approx(40.0)


def test_samplers_start_and_goal_are_valid_and_unsolved() -> None:
    env = make("pusht", size=32)
    for seed in range(12):
        _, info = env.reset(seed=seed)
        for state, margin in ((info["state"], START_MARGIN), (info["goal"], GOAL_MARGIN)):
            assert np.all((state[4:6] >= margin) & (state[4:6] <= WORLD - margin))
            assert np.all((state[:2] > AGENT_RADIUS) & (state[:2] < WORLD - AGENT_RADIUS))
            body = (state[:2] - state[4:6]) @ _rot(state[6])  # pusher in the T's frame
            assert t_signed_distance(body) > AGENT_RADIUS
            assert np.all(state[[2, 3, 7, 8, 9]] == 0.0)
        assert info["distance"] > 40 and not info["success"]


def test_pushing_moves_the_t_and_physics_factors_change_how_far() -> None:
    base = push({})
    assert base[4] > 256.0 + 60.0, "a 1.2 s push should move the T well to the right"
    assert abs(base[7]) < 1e-9, "table friction brings the T to rest"
    for factors in ({"damping": 8.0}, {"mass": 2.0}, {"friction": 1600.0}, {"gain": 0.5}):
        assert push(factors)[4] < base[4] - 10.0, factors
    assert push({"damping": 0.0, "friction": 300.0})[4] > base[4] + 10.0  # slippery table
    # An off-centre push turns the T.
    env = make("pusht", size=32)
    env.reset(seed=0, options={"state": [150.0, 220.0, 0, 0, 256.0, 256.0, 0.0, 0, 0, 0]})
    for _ in range(10):
        *_, info = env.step(np.array([1.0, 0.0], np.float32))
    assert abs(info["state"][6]) > 0.2


def test_walls_keep_the_pusher_in() -> None:
    env = make("pusht", size=32)
    env.reset(seed=0, options={"state": [60.0, 60.0, 0, 0, 300.0, 300.0, 0.0, 0, 0, 0]})
    for _ in range(15):
        *_, info = env.step(np.array([-1.0, -1.0], np.float32))
    assert np.all(info["state"][:2] > AGENT_RADIUS - 1.0)


def test_visual_factors_change_pixels_not_state() -> None:
    plain = make("pusht")
    frame, info = plain.reset(seed=1)
    for factors in ({"block_hue": 0.4}, {"lighting": 0.7}, {"camera_x": 20.0, "camera_angle": 4.0}):
        other = make("pusht", factors=factors)
        frame_b, info_b = other.reset(seed=1)
        np.testing.assert_array_equal(info["state"], info_b["state"])
        assert np.abs(frame.astype(int) - frame_b.astype(int)).sum() > 200, factors


def test_unknown_factor_and_randomisation() -> None:
    with pytest.raises(ValueError, match="unknown factor"):
        make("pusht", factors={"gravity": 1.0})
    with pytest.raises(ValueError, match="outside its range"):
        make("pusht", factors={"mass": 100.0})
    env = make("pusht", randomize="physics")
    env.reset(seed=0)
    first = dict(env.factors)
    env.reset(seed=1)
    assert env.factors["mass"] != first["mass"] and env.factors["lighting"] == first["lighting"]


def test_expert_beats_random_on_distance_reduction() -> None:
    """Mean reduction of goal_distance over 4 episodes of 100 steps."""
    env = make("pusht", size=16)
    reduction = {"expert": [], "random": []}
    for label in reduction:
        for seed in range(4):
            _, info = env.reset(seed=200 + seed)
            start = info["distance"]
            rng = np.random.default_rng(seed)
            policy = RandomPolicy()
            policy.reset(env, rng)
            for _ in range(100):
                action = env.expert_action(rng) if label == "expert" else policy(env, rng)
                *_, info = env.step(action)
            reduction[label].append(start - info["distance"])
    expert, random = np.mean(reduction["expert"]), np.mean(reduction["random"])
    assert expert > 100.0 and expert > random + 100.0, reduction


# ------------------------------------------------------- the published protocol's success rule
def state(agent=(256.0, 256.0), block=(256.0, 256.0), angle_deg=0.0) -> np.ndarray:
    return np.array([*agent, 0.0, 0.0, *block, math.radians(angle_deg), 0.0, 0.0, 0.0])


def test_published_rule_is_one_joint_norm_and_stricter_than_ours() -> None:
    env = make("pusht")
    goal = state()
    # 15 units on the pusher and 15 on the T: each within our 20, joint norm 21.2 > 20.
    both15 = state(agent=(271.0, 256.0), block=(256.0, 241.0))
    assert env.is_success(both15, goal) and not env.published_success(both15, goal)
    # 10 + 10: joint norm 14.1, both rules pass; 19 on the T alone passes both too.
    both10 = state(agent=(266.0, 256.0), block=(256.0, 246.0))
    assert env.is_success(both10, goal) and env.published_success(both10, goal)
    assert env.published_success(state(block=(275.0, 256.0)), goal)
    # The published thresholds are strict: exactly 20 units fails theirs, passes ours (<=).
    at20 = state(block=(276.0, 256.0))
    assert env.is_success(at20, goal) and not env.published_success(at20, goal)
    # Angle: the same 20° in both rules, wrapped.
    assert not env.published_success(state(angle_deg=25.0), goal)
    assert not env.is_success(state(angle_deg=25.0), goal)
    # Velocities are not part of either rule.
    moving = goal.copy()
    moving[[2, 3, 7, 8, 9]] = 50.0
    assert env.published_success(moving, goal)


def test_published_rule_wraps_angles() -> None:
    env = make("pusht")
    # 359° vs 1° is 2° apart, not 358°; so is -179° vs 179°.
    assert env.published_success(state(angle_deg=359.0), state(angle_deg=1.0))
    assert env.published_success(state(angle_deg=-179.0), state(angle_deg=179.0))
    assert env.is_success(state(angle_deg=359.0), state(angle_deg=1.0))
    assert not env.published_success(state(angle_deg=330.0), state(angle_deg=1.0))  # 31°


def test_success_margin_matches_the_success_test() -> None:
    env = make("pusht")
    goal = state()
    s = state(agent=(266.0, 256.0), block=(256.0, 286.0), angle_deg=-350.0)  # 10, 30, 10°
    np.testing.assert_allclose(env.success_margin(s, goal), [0.5, 1.5, 0.5])
    assert not env.is_success(s, goal)
    assert env.is_success(state(block=(256.0, 270.0)), goal)
    assert env.success_margin(state(block=(256.0, 270.0)), goal).max() <= 1


def test_goal_difficulty_of_a_known_path() -> None:
    # The pusher walks 3-4-5 twice (10 units); the T moves 30 along x and turns from 350° to 20°.
    path = np.stack(
        [
            state(agent=(0.0, 0.0), block=(100.0, 100.0), angle_deg=350.0),
            state(agent=(3.0, 4.0), block=(110.0, 100.0), angle_deg=0.0),
            state(agent=(6.0, 8.0), block=(130.0, 100.0), angle_deg=20.0),
        ]
    )
    d = make("pusht").goal_difficulty(path)
    assert d["block_displacement"] == pytest.approx(30.0)
    assert d["block_rotation_deg"] == pytest.approx(30.0)  # wrapped, not 330
    assert d["pusher_travel"] == pytest.approx(10.0)
    assert d["pusher_displacement"] == pytest.approx(10.0)  # a straight walk: path = net
