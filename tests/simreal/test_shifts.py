"""Shifts: they change the simulator's physics, their strings are validated, run_shift reports.

.venv/bin/python -m pytest tests/simreal/test_shifts.py -q
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.envs import make
from reverie.io import ReverieError
from reverie.planning.options import PlannerOptions
from reverie.simreal import simreal_section
from reverie.simreal.shifts import (
    HELD_OUT_PRESETS,
    PRESET_NAMES,
    PRESETS,
    ShiftConfig,
    collect_episodes,
    delta_interval,
    make_shifted,
    open_loop_error,
    parse_shift,
    parse_shifts,
    run_shift,
)


def tiny_checkpoint(out: Path, frameskip: int = 2) -> Path:
    """An untrained tiny world model for Two-Room at 32 px, saved as a checkpoint."""
    from reverie.checkpoint import save_checkpoint
    from reverie.models.world_model import WorldModel
    from reverie.train import TrainConfig

    cfg = TrainConfig(data=Path("unused"), out=out, preset="tiny").model_config(2 * frameskip, 32)
    cfg = dataclasses.replace(cfg, frameskip=frameskip)
    torch.manual_seed(0)
    return save_checkpoint(out, WorldModel(cfg).eval(), step=1, env_name="tworoom")


def _first_steps(env, actions, seed=3):
    env.reset(seed=seed)
    return [env.step(a)[4]["state"] for a in actions]


def test_shift_changes_the_physical_state() -> None:
    push = [np.array([1.0, 0.0], np.float32)] * 3
    src = _first_steps(make("tworoom"), push)
    slow = _first_steps(make_shifted("tworoom", parse_shift("tworoom", "gain=0.5")), push)
    # From rest at unit mass the velocity jumps to the command: VMAX·gain = 8 vs 4 units/step.
    assert src[0][2] == pytest.approx(8.0) and slow[0][2] == pytest.approx(4.0)
    np.testing.assert_allclose(slow[0][:2] - src[0][:2] + [4.0, 0.0], 0.0, atol=1e-9)
    hard = _first_steps(make_shifted("tworoom", parse_shift("tworoom", "physics-hard")), push)
    assert np.abs(hard[-1] - src[-1]).max() > 1.0
    # Visual shifts leave the physics alone but change the pixels.
    vis_env = make_shifted("tworoom", parse_shift("tworoom", "visual"))
    np.testing.assert_array_equal(_first_steps(vis_env, push)[-1], src[-1])
    assert not np.array_equal(vis_env.render(), make("tworoom").reset(seed=3)[0])


def test_latency_executes_the_previous_action() -> None:
    env = make_shifted("tworoom", parse_shift("tworoom", "latency=1"))
    states = _first_steps(env, [np.array([1.0, 0.0], np.float32), np.zeros(2, np.float32)])
    assert states[0][2] == 0.0  # the first step ran the idle action
    assert states[1][2] == pytest.approx(8.0)  # the second ran the first command


def test_shift_strings_are_validated() -> None:
    with pytest.raises(ValueError, match=r"unknown factor 'mas'.*known: mass, .*latency") as e:
        parse_shift("tworoom", "mas=2.0")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="outside its range"):
        parse_shift("tworoom", "friction=0.9")
    with pytest.raises(ValueError, match="latency must be an integer"):
        parse_shift("tworoom", "latency=0.5")
    with pytest.raises(ValueError, match="unknown shift preset 'physics-extreme'"):
        parse_shift("tworoom", "physics-extreme")
    with pytest.raises(ValueError, match="expected name=value"):
        parse_shift("tworoom", "mass=heavy")
    shifts = parse_shifts("tworoom", "physics-mild,friction=0.3,mass=2.0;gain=0.5,visual")
    assert [s.name for s in shifts] == ["physics-mild", "friction0.3_mass2", "gain0.5", "visual"]
    assert shifts[1].factors == {"friction": 0.3, "mass": 2.0}
    with pytest.raises(ValueError, match="unknown factor"):
        ShiftConfig(checkpoint=Path("x"), env="tworoom", shifts="physics-mild,bogus=1")


def test_every_preset_is_valid_for_its_env() -> None:
    for env, presets in PRESETS.items():
        assert set(presets) <= set(PRESET_NAMES)
        assert set(PRESET_NAMES) - set(presets) <= {"visual-unseen"}
        for name in presets:
            shift = parse_shift(env, name)
            assert shift.factors or shift.latency
            assert shift.held_out == (name in HELD_OUT_PRESETS)
        assert parse_shift(env, "physics-hard").latency == 1
    assert {"tworoom", "pusht"} <= {e for e, p in PRESETS.items() if "visual-unseen" in p}


@pytest.mark.parametrize("env", ["tworoom", "pusht"])
def test_visual_unseen_lies_outside_the_randomisation_ranges(env: str) -> None:
    from reverie.envs import env_class

    factors = env_class(env).visual_factors
    unseen = parse_shift(env, "visual-unseen")
    outside = [k for k, v in unseen.factors.items() if not factors[k].low <= v <= factors[k].high]
    # Lighting, camera and a colour (the floor's: the object hues span the whole circle).
    assert {"lighting", "camera_x", "floor_tint"} <= set(outside)
    # The same values typed by a user are refused in one line; so is a direct env build.
    items = unseen.factor_string()
    with pytest.raises(ValueError, match="outside its range") as e:
        parse_shift(env, items)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="outside its range"):
        make(env, factors=unseen.factors)
    # Past even the held-out limits nothing is accepted.
    with pytest.raises(ValueError, match="outside its range"):
        make(env, factors={"lighting": 5.0}, held_out_factors=True)
    sim = make_shifted(env, unseen)
    assert sim.held_out_factors
    obs, _ = sim.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (64, 64, 3)
    assert all(sim.factors[k] == v for k, v in unseen.factors.items())


@pytest.mark.parametrize("env", ["tworoom", "pusht"])
def test_two_looks_of_one_state_render_the_same_physical_state(env: str) -> None:
    source = make(env)
    unseen = make_shifted(env, parse_shift(env, "visual-unseen"))
    visual = make_shifted(env, parse_shift(env, "visual"))
    source.reset(seed=1)
    for _ in range(5):
        source.step(source.action_space.sample())
    state = source.get_state()
    frames = []
    for other in (unseen, visual):
        other.reset(seed=7)
        other.set_state(state)
        np.testing.assert_array_equal(other.get_state(), state)  # set_state round trip
        frames.append(other.render_state(state))
        np.testing.assert_array_equal(other.get_state(), state)
    ref = source.render_state(state)
    assert not np.array_equal(ref, frames[0]) and not np.array_equal(ref, frames[1])


def test_fixed_factors_are_never_drawn_by_randomisation() -> None:
    env = make("tworoom", randomize="visual")
    hues = set()
    for seed in range(5):
        env.reset(seed=seed)
        assert env.factors["floor_tint"] == 0.0
        hues.add(env.factors["agent_hue"])
    assert len(hues) == 5


def test_eval_refuses_out_of_range_factors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reverie.cli import main

    ckpt = tiny_checkpoint(tmp_path / "m")
    code = main(["eval", "--checkpoint", str(ckpt), "--episodes", "1", "--factors", "lighting=0.4"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "outside its range [0.5, 1.3]" in err
    code = main(["shift", "--checkpoint", str(ckpt), "--shifts", "camera_x=-11"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "outside its range" in err
    # The explicit flag unlocks the held-out limits (and nothing past them).
    out = tmp_path / "e.json"
    base = ["eval", "--env", "tworoom", "--planner", "random", "--episodes", "1", "--videos", "0"]
    held = [*base, "--held-out-factors", "--out", str(out)]
    assert main([*held, "--factors", "lighting=0.4,floor_tint=0.5"]) == 0
    assert json.loads(out.read_text())["factors"]["lighting"] == 0.4
    capsys.readouterr()
    assert main([*held, "--factors", "lighting=5"]) == 1
    assert "outside its range [0.3, 1.6]" in capsys.readouterr().err


def test_delta_interval() -> None:
    d, (lo, hi) = delta_interval(10, 20, 10, 20)
    assert d == 0 and lo < 0 < hi and lo == pytest.approx(-hi)
    d, (lo, hi) = delta_interval(0, 50, 50, 50)
    assert d == -100 and hi < -80


def test_open_loop_error_by_horizon(tmp_path: Path) -> None:
    from reverie.checkpoint import load_checkpoint

    model, _ = load_checkpoint(tiny_checkpoint(tmp_path / "ckpt"))
    env = make_shifted("tworoom", parse_shift("tworoom", "physics-hard"), size=32)
    eps = collect_episodes(env, 2, 999, 21)
    err = open_loop_error(model, eps, horizon=3)
    # 21 steps at frameskip 2 -> 11 frames -> 8 start points per episode.
    assert err["horizon"] == [1, 2, 3] and err["windows"] == 16
    assert all(np.isfinite(err["mse"])) and min(err["mse"]) > 0


def test_run_shift_writes_results_and_report(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "ckpt")
    cfg = ShiftConfig(
        checkpoint=ckpt,
        shifts="physics-hard,gain=0.5",
        episodes=2,
        budget=6,
        planning=PlannerOptions(samples=8, iterations=1, elites=2, horizon=2),
        open_loop_episodes=1,
        open_loop_horizon=2,
        out=tmp_path / "simreal",
    )
    results = run_shift(cfg, progress=False)
    assert set(results) == {"source", "physics-hard", "gain0.5"}
    saved = json.loads((tmp_path / "simreal" / "shift_physics-hard.json").read_text())
    assert saved["shift"]["latency"] == 1 and saved["episodes"] == 2
    assert saved["delta_sr"] == saved["success_rate"] - saved["source_success_rate"]
    lo, hi = saved["delta_ci95"]
    assert lo <= saved["delta_sr"] <= hi and len(saved["open_loop"]["mse"]) == 2
    evald = json.loads((tmp_path / "simreal" / "eval_gain0.5.json").read_text())
    assert evald["factors"] == {"gain": 0.5}
    html = simreal_section(tmp_path)
    assert "physics-hard" in html and "ΔSR" in html


def test_source_pairs_and_latency_reach_the_evaluation(tmp_path) -> None:
    from reverie.envs.latency import LatencyEnv
    from reverie.evaluate import EvalConfig, evaluate, make_pairs

    hard = parse_shift("tworoom", "physics-hard")
    source_pairs, _ = make_pairs(make("tworoom"), 2, 0, 25)
    naive, _ = make_pairs(make_shifted("tworoom", hard), 2, 0, 25)
    assert not np.array_equal(naive[0]["goal"], source_pairs[0]["goal"])  # slow physics: nearer

    def run(tag: str, **kw) -> dict:
        cfg = EvalConfig(
            env="tworoom",
            planner="oracle",
            episodes=2,
            planning=PlannerOptions(samples=20, iterations=2, elites=5),
            budget=10,
            videos=0,
            factors=hard.factor_string(),
            out=tmp_path / f"{tag}.json",
            **kw,
        )
        return evaluate(cfg, progress=False)

    paired = run("paired", latency=hard.latency, source_pairs=True)
    assert paired["latency"] == hard.latency >= 1 and paired["source_pairs"] is True
    source_d = [make("tworoom").goal_distance(p["start"], p["goal"]) for p in source_pairs]
    got_d = [r["start_distance"] for r in paired["records"]]
    np.testing.assert_allclose(got_d, source_d, atol=1e-3)
    naive_run = run("naive", latency=hard.latency)
    naive_d = [make("tworoom").goal_distance(p["start"], p["goal"]) for p in naive]
    np.testing.assert_allclose(
        [r["start_distance"] for r in naive_run["records"]], naive_d, atol=1e-3
    )
    # The delay really reaches the acting env: the first action of an episode is not executed.
    env = LatencyEnv(make("tworoom"), 1)
    env.reset(seed=0)
    before = env.get_state()
    env.step(np.array([1.0, 1.0], np.float32))
    np.testing.assert_array_equal(env.get_state()[:2], before[:2])
    env.step(np.array([0.0, 0.0], np.float32))
    assert env.get_state()[0] > before[0]
    with pytest.raises(ValueError, match="latency"):
        EvalConfig(env="tworoom", planner="oracle", latency=-1)


def test_held_out_episodes_never_reuse_the_source_data_seed() -> None:
    from reverie.simreal.shifts import heldout_seed_base, source_seeds

    meta = {"data": {"settings": {"seed": 999, "policy": "mixed"}}}
    assert heldout_seed_base({"data": {"settings": {"seed": 0}}}, 0) == 999
    with pytest.raises(ReverieError, match="collection seed 999"):
        heldout_seed_base(meta, 0)  # 999 - 0 would replay the training episodes
    assert heldout_seed_base(meta, 1) == 998
    merged = {
        "data": {"settings": {"merged_from": [{"settings": {"seed": 5}}, {"settings": None}]}}
    }
    assert source_seeds(merged) == {5} and source_seeds({}) == set()
    with pytest.raises(ReverieError, match="collection seed 5"):
        heldout_seed_base(merged, 994)
    for seed in (-1, 1000):  # 999 - seed outside the collection seeds
        with pytest.raises(ValueError, match="--seed must be in"):
            ShiftConfig(checkpoint=Path("x"), env="tworoom", seed=seed)


def test_run_shift_refuses_held_out_seeds_of_the_training_data(tmp_path: Path) -> None:
    from reverie.checkpoint import load_checkpoint, save_checkpoint

    model, _ = load_checkpoint(tiny_checkpoint(tmp_path / "a"))
    data = {"data": {"settings": {"seed": 999}}}  # trained on collection seed 999
    ckpt = save_checkpoint(tmp_path / "b", model, step=1, env_name="tworoom", extra=data)
    cfg = ShiftConfig(checkpoint=ckpt, shifts="gain=0.5", episodes=1, out=tmp_path / "s")
    with pytest.raises(ReverieError, match="collection seed 999"):
        run_shift(cfg, progress=False)
    assert not list((tmp_path / "s").glob("eval_*.json"))  # refused before any evaluation
