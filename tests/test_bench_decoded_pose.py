"""benchmarks/bench_decoded_pose.py: pose costs equal the oracle's; the script runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _bench import load_benchmark

from reverie.envs import make
from reverie.planning.objective import state_cost


def load():
    return load_benchmark("bench_decoded_pose")


@pytest.mark.parametrize("cost", ["margin", "reach"])
def test_pose_costs_equal_the_oracle_state_costs(cost: str) -> None:
    bench, env = load(), make("pusht", size=32)
    rng = np.random.default_rng(0)
    states, goals = [], []
    for i in range(40):
        _, info = env.reset(seed=i)
        s = info["state"].copy()
        g = s.copy()
        g[[0, 1, 4, 5]] += rng.normal(0, 60, 4)
        g[6] += rng.normal(0, 1.5)
        if i % 8 == 0:  # placed T: the approach term is zero, only the tie-break remains
            g[[4, 5, 6]] = s[[4, 5, 6]] + rng.normal(0, 3, 3) * [1, 1, 0.05]
        states.append(s)
        goals.append(np.clip(g, 40, 470) if i % 2 else g)
    want = [state_cost(env, s, g, cost) for s, g in zip(states, goals, strict=True)]
    pose = torch.tensor(np.stack(states)[:, [0, 1, 4, 5, 6]], dtype=torch.float64)
    goal = torch.tensor(np.stack(goals)[:, [0, 1, 4, 5, 6]], dtype=torch.float64)
    got = bench.pose_cost(pose, goal, cost).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def pusht_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny Push-T dataset and two 4-step tiny checkpoints, with and without --state-aux."""
    from reverie.data.collect import CollectConfig, collect
    from reverie.train import TrainConfig, train

    root = tmp_path_factory.mktemp("decoded-pose")
    data = collect(
        CollectConfig(env="pusht", episodes=6, out=root / "data", episode_steps=40, size=32),
        progress=False,
    )
    common = dict(data=data, preset="tiny", steps=4, threads=1, progress=False, tensorboard=False)
    return {
        "aux": train(TrainConfig(out=root / "aux", state_aux=1.0, **common)),
        "plain": train(TrainConfig(out=root / "plain", **common)),
    }


def test_runs_open_and_closed_loop_on_a_state_aux_checkpoint(
    pusht_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dp.json"
    args = ["--checkpoint", str(pusht_runs["aux"]), "--episodes", "2", "--samples", "8"]
    load().main([*args, "--iterations", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result["rows"]) == {"latent", "margin", "reach"}
    for row in result["rows"].values():
        assert 0 <= row["success_rate"] <= 100 and len(row["ci95"]) == 2
    loop = result["open_loop"]
    assert set(loop) == {"rollout", "readout", "copy"}
    # One median per expert block (25 steps over the model's frameskip), errors >= 0.
    blocks = {len(v) for row in loop.values() for v in row.values()}
    assert len(blocks) == 1 and blocks.pop() >= 1
    assert all(min(v) >= 0 for row in loop.values() for v in row.values())
    assert "| reach |" in capsys.readouterr().out


def test_a_checkpoint_without_the_pose_head_is_one_line(pusht_runs: dict[str, Path]) -> None:
    with pytest.raises(SystemExit, match="not trained with --state-aux"):
        load().main(["--checkpoint", str(pusht_runs["plain"])])


def test_bad_costs_are_refused() -> None:
    with pytest.raises(SystemExit):
        load().main(["--checkpoint", "x", "--costs", "latent,nope"])
