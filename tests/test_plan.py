"""`reverie plan`: one episode, the same as `reverie eval`'s episode PAIR; image goals; bad input.

.venv/bin/python -m pytest tests/test_plan.py -q
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reverie.cli import main
from reverie.evaluate import EvalConfig, evaluate
from reverie.io import ReverieError
from reverie.plan import PlanConfig, plan
from reverie.planning.options import PlannerOptions

SMALL = {"planning": PlannerOptions(samples=16, iterations=2, elites=4, horizon=3), "budget": 12}


def tiny_checkpoint(out: Path, frameskip: int = 2) -> Path:
    """An untrained tiny world model for Two-Room at 32 px, saved as a checkpoint."""
    from reverie.checkpoint import save_checkpoint
    from reverie.models.world_model import WorldModel
    from reverie.train import TrainConfig

    cfg = TrainConfig(data=Path("unused"), out=out, preset="tiny").model_config(2 * frameskip, 32)
    cfg = dataclasses.replace(cfg, frameskip=frameskip)
    torch.manual_seed(0)
    return save_checkpoint(out, WorldModel(cfg).eval(), step=3, env_name="tworoom")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("plan") / "ckpt")


def test_plan_replays_the_eval_episode_of_the_same_pair(ckpt: Path, tmp_path: Path) -> None:
    ev = evaluate(
        EvalConfig(checkpoint=ckpt, episodes=3, videos=0, out=tmp_path / "eval.json", **SMALL),
        progress=False,
    )
    r = plan(PlanConfig(checkpoint=ckpt, pair=2, out=tmp_path / "p2", **SMALL))
    rec = ev["records"][2]
    assert r["start"].endswith(f"(seed {rec['seed']})")
    assert (r["success"], r["steps"]) == (rec["success"], rec["steps"])
    assert r["final_distance"] == pytest.approx(rec["final_distance"])
    assert r["plan_cost"] == pytest.approx(rec["plan_cost"])
    assert len(r["actions"]) == r["steps"] and all(len(a) == 2 for a in r["actions"])
    assert np.abs(np.array(r["actions"])).max() <= 1.0
    saved = json.loads((tmp_path / "p2" / "plan.json").read_text())
    assert saved["steps"] == r["steps"] and saved["video"] == "plan.gif"
    with Image.open(tmp_path / "p2" / "plan.gif") as gif:
        assert gif.n_frames == r["steps"] + 1  # the start frame, then one per env step
    # Another pair is another episode.
    r0 = plan(PlanConfig(checkpoint=ckpt, pair=0, out=tmp_path / "p0", **SMALL))
    assert r0["start"] != r["start"]


def test_goal_image_plans_without_a_goal_state(ckpt: Path, tmp_path: Path) -> None:
    by_pair = plan(PlanConfig(checkpoint=ckpt, pair=1, out=tmp_path / "pair", **SMALL))
    goal_png = tmp_path / "pair" / "goal.png"
    cfg = PlanConfig(checkpoint=ckpt, pair=1, goal_image=goal_png, out=tmp_path / "img", **SMALL)
    r = plan(cfg)
    # The same goal pixels give the same first search; nothing can test success, so the whole
    # budget runs and the true distances are unknown (null), the latent ones are not.
    assert r["plan_cost"][0] == pytest.approx(by_pair["plan_cost"][0])
    assert r["success"] is None and r["final_distance"] is None
    assert r["steps"] == SMALL["budget"] and len(r["actions"]) == SMALL["budget"]
    assert r["start_latent_distance"] == pytest.approx(by_pair["start_latent_distance"])
    assert np.isfinite(r["final_latent_distance"])


def test_start_seed_sets_the_start(ckpt: Path, tmp_path: Path) -> None:
    from reverie.envs import make
    from reverie.evaluate import pair_from_seed

    r = plan(PlanConfig(checkpoint=ckpt, start_seed=123, out=tmp_path / "s", **SMALL))
    env = make("tworoom", size=32)
    pair = pair_from_seed(env, 123, 25)  # the start of reset(seed=123), the expert's goal
    assert r["start"] == "seed 123"
    assert r["start_distance"] == pytest.approx(env.goal_distance(pair["start"], pair["goal"]))
    assert len(r["actions"]) == r["steps"] >= 1


def test_bad_goal_images_are_one_line_errors(ckpt: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.png"
    Image.new("RGB", (16, 16)).save(small)
    with pytest.raises(ReverieError, match="16x16; the model sees 32x32"):
        plan(PlanConfig(checkpoint=ckpt, goal_image=small, **SMALL))
    text = tmp_path / "goal.png"
    text.write_text("not an image")
    with pytest.raises(ReverieError, match="cannot read goal image"):
        plan(PlanConfig(checkpoint=ckpt, goal_image=text, **SMALL))
    with pytest.raises(ReverieError, match="does not exist"):
        plan(PlanConfig(checkpoint=ckpt, goal_image=tmp_path / "none.png", **SMALL))


@pytest.mark.parametrize(
    ("argv", "msg"),
    [
        ([], "--checkpoint is required"),
        (["--planner", "oracle"], "unknown planner 'oracle'"),
        (["--pair", "-1"], "--pair must be >= 0"),
        (["--samples", "0"], "--samples must be an integer >= 1"),
        (["--cost", "max"], "--cost must be one of"),
    ],
)
def test_bad_plan_options_are_one_line_cli_errors(
    argv: list[str], msg: str, ckpt: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv:
        argv = ["--checkpoint", str(ckpt), *argv]
    with pytest.raises(SystemExit) as exit_:
        main(["plan", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("reverie plan: error:") and msg in err


def test_run_episode_needs_a_goal_state_or_frame() -> None:
    from reverie.envs import make
    from reverie.planning import MPCConfig, RandomPlanner, run_episode

    env = make("tworoom", size=32)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="goal_state or a goal_frame"):
        run_episode(env, RandomPlanner(3, 10), lambda ctx: None, None, MPCConfig(frameskip=5))


def test_plan_in_a_scene_records_it(tabletop_run: Path, tmp_path: Path) -> None:
    """`reverie plan --scene`: the episode happens in that world and plan.json records its spec."""
    from reverie.scenes.spec import save_spec, spec_from_dict
    from reverie.scenes.text import parse_prompt

    spec = parse_prompt("a heavy yellow cube left of a bouncy pink ball").spec
    save_spec(spec, tmp_path / "s.json")
    argv = ["plan", "--checkpoint", str(tabletop_run), "--scene", str(tmp_path / "s.json")]
    argv += ["--budget", "10", "--samples", "16", "--iterations", "2", "--elites", "4"]
    assert main([*argv, "--out", str(tmp_path / "p")]) == 0
    record = json.loads((tmp_path / "p" / "plan.json").read_text())
    assert spec_from_dict(record["scene"]) == spec
    first = np.asarray(Image.open(tmp_path / "p" / "plan.gif").convert("RGB"))
    assert first.size > 0
