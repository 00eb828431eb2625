"""Goal-conditioned policies: hindsight pairs, the policy planners, training and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.io import ReverieError
from reverie.policies import GoalPolicy, PolicyConfig, PolicyPlanner, PolicySeededCEM
from reverie.policies.train import GoalPairs, PolicyTrainConfig, train_policy


def test_goal_pairs_name_the_right_frames_goals_and_actions() -> None:
    # Embedding of frame f is (f, f, ...) and raw action f is (f, -f): every index is checkable.
    lengths, fs, k = [12, 9], 2, 3
    F = sum(lengths)
    z = torch.arange(F, dtype=torch.float32)[:, None].repeat(1, 4)
    actions = torch.stack([torch.arange(F), -torch.arange(F)], 1).float()
    pairs = GoalPairs(z, actions, lengths, history=k, frameskip=fs, max_gap=3)
    batch = pairs.get_batch(torch.arange(len(pairs)))
    starts = [0, 12]
    for i in range(len(pairs)):
        s, gap = int(pairs.src[i]), int(batch["gap"][i])
        first = max(b for b in starts if b <= s)
        n = lengths[starts.index(first)]
        assert s + gap * fs <= first + n - 1 and s + fs <= first + n - 1  # goal and block exist
        hist = [max(s - j * fs, first) for j in (2, 1, 0)]  # clamped at the episode's start
        assert batch["z_hist"][i, :, 0].tolist() == hist
        assert batch["z_goal"][i, 0].item() == s + gap * fs
        assert batch["action"][i].tolist() == [s, -s, s + 1, -(s + 1)]  # "(k a)": time order
    # Every admissible (s, gap) appears exactly once.
    want = sum(max(0, n - 1 - max(fs, d * fs) + 1) for n in lengths for d in range(1, 4))
    assert len(pairs) == want


def test_policy_actions_stay_in_bounds_and_shapes_are_checked() -> None:
    policy = GoalPolicy(PolicyConfig(embed_dim=8, action_dim=4, history=2, action_low=-0.5))
    with torch.no_grad():
        for p in policy.parameters():
            p.normal_(0, 10)  # saturate: the outputs must still respect the bounds
    a = policy(torch.randn(5, 2, 8), torch.randn(5, 8))
    assert a.shape == (5, 4) and a.min() >= -0.5 and a.max() <= 1.0
    with pytest.raises(ValueError, match=r"z_hist \(B, 2, 8\)"):
        policy(torch.randn(5, 3, 8), torch.randn(5, 8))
    with pytest.raises(ValueError, match="action_low"):
        PolicyConfig(embed_dim=8, action_dim=4, action_low=1.0, action_high=1.0)


class _Model:
    """A world model stand-in: z_next = z_last + action[:D] (so the policy's plan is checkable)."""

    action_dim, history = 4, 2

    def predict(self, window: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return window[:, -1] + action


class _Objective:
    def __init__(self, z_context: torch.Tensor, z_goal: torch.Tensor) -> None:
        self.z_context, self.z_goal, self.batch_size = z_context, z_goal, 1
        self.device = torch.device("cpu")

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:  # (1, N, H, A) -> (1, N)
        end = self.z_context[:, -1, None] + actions.sum(2)
        return (end - self.z_goal[:, None]).pow(2).sum(-1)


def test_policy_planner_rolls_the_policy_through_the_model() -> None:
    torch.manual_seed(0)
    policy = GoalPolicy(PolicyConfig(embed_dim=4, action_dim=4, history=2)).eval()
    z_ctx, z_goal = torch.randn(1, 1, 4), torch.randn(1, 4)
    plan, _ = PolicyPlanner(policy, _Model(), horizon=3, imagine=True).plan(
        _Objective(z_ctx, z_goal)
    )
    window = torch.cat([z_ctx, z_ctx], 1)  # a short context is padded by repeating its first
    for h in range(3):
        a = policy(window, z_goal)
        torch.testing.assert_close(plan[:, h], a)
        window = torch.cat([window[:, 1:], (window[:, -1] + a)[:, None]], 1)
    flat, _ = PolicyPlanner(policy, _Model(), horizon=3).plan(_Objective(z_ctx, z_goal))
    assert torch.equal(flat[:, 0], plan[:, 0]) and torch.equal(flat[:, 2], plan[:, 0])


def test_seeded_cem_improves_on_the_policy_it_starts_from() -> None:
    from reverie.planning.cem import CEMConfig

    torch.manual_seed(0)
    policy = GoalPolicy(PolicyConfig(embed_dim=4, action_dim=4, history=2)).eval()
    objective = _Objective(torch.zeros(1, 1, 4), torch.full((1, 4), 1.5))
    seeded = PolicySeededCEM(
        policy, _Model(), CEMConfig(samples=64, elites=8, iterations=5, horizon=3, warm_std=0.3)
    )
    start, _ = PolicyPlanner(policy, _Model(), 3, imagine=True).plan(objective)
    plan, info = seeded.plan(objective)
    assert objective(plan[:, None]).item() < objective(start[:, None]).item()
    assert len(info["best_cost"]) == 5


@pytest.fixture(scope="module")
def tiny_world(tworoom_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reverie.train import TrainConfig, train

    out = tmp_path_factory.mktemp("policy-world") / "run"
    cfg = TrainConfig(data=tworoom_data, out=out, preset="tiny", threads=1, progress=False)
    return train(cfg)


def tiny_policy(run: Path, out: Path, **kw) -> PolicyTrainConfig:
    base = dict(steps=30, batch_size=32, hidden=32, depth=1, max_gap=3, threads=1)
    return PolicyTrainConfig(checkpoint=run, out=out, progress=False, **{**base, **kw})


@pytest.mark.parametrize("method", ["idm", "imagine"])
def test_tiny_policy_trains_and_evaluates_end_to_end(
    tiny_world: Path, tmp_path: Path, method: str
) -> None:
    from reverie.evaluate import EvalConfig, evaluate
    from reverie.planning.options import PlannerOptions

    report = train_policy(tiny_policy(tiny_world, tmp_path / "policy", method=method))
    assert report["steps"] == 30 and report["method"] == method
    assert np.isfinite(report["val/bc_mse"]) and report["train_pairs"] > 0
    meta = json.loads((tmp_path / "policy" / "config.json").read_text())
    assert meta["kind"] == "reverie-policy" and meta["env"] == "tworoom"
    opts = PlannerOptions(samples=16, iterations=2, elites=4, horizon=2)
    for planner in ("policy", "policy+cem"):
        cfg = EvalConfig(
            checkpoint=tiny_world,
            planner=planner,
            policy_run=tmp_path / "policy",
            episodes=3,
            budget=6,
            planning=opts,
            seeded_iterations=1,
            videos=0,
            out=tmp_path / f"eval_{planner}.json",
        )
        result = evaluate(cfg, progress=False)
        assert result["episodes"] == 3 and result["planner"] == planner
        assert 0 <= result["imagined_success_rate"] <= 100
        assert all("imagined_success" in r for r in result["records"])


def test_policy_for_other_weights_or_env_is_refused(tiny_world: Path, tmp_path: Path) -> None:
    from reverie.checkpoint import read_meta
    from reverie.policies import load_policy

    train_policy(tiny_policy(tiny_world, tmp_path / "policy", steps=5))
    meta = read_meta(tiny_world)
    load_policy(tmp_path / "policy", meta)  # the right pair loads
    other = {**meta, "files": {**meta["files"], "model.safetensors": "0" * 64}}
    with pytest.raises(ReverieError, match="other world-model weights") as e:
        load_policy(tmp_path / "policy", other)
    assert "\n" not in str(e.value)
    with pytest.raises(ReverieError, match="trained on 'tworoom', not 'pusht'"):
        load_policy(tmp_path / "policy", {**meta, "env": "pusht"})
    with pytest.raises(ReverieError, match="is not a policy run"):
        load_policy(tiny_world, meta)  # a world model is not a policy


def test_policy_cli_errors_are_one_line(tiny_world: Path, tmp_path: Path, capsys) -> None:
    from reverie.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["policy", "train", "--checkpoint", str(tiny_world), "--method", "dagger"])
    assert stop.value.code == 2
    assert "--method must be one of idm, imagine" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["policy"])
    assert stop.value.code == 2 and "expected an action" in capsys.readouterr().err
    argv = ["eval", "--checkpoint", str(tiny_world), "--planner", "policy", "--policy-run"]
    assert main([*argv, str(tmp_path / "none"), "--episodes", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "is not a policy run" in err and err.count("\n") == 1


def test_plan_command_runs_the_policy(tiny_world: Path, tmp_path: Path) -> None:
    from reverie.plan import PlanConfig, plan

    train_policy(tiny_policy(tiny_world, tmp_path / "policy", steps=5))
    cfg = PlanConfig(
        checkpoint=tiny_world,
        planner="policy",
        policy_run=tmp_path / "policy",
        budget=4,
        out=tmp_path / "plan",
    )
    result = plan(cfg)
    assert result["planner"] == "policy" and result["steps"] <= 4
    saved = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert len(saved["actions"]) == result["steps"]
