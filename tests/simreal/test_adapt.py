"""Few-shot adaptation: K = 0 keeps the weights, K > 0 moves only what it is told to.

.venv/bin/python -m pytest tests/simreal/test_adapt.py -q
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from reverie.checkpoint import read_meta
from reverie.planning.options import PlannerOptions
from reverie.simreal.adapt import AdaptConfig, adapt, adaptation_curve


def tiny_checkpoint(out: Path, frameskip: int = 2) -> Path:
    """An untrained tiny world model for Two-Room at 32 px, saved as a checkpoint."""
    from reverie.checkpoint import save_checkpoint
    from reverie.models.world_model import WorldModel
    from reverie.train import TrainConfig

    cfg = TrainConfig(data=Path("unused"), out=out, preset="tiny").model_config(2 * frameskip, 32)
    cfg = dataclasses.replace(cfg, frameskip=frameskip)
    torch.manual_seed(0)
    return save_checkpoint(
        out, WorldModel(cfg).eval(), step=7, env_name="tworoom", extra={"train": {"x": 1}}
    )


def test_k0_leaves_weights_untouched(tmp_path: Path) -> None:
    src = tiny_checkpoint(tmp_path / "src")
    run = adapt(AdaptConfig(checkpoint=src, out=tmp_path / "k0", episodes=0, progress=False))
    before, after = load_file(src / "model.safetensors"), load_file(run / "model.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    meta = read_meta(run)
    assert meta["adapt"]["episodes"] == 0 and meta["adapt"]["shift"]["name"] == "physics-hard"
    assert meta["step"] == 7 and meta["train"] == {"x": 1} and meta["env"] == "tworoom"


def test_predictor_only_adaptation_moves_only_the_predictor(tmp_path: Path) -> None:
    src = tiny_checkpoint(tmp_path / "src")
    cfg = AdaptConfig(
        checkpoint=src,
        out=tmp_path / "k2",
        episodes=2,
        steps=3,
        batch_size=4,
        rollout=2,
        shift="gain=0.5",
        progress=False,
    )
    run = adapt(cfg)
    before, after = load_file(src / "model.safetensors"), load_file(run / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("predictor.") for k in changed)
    # BatchNorm running statistics of the frozen encoder did not move either.
    assert not any(k.startswith("encoder.") for k in changed)
    meta = read_meta(run)["adapt"]
    assert meta["episodes"] == 2 and meta["shift"]["factors"] == {"gain": 0.5}
    assert meta["windows"] > 0 and meta["loss_last"] is not None
    full = adapt(dataclasses.replace(cfg, out=tmp_path / "all", params="all"))
    after_all = load_file(full / "model.safetensors")
    assert any(not torch.equal(before[k], after_all[k]) for k in before if k.startswith("encoder."))


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--out must differ"):
        AdaptConfig(checkpoint=tmp_path, out=tmp_path)
    with pytest.raises(ValueError, match="--params"):
        AdaptConfig(checkpoint=tmp_path / "a", out=tmp_path / "b", params="encoder")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown factor"):
        AdaptConfig(checkpoint=tmp_path / "a", out=tmp_path / "b", env="tworoom", shift="x=1")


def test_adaptation_curve_writes_one_point_per_k(tmp_path: Path) -> None:
    src = tiny_checkpoint(tmp_path / "src")
    cfg = AdaptConfig(
        checkpoint=src, out=tmp_path / "curve", steps=2, batch_size=4, rollout=2, progress=False
    )
    curve = adaptation_curve(
        cfg,
        ks=(0, 1),
        eval_episodes=2,
        budget=4,
        planning=PlannerOptions(samples=8, iterations=1, elites=2, horizon=2),
    )
    assert [p["k"] for p in curve["points"]] == [0, 1]
    assert (tmp_path / "curve" / "adapt_curve.json").is_file()
    assert (tmp_path / "curve" / "k001" / "model.safetensors").is_file()


def test_cli_curve_writes_the_reports_curve(tmp_path: Path, capsys) -> None:
    from reverie.cli import main
    from reverie.simreal import simreal_section

    src = tiny_checkpoint(tmp_path / "src")
    argv = ["adapt", "--checkpoint", str(src), "--out", str(src / "simreal"), "--no-progress"]
    argv += ["--curve", "0", "1", "--curve-episodes", "1", "--steps", "2", "--batch-size", "4"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("K=0: SR ") and lines[1].startswith("K=1: SR ")
    curve = json.loads((src / "simreal" / "adapt_curve.json").read_text())
    assert [p["k"] for p in curve["points"]] == [0, 1]
    assert "Adaptation curve" in simreal_section(src)


def test_cli_curve_refuses_negative_k(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--curve values must be >= 0"):
        AdaptConfig(checkpoint=tmp_path / "a", out=tmp_path / "b", curve=(0, -5))
