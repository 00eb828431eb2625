"""The viewer's "policy" planner: it drives toward the clicked goal with no search."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from reverie.planning.options import PlannerOptions
from reverie.viewer.session import PlaySession, SessionConfig


@pytest.fixture(scope="module")
def with_policy(play_run: Path, tmp_path_factory: pytest.TempPathFactory):
    from reverie.policies.train import PolicyTrainConfig, train_policy
    from reverie.viewer.play_model import load_play_model

    out = tmp_path_factory.mktemp("viewer-policy") / "policy"
    cfg = PolicyTrainConfig(
        checkpoint=play_run,
        out=out,
        steps=5,
        batch_size=16,
        hidden=16,
        depth=1,
        threads=1,
        progress=False,
    )
    train_policy(cfg)
    return load_play_model(play_run, policy=out)


def test_policy_plan_streams_like_cem(with_policy) -> None:
    cfg = SessionConfig(planning=PlannerOptions(horizon=3), plan_execute=2, plan_max_steps=4)
    s = PlaySession(with_policy, cfg)
    assert s.hello()["planners"] == ["cem", "policy"]
    replies = list(
        s.handle(json.dumps({"type": "plan", "goal": {"x": 0.8, "y": 0.2}, "planner": "policy"}))
    )
    kinds = [r["type"] for r in replies]
    assert kinds == ["plan", "frame", "frame", "plan", "frame", "frame", "plan_done"], kinds
    assert replies[0]["planner"] == "policy" and len(replies[0]["imagined"]) == 3


def test_policy_planner_without_a_policy_is_an_error(shared, with_policy) -> None:
    s = PlaySession(dataclasses.replace(with_policy, policy=None))
    assert s.hello()["planners"] == ["cem"]
    (reply,) = s.handle(json.dumps({"type": "plan", "goal_image": "random", "planner": "policy"}))
    assert reply["type"] == "error" and "no policy loaded" in reply["message"]
    (reply,) = s.handle(json.dumps({"type": "plan", "goal_image": "random", "planner": "mpc"}))
    assert reply["type"] == "error" and '"planner" must be' in reply["message"]
