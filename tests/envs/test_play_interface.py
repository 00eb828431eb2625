"""What every env offers ``reverie play`` through the env interface (the viewer knows no env by
name): a keymap, the perturbations it supports, ``perturb``, clicked goals and public goals.

    .venv/bin/python -m pytest tests/envs/test_play_interface.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from reverie.envs import make
from reverie.envs.base import KEY_NAMES, PERTURBATION_KINDS

ENVS = ("tworoom", "pusht", "reacher", "tabletop")


@pytest.mark.parametrize("name", ENVS)
def test_keymap_perturbations_and_goals(name: str) -> None:
    env = make(name)
    env.reset(seed=0)
    raw_dim = int(np.prod(env.action_space.shape))
    assert env.keymap is not None and set(env.keymap) == set(KEY_NAMES)
    assert all(len(v) == raw_dim for v in env.keymap.values())
    assert set(env.perturbations()) <= set(PERTURBATION_KINDS) and env.perturbations()
    goal = env.sample_goal(np.random.default_rng(0))
    assert goal.shape == env.get_state().shape
    with pytest.raises(ValueError, match="unknown perturbation"):
        env.perturb("explode", np.random.default_rng(0))
    for kind in set(PERTURBATION_KINDS) - set(env.perturbations()):
        with pytest.raises(ValueError):
            env.perturb(kind, np.random.default_rng(0))
    env.close()


def test_tworoom_perturbations_and_clicked_goals() -> None:
    rng = np.random.default_rng(0)
    env = make("tworoom")
    env.reset(seed=0)
    x, y = env.get_state()[:2]
    description, hidden = env.perturb("teleport", rng)
    assert "teleported" in description and hidden is False
    assert np.hypot(*(env.get_state()[:2] - [x, y])) >= 80
    assert env.perturb("gravity", rng)[1] is None and env.factors["gravity"] == 1.0
    assert env.perturb("gravity", rng)[1] is None and env.factors["gravity"] == -1.0
    assert env.perturb("delete", rng)[1] is True
    for _ in range(3):  # deleted: the agent stays parked outside the world after every step
        obs, *_ = env.step(np.array([1.0, 0.0]))
        assert env.get_state()[0] < 0
    assert not np.any((obs[..., 0] > 180) & (obs[..., 1] < 100))  # no red agent drawn
    assert env.perturb("teleport", rng, (0.25, 0.5))[1] is False
    assert env.get_state()[:2] == pytest.approx([56.0, 112.0])
    env.step(np.zeros(2))  # parking ended with the teleport; gravity still flipped
    assert env.get_state()[:2] == pytest.approx([56.0, 110.0])
    env.perturb("delete", rng)
    env.reset(seed=1)  # a reset ends parking too
    env.step(np.zeros(2))
    assert env.get_state()[0] > 0
    assert env.goal_from_point(0.8, 0.2)[:2] == pytest.approx([0.8 * 224, 0.2 * 224])
    with pytest.raises(ValueError, match="inside the wall"):
        env.goal_from_point(0.5, 0.1)
    with pytest.raises(ValueError, match="inside the wall"):
        env.perturb("teleport", rng, (0.5, 0.1))
    assert make("pusht").goal_from_point(0.5, 0.5) is None  # a point names no T pose


def test_perturbations_in_other_envs() -> None:
    rng = np.random.default_rng(0)
    env = make("pusht")
    env.reset(seed=0)
    before = env.get_state()
    env.perturb("teleport", rng)
    assert not np.allclose(env.get_state()[4:6], before[4:6])
    env.perturb("delete", rng)
    env.step(np.zeros(2))
    assert env.get_state()[4] < 0
    with pytest.raises(ValueError, match="no gravity"):
        env.perturb("gravity", rng)
    env = make("reacher")
    env.reset(seed=0)
    env.perturb("gravity", rng)
    assert env.factors["gravity"] == 1.0
    with pytest.raises(ValueError, match="nothing|no object"):
        env.perturb("delete", rng)
    env.close()


def test_tabletop_perturbations() -> None:
    rng = np.random.default_rng(0)
    env = make("tabletop")
    env.reset(seed=0)
    env.perturb("gravity", rng)
    assert env.factors["gravity"] == -1.0
    env.perturb("delete", rng)
    assert np.linalg.norm(env.object_positions()[0, :2]) > 5  # the cube is gone
    z_ball = env.object_positions()[1, 2]
    env.perturb("teleport", rng)  # the ball now: it floats up under flipped gravity
    env.step(np.zeros(2))
    assert env.object_positions()[1, 2] > z_ball + 0.1
    env.close()
