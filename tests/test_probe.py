"""Probes: ridge R² finds a planted look variable, reports ~0 for an absent one, and the command
reports state and look probes of a real checkpoint.

    .venv/bin/python -m pytest tests/test_probe.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.cli import main
from reverie.probe import (
    ProbeConfig,
    look_distance,
    probe_section,
    probe_table,
    ridge_r2,
    run_probe,
)
from reverie.train import TrainConfig, train


def _synthetic(planted: bool, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """40 'episodes' of 20 frames: a 2-D state that moves per frame, a look constant per
    episode; embeddings carry the state and (if ``planted``) the look, plus noise."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(3, 16))  # (variables, D)
    emb, targets = [], []
    for _ in range(40):
        state = rng.uniform(-1, 1, size=(20, 2))
        look = np.full((20, 1), rng.uniform(0, 1))
        z = state @ mix[:2] + (look @ mix[2:] if planted else 0) + 0.05 * rng.normal(size=(20, 16))
        emb.append(z)
        targets.append(np.concatenate([state, look], axis=1))
    return emb, targets


def test_look_probe_detects_a_planted_look_and_reports_zero_without_it() -> None:
    names = ["x", "y", "hue"]
    planted = probe_table(*_synthetic(planted=True), names, alpha=1.0)
    absent = probe_table(*_synthetic(planted=False), names, alpha=1.0)
    assert planted["x"] > 0.95 and planted["y"] > 0.95
    assert planted["hue"] > 0.9  # the look is in the embedding: the probe finds it
    assert absent["x"] > 0.95 and absent["y"] > 0.95  # state unaffected
    assert abs(absent["hue"]) < 0.15  # no look in the embedding: ~0 (or a little below)


def test_look_distance_is_zero_for_identical_looks_and_grows_with_the_look() -> None:
    rng = np.random.default_rng(0)
    z = [rng.normal(size=(10, 8)) for _ in range(4)]
    assert look_distance(z, z) == 0.0
    moved = [e + 0.5 * rng.normal(size=8) for e in z]  # a per-episode look offset
    assert 0.1 < look_distance(moved, z) < 1.0


def test_ridge_r2_reports_none_for_a_constant_variable() -> None:
    x = np.random.default_rng(0).normal(size=(50, 4))
    y = np.stack([x[:, 0] * 2.0, np.full(50, 3.0)], axis=1)
    r2 = ridge_r2(x[:40], y[:40], x[40:], y[40:], alpha=1e-3)
    assert r2[0] is not None and r2[0] > 0.99
    assert r2[1] is None


def test_probe_config_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--looks"):
        ProbeConfig(checkpoint=tmp_path, looks="sepia")
    with pytest.raises(ValueError, match="--episodes"):
        ProbeConfig(checkpoint=tmp_path, episodes=2)
    with pytest.raises(ValueError, match="--alpha"):
        ProbeConfig(checkpoint=tmp_path, alpha=0.0)


def test_probe_command_reports_state_and_look(
    tworoom_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threads = torch.get_num_threads()
    try:
        run = train(
            TrainConfig(
                data=tworoom_data,
                out=tmp_path / "run",
                preset="tiny",
                steps=30,
                threads=1,
                progress=False,
                tensorboard=False,
            )
        )
    finally:
        torch.set_num_threads(threads)
    result = run_probe(ProbeConfig(checkpoint=run, looks="visual", episodes=8, steps=40))
    assert set(result["state_r2"]) == {"x", "y", "vx", "vy"}
    assert {"agent_hue", "lighting", "camera_x", "camera_y"} <= set(result["look_r2"])
    assert result["look_r2"]["floor_tint"] is None  # never randomised: nothing to probe
    assert result["look_distance"] > 0  # an untrained-ish encoder is not look-invariant
    assert json.loads(Path(result["out"]).read_text())["looks"] == "visual"
    out = tmp_path / "p.json"
    assert main(["probe", "--checkpoint", str(run), "--episodes", "6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "state" in printed and "R²" in printed
    assert json.loads(out.read_text())["look_r2"] == {}
    assert "Probes" in probe_section(run) and "look distance" in probe_section(run)
    assert probe_section(tmp_path) == ""
    assert main(["probe", "--checkpoint", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err


def test_angles_are_probed_as_sine_and_cosine() -> None:
    # An embedding holding (sin, cos) of an angle that wraps at ±pi exactly: the raw angle is not a
    # linear function of it, its sine and cosine are.
    from reverie.probe import angle_features, probe_table

    rng = np.random.default_rng(0)
    episodes = [rng.uniform(-np.pi, np.pi, (200, 1)) for _ in range(8)]
    emb = [np.concatenate([np.sin(a), np.cos(a), rng.normal(size=(200, 4))], 1) for a in episodes]
    raw = probe_table(emb, episodes, ["theta"], 1e-3)["theta"]
    states, names = angle_features(episodes, ["theta"], ("theta",))
    wrapped = probe_table(emb, states, names, 1e-3)
    assert names == ["theta_sin", "theta_cos"]
    assert raw < 0.8 and min(wrapped.values()) > 0.99  # raw: ~0.54


def test_mlp_probe_reads_what_a_linear_probe_cannot() -> None:
    """A variable the embedding holds only through a non-linear map (|w·z|): the ridge probe
    scores ~0, the MLP probe recovers it; both find a linearly planted one."""
    rng = np.random.default_rng(0)
    emb, targets = [], []
    for _ in range(40):
        z = rng.normal(size=(20, 8))
        targets.append(np.stack([z[:, 0] + z[:, 1], np.abs(z[:, 2])], axis=1))
        emb.append(z)
    linear = probe_table(emb, targets, ["lin", "abs"], alpha=1.0)
    mlp = probe_table(emb, targets, ["lin", "abs"], alpha=1.0, kind="mlp")
    assert linear["lin"] > 0.95 and mlp["lin"] > 0.9
    assert linear["abs"] < 0.1 and mlp["abs"] > 0.7
