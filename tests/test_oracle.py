"""The oracle's costs and per-env defaults: Push-T's approach margin and the reach cost built on
it, and the ``ORACLE_DEFAULTS`` table that ``reverie eval --planner oracle`` runs without flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reverie.envs import make
from reverie.envs.pusht import push_contacts
from reverie.evaluate import ORACLE_DEFAULTS, EvalConfig, evaluate, oracle_settings
from reverie.planning.objective import state_cost

# T at the centre, goal 60 units to the right: the pusher must get behind the T's left side.
GOAL = np.array([400.0, 400.0, 0, 0, 316.0, 256.0, 0.0, 0, 0, 0])
START = np.array([100.0, 450.0, 0, 0, 256.0, 256.0, 0.0, 0, 0, 0])


def best_contact(state: np.ndarray, goal: np.ndarray) -> np.ndarray:
    approach, _, align, _ = push_contacts(state, goal)
    return approach[int(np.argmax(align))]


def test_pusht_approach_margin_is_zero_at_the_best_contact_and_grows_away() -> None:
    env = make("pusht")
    at = START.copy()
    at[:2] = best_contact(START, GOAL)
    assert at[0] < START[4]  # the push that moves the T right starts on its left
    assert env.approach_margin(at, GOAL) == pytest.approx(0.0, abs=1e-9)
    far = at.copy()
    far[0] += 40.0  # 40 units off the spot: 2 tolerances
    assert env.approach_margin(far, GOAL) == pytest.approx(2.0, rel=1e-6)
    assert env.approach_margin(START, GOAL) > 5.0
    placed = GOAL.copy()
    placed[:2] = [50.0, 50.0]  # T placed, pusher anywhere: nothing left to push
    assert env.approach_margin(placed, GOAL) == 0.0


def test_reach_prefers_the_contact_to_the_pushers_goal_while_the_t_is_unplaced() -> None:
    # Walking the pusher to its own goal first (the margin cost's choice) leaves the T unmoved;
    # reach must rank standing at the push contact better.
    env = make("pusht")
    at_contact, at_goal = START.copy(), START.copy()
    at_contact[:2] = best_contact(START, GOAL)
    at_goal[:2] = GOAL[:2]
    assert state_cost(env, at_goal, GOAL, "margin") < state_cost(env, at_contact, GOAL, "margin")
    assert state_cost(env, at_contact, GOAL, "reach") < state_cost(env, at_goal, GOAL, "reach")
    # Once the T is placed the pusher's own error is what is left to shrink.
    done, near = GOAL.copy(), GOAL.copy()
    near[:2] += 100.0
    assert state_cost(env, done, GOAL, "reach") < state_cost(env, near, GOAL, "reach")


def test_reach_is_accepted_where_there_is_a_pusher_only() -> None:
    EvalConfig(planner="oracle", env="pusht", oracle_cost="reach")
    EvalConfig(planner="oracle", env="tabletop", oracle_cost="reach")
    with pytest.raises(ValueError, match="needs an env with a pusher"):
        EvalConfig(planner="oracle", env="tworoom", oracle_cost="reach")
    with pytest.raises(ValueError, match="--oracle-cost needs --planner oracle"):
        EvalConfig(planner="random", env="pusht", oracle_cost="reach")


def test_oracle_settings_take_flags_then_the_env_table_then_the_planning_options() -> None:
    assert set(ORACLE_DEFAULTS) == {"pusht", "reacher", "tabletop", "tworoom"}
    pusht = oracle_settings(EvalConfig(planner="oracle", env="pusht"), "pusht")
    assert (pusht["cost"], pusht["samples"], pusht["iterations"]) == ("reach", 300, 10)
    flags = EvalConfig(
        planner="oracle", env="pusht", oracle_cost="distance", oracle_samples=7, oracle_iterations=2
    )
    o = oracle_settings(flags, "pusht")
    assert (o["cost"], o["samples"], o["iterations"], o["elites"]) == ("distance", 7, 2, 7)
    tworoom = oracle_settings(EvalConfig(planner="oracle", env="tworoom"), "tworoom")
    assert (tworoom["cost"], tworoom["samples"], tworoom["iterations"]) == ("distance", 300, 30)


def test_eval_json_records_the_oracle_settings_that_ran(tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    cfg = EvalConfig(
        planner="oracle",
        env="pusht",
        episodes=1,
        budget=5,
        oracle_samples=4,
        oracle_iterations=1,
        videos=0,
        out=out,
    )
    evaluate(cfg, progress=False)
    saved = json.loads(out.read_text())
    assert saved["oracle"] == {
        "cost": "reach",
        "reduce": "sum",
        "samples": 4,
        "iterations": 1,
        "elites": 4,
    }
    assert saved["planner_config"]["samples"] == 4
