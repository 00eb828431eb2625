"""The evaluation protocol: held-out pairs, Wilson intervals, baselines that bracket a model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reverie.data.format import EVAL_SEED_BASE, MAX_COLLECT_SEED, SEED_STRIDE
from reverie.envs import make
from reverie.evaluate import EvalConfig, evaluate, make_pairs, parse_factors, wilson
from reverie.io import ReverieError


def test_wilson_interval_known_values() -> None:
    assert wilson(0, 50)[0] == 0.0 and wilson(0, 50)[1] == pytest.approx(7.13, abs=0.015)
    assert wilson(50, 50)[0] == pytest.approx(92.87, abs=0.015) and wilson(50, 50)[1] == 100.0
    lo, hi = wilson(25, 50)
    assert lo < 50 < hi and abs((50 - lo) - (hi - 50)) < 1e-6


def test_pairs_are_held_out_reachable_and_not_already_solved() -> None:
    env = make("tworoom")
    pairs, replaced = make_pairs(env, 20, seed=0, goal_steps=25)
    max_train_seed = MAX_COLLECT_SEED * SEED_STRIDE + SEED_STRIDE
    assert all(p["seed"] >= EVAL_SEED_BASE > max_train_seed for p in pairs)
    assert all(not env.is_success(p["start"], p["goal"]) for p in pairs)
    assert replaced >= 0 and len({p["seed"] for p in pairs}) == 20
    # The goal is where the expert gets in 25 steps: replaying it lands on the goal exactly.
    p = pairs[0]
    env.reset(seed=p["seed"])
    rng = np.random.default_rng(p["seed"])
    for _ in range(25):
        env.step(env.expert_action(rng))
    np.testing.assert_array_equal(env.get_state(), p["goal"])


def test_already_solved_pairs_are_replaced_and_counted() -> None:
    env = make("tworoom")
    pairs, replaced = make_pairs(env, 10, seed=0, goal_steps=2)  # 2 steps: often within 16
    assert replaced > 0 and len(pairs) == 10
    # One step moves at most 8*sqrt(2) < 16 units: every pair is solved, so it must give up loudly.
    with pytest.raises(ReverieError, match="already solved"):
        make_pairs(env, 2, seed=0, goal_steps=1)


def test_random_far_below_oracle(tmp_path: Path) -> None:
    common = dict(env="tworoom", episodes=8, seed=1, videos=1)
    rnd = evaluate(
        EvalConfig(planner="random", out=tmp_path / "eval_random.json", **common), progress=False
    )
    ora = evaluate(
        EvalConfig(planner="oracle", out=tmp_path / "eval_oracle.json", **common), progress=False
    )
    assert ora["success_rate"] >= 62.5 and rnd["success_rate"] <= 37.5
    assert ora["success_rate"] - rnd["success_rate"] >= 40
    saved = json.loads((tmp_path / "eval_oracle.json").read_text())
    for key in (
        "success_rate",
        "ci95",
        "episodes",
        "already_solved_replaced",
        "plan_ms_median",
        "plan_ms_p90",
        "env_steps",
        "planner_config",
        "records",
    ):
        assert key in saved
    assert len(saved["records"]) == 8 and (tmp_path / saved["records"][0]["video"]).is_file()
    assert saved["machine"]["cpu_class"] and saved["machine"]["cpu"]  # rates are kept per class


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"planner": "telepathy", "env": "tworoom"}, "unknown planner"),
        ({"planner": "cem", "env": "tworoom"}, "needs --checkpoint"),
        ({"planner": "random"}, "--env is required"),
        ({"planner": "random", "env": "tworoom", "factors": "mass"}, "expected name=value"),
        ({"planner": "oracle", "env": "pusht", "oracle_cost": "units"}, "--oracle-cost must be"),
        ({"planner": "random", "env": "pusht", "oracle_cost": "margin"}, "needs --planner oracle"),
        (
            {"planner": "oracle", "env": "tworoom", "oracle_cost": "reach"},
            "needs an env with a pusher",
        ),
        ({"planner": "random", "env": "tworoom", "execute_blocks": 0}, "--execute-blocks must be"),
        ({"planner": "random", "env": "tworoom", "execute_blocks": 6}, "<= --horizon"),
        ({"planner": "random", "env": "tworoom", "protocol": "dino"}, "--protocol must be"),
        (
            {"planner": "random", "env": "tworoom", "protocol": "published", "cost": "sum"},
            "fixes --cost final, got sum",
        ),
        (
            {"planner": "random", "env": "tworoom", "protocol": "published", "history": 1},
            "fixes --history 3",
        ),
        (
            {"planner": "random", "env": "tworoom", "protocol": "published", "frameskip": 1},
            "fixes --frameskip 5",
        ),
    ],
)
def test_bad_eval_options(kw: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        EvalConfig(**kw)


def test_published_protocol_pins_its_settings(tmp_path: Path) -> None:
    from reverie.evaluate import PUBLISHED_PROTOCOL
    from reverie.planning.options import PlannerOptions

    ours = EvalConfig(planner="random", env="tworoom")
    assert (ours.cost, ours.history, ours.frameskip) == ("sum", None, None)
    cfg = EvalConfig(planner="random", env="tworoom", protocol="published")
    assert (cfg.cost, cfg.history, cfg.frameskip) == ("final", 3, 5)
    seen = {**vars(cfg), **vars(cfg.planning)}
    assert {k: seen[k] for k in PUBLISHED_PROTOCOL} == PUBLISHED_PROTOCOL
    for planning in (PlannerOptions(samples=100), PlannerOptions(horizon=10)):
        with pytest.raises(ValueError, match="--protocol published fixes"):
            EvalConfig(planner="random", env="tworoom", protocol="published", planning=planning)
    with pytest.raises(ValueError, match="fixes --budget 50"):
        EvalConfig(planner="random", env="tworoom", protocol="published", budget=40)
    out = tmp_path / "eval.json"
    run = EvalConfig(planner="random", env="tworoom", protocol="published", episodes=1, out=out)
    saved = evaluate(run, progress=False)
    assert saved["protocol"] == "published" and saved["config"]["cost"] == "final"


def test_execute_blocks_sets_the_replanning_cadence(tmp_path: Path) -> None:
    # Budget 50, frameskip 5: 10 blocks; executing 5 per replan replans twice, not ten times.
    def replans(blocks: int) -> list[int]:
        cfg = EvalConfig(
            planner="random", env="tworoom", episodes=2, seed=1, videos=0,
            execute_blocks=blocks, out=tmp_path / f"eval_{blocks}.json",
        )  # fmt: skip
        return [r["replans"] for r in evaluate(cfg, progress=False)["records"]]

    every, fifth = replans(1), replans(5)
    assert all(r <= 2 for r in fifth) and max(every) > 2
    assert all(f <= e for f, e in zip(fifth, every, strict=True))


def test_missing_checkpoint_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ReverieError, match="not found"):
        evaluate(EvalConfig(checkpoint=tmp_path / "nope", env="tworoom"), progress=False)


def test_parse_factors() -> None:
    assert parse_factors("mass=2, friction=0.3") == {"mass": 2.0, "friction": 0.3}
    assert parse_factors("") == {}


@pytest.mark.parametrize("planner", ["cem", "mppi", "gradient", "oracle", "random"])
def test_every_planner_runs_the_planning_options(planner: str) -> None:
    # --samples/--iterations/--horizon used to be dropped for mppi and gradient (their defaults ran
    # while the JSON's config reported the flags).
    from reverie.evaluate import build_planner
    from reverie.planning.options import PlannerOptions

    opts = PlannerOptions(samples=7, iterations=3, elites=2, horizon=4)
    ckpt = None if planner in ("oracle", "random") else Path("unused")
    cfg = EvalConfig(checkpoint=ckpt, env="tworoom", planner=planner, planning=opts, seed=5)
    p, _ = build_planner(cfg, None, make("tworoom"), 5, 10, -1.0, 1.0)
    if planner == "random":
        assert p.horizon == 4
        return
    c = p.config
    assert (c.iterations, c.horizon, c.seed) == (3, 4, 5)
    assert c.samples == 7  # the gradient planner: min(samples, 16) restarts
    if planner in ("cem", "oracle"):
        assert c.elites == 2


def test_cem_std_and_latent_distance_reach_the_planner() -> None:
    from reverie.evaluate import build_planner

    kw = dict(env="tworoom", cem_min_std=0.01, cem_warm_std=0.3, latent_distance="l2")
    cem, factory = build_planner(
        EvalConfig(checkpoint=Path("unused"), planner="cem", **kw), None, make("tworoom"),
        5, 10, -1.0, 1.0,
    )  # fmt: skip
    assert (cem.config.min_std, cem.config.warm_std, factory.distance) == (0.01, 0.3, "l2")
    oracle, _ = build_planner(
        EvalConfig(planner="oracle", **kw), None, make("tworoom"), 5, 10, -1.0, 1.0
    )
    assert (oracle.config.min_std, oracle.config.warm_std) == (0.01, 0.3)
    default, factory = build_planner(
        EvalConfig(checkpoint=Path("unused"), env="tworoom"), None, make("tworoom"), 5, 10, -1, 1
    )
    assert (default.config.min_std, default.config.warm_std, factory.distance) == (
        0.05, None, "sq_l2",
    )  # fmt: skip
    for bad, msg in (
        ({"cem_min_std": -0.1}, "--cem-min-std"),
        ({"cem_warm_std": 0.0}, "--cem-warm-std"),
        ({"latent_distance": "cosine"}, "--latent-distance must be one of sq_l2, l2"),
    ):
        with pytest.raises(ValueError, match=msg):
            EvalConfig(planner="random", env="tworoom", **bad)


def test_eval_cli_records_the_planner_that_ran(tmp_path: Path) -> None:
    from reverie.cli import main

    out = tmp_path / "eval.json"
    argv = ["eval", "--env", "tworoom", "--planner", "oracle", "--samples", "7", "--iterations"]
    argv += ["2", "--elites", "3", "--horizon", "2", "--episodes", "1", "--budget", "4"]
    assert main([*argv, "--videos", "0", "--no-progress", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    want = {"samples": 7, "iterations": 2, "elites": 3, "horizon": 2}
    assert saved["config"]["planning"] == want
    assert {k: saved["planner_config"][k] for k in want} == want


@pytest.mark.parametrize("seed", [-1, -200_000, 50_000])
def test_eval_seed_cannot_leave_the_held_out_block(seed: int) -> None:
    # A negative seed put pairs at EVAL_SEED_BASE - 10_000·k: below the base, toward training seeds.
    with pytest.raises(ValueError, match="--seed must be"):
        EvalConfig(env="tworoom", planner="random", seed=seed)
    with pytest.raises(ValueError, match="--seed must be"):
        make_pairs(make("tworoom"), 1, seed=seed, goal_steps=25)


def test_eval_in_a_scene(tmp_path: Path) -> None:
    """`reverie eval --scene`: pairs start in that world (objects at its poses), the JSON keeps
    the spec, and a non-tabletop env is refused in one line."""
    from reverie.scenes.spec import save_spec, spec_from_dict
    from reverie.scenes.text import parse_prompt

    spec = parse_prompt("a red cube left of a blue ball").spec
    save_spec(spec, tmp_path / "s.json")
    cfg = EvalConfig(
        env="tabletop",
        planner="random",
        episodes=2,
        budget=5,
        videos=0,
        scene=tmp_path / "s.json",
        out=tmp_path / "e.json",
        goal_steps=5,
    )
    result = evaluate(cfg, progress=False)
    assert spec_from_dict(result["scene"]) == spec and result["episodes"] == 2
    env = make("tabletop", scene=spec)
    pairs, _ = make_pairs(env, 1, 0, 5)
    np.testing.assert_allclose(
        env.object_positions(pairs[0]["start"])[:, :2], [o.pose for o in spec.objects]
    )
    with pytest.raises(ReverieError, match="needs the tabletop env"):
        evaluate(
            EvalConfig(
                env="tworoom",
                planner="random",
                episodes=1,
                scene=tmp_path / "s.json",
                out=tmp_path / "x.json",
            ),
            progress=False,
        )


DIFFICULTY = {"block_displacement", "block_rotation_deg", "pusher_travel", "pusher_displacement"}


def test_pusht_json_reports_both_rules_and_goal_difficulty(tmp_path: Path) -> None:
    from reverie.planning.options import PlannerOptions

    opts = PlannerOptions(samples=8, iterations=1, elites=2, horizon=2)
    common = dict(episodes=2, budget=10, planning=opts, videos=0, out=tmp_path / "e.json")
    result = evaluate(EvalConfig(env="pusht", planner="oracle", **common), progress=False)
    saved = json.loads((tmp_path / "e.json").read_text())
    for key in ("published_success_rate", "published_successes", "published_ci95"):
        assert key in saved and key in result
    assert "20" in saved["published_rule"]
    # The published rule is the stricter one, scored on the same rollouts.
    assert saved["published_successes"] <= saved["successes"]
    for r in saved["records"]:
        assert isinstance(r["published_success"], bool) and r["published_success"] <= r["success"]
        assert set(r["difficulty"]) == DIFFICULTY
    d = saved["goal_difficulty"]
    assert set(d) == DIFFICULTY
    for key, row in d.items():
        values = [r["difficulty"][key] for r in saved["records"]]
        assert row["median"] == pytest.approx(float(np.median(values)), abs=0.01)
        assert min(values) <= row["median"] <= row["p90"] <= max(values) + 0.01
    # Envs without a published rule report none.
    tw = evaluate(
        EvalConfig(env="tworoom", planner="random", episodes=1, videos=0, out=tmp_path / "t.json"),
        progress=False,
    )
    assert "published_success_rate" not in tw and tw["goal_difficulty"] == {}
