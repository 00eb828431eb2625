"""Tests of surprise scoring: metrics, broken scorers failing, chance for an untrained model.

.venv/bin/python -m pytest tests/physics/test_surprise.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.checkpoint import save_checkpoint
from reverie.models.encoder import EncoderConfig
from reverie.models.predictor import PredictorConfig
from reverie.models.world_model import WorldModel, WorldModelConfig
from reverie.physics.clips import load_clips, reproduce_pair
from reverie.physics.surprise import (
    ScoreConfig,
    auc,
    clip_scores,
    evaluate_scorer,
    latent_surprise,
    pairwise_accuracy,
    score_clips,
)


def _tiny_model(frameskip: int = 1, seed: int = 0) -> WorldModel:
    torch.manual_seed(seed)
    cfg = WorldModelConfig(
        EncoderConfig(image_size=32, channels=(8, 16, 32), embed_dim=32),
        PredictorConfig(
            embed_dim=32, action_dim=2 * frameskip, history=3, hidden=64, depth=2, cond_dim=32
        ),
        frameskip=frameskip,
    )
    return WorldModel(cfg).eval()


def test_metrics_count_ties_as_wrong_and_auc_as_half() -> None:
    possible, impossible = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 5.0])
    assert pairwise_accuracy(possible, impossible) == pytest.approx(2 / 3)
    const = np.ones(10)
    assert pairwise_accuracy(const, const) == 0.0  # a constant scorer ranks nothing right
    assert auc(const, const) == 0.5
    assert auc(np.zeros(4), np.ones(4)) == 1.0 and auc(np.ones(4), np.zeros(4)) == 0.0


def test_clip_scores_use_only_frames_from_the_violation_on() -> None:
    surprise = np.array([[np.nan, 9.0, 1.0, 2.0], [np.nan, 1.0, 9.0, np.nan]])
    top, mean = clip_scores(surprise, np.array([2, 1]))
    np.testing.assert_allclose(top, [2.0, 9.0])
    np.testing.assert_allclose(mean, [1.5, 5.0])
    with pytest.raises(ValueError, match="no scored frame"):
        clip_scores(surprise, np.array([4, 1]))


def test_a_scorer_that_ignores_the_frames_fails_and_a_physics_observer_passes(
    clip_dir: Path,
) -> None:
    clips = load_clips(clip_dir)

    def blind(frames: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return np.ones(frames.shape[:2], np.float32)  # surprise that never looks at a frame

    blind_result = evaluate_scorer(blind, clips)
    assert blind_result["pairwise_accuracy"] < 0.75  # the check a real model must pass fails
    assert blind_result["absolute_error"] == pytest.approx(0.5)

    # An ideal observer that knows the physics and the scene's start: its prediction of every
    # frame is the lawful re-simulation from the seed; surprise = pixel error against it.
    sub = [0, 8, 16, 24, 32, 1, 9, 17, 25, 33]
    lawful = {k: reproduce_pair(clip_dir, k)["possible"].astype(np.float32) for k in sub}
    clips.possible, clips.impossible = clips.possible[sub], clips.impossible[sub]
    clips.actions, clips.pairs = clips.actions[sub], [clips.pairs[k] for k in sub]

    def observer(frames: np.ndarray, actions: np.ndarray) -> np.ndarray:
        out = np.stack([((f - lawful[k]) ** 2).mean((1, 2, 3)) for f, k in zip(frames, sub)])
        out[:, 0] = np.nan
        return out

    result = evaluate_scorer(observer, clips)
    assert result["pairwise_accuracy"] == 1.0 and result["absolute_error"] == 0.0


def test_untrained_model_scores_within_chance(clip_dir: Path) -> None:
    clips = load_clips(clip_dir)
    accs = [
        evaluate_scorer(latent_surprise(_tiny_model(seed=s)), clips)["pairwise_accuracy"]
        for s in range(2)
    ]
    # 40 pairs: a fair coin lands in [0.3, 0.7] with probability > 0.99.
    assert all(0.3 <= a <= 0.7 for a in accs), accs


def test_frameskip_models_score_every_sth_frame(clip_dir: Path) -> None:
    clips = load_clips(clip_dir)
    surprise = latent_surprise(_tiny_model(frameskip=2))(clips.possible[:3], clips.actions[:3])
    assert surprise.shape == (3, 16)
    assert np.all(np.isnan(surprise[:, 0])) and np.all(np.isnan(surprise[:, 1::2]))
    assert np.all(np.isfinite(surprise[:, 2::2]))
    with pytest.raises(ValueError, match="px"):
        big = np.zeros((1, 16, 64, 64, 3), np.uint8)
        latent_surprise(_tiny_model())(big, clips.actions[:1])


def test_score_clips_writes_json_and_plot(clip_dir: Path, tmp_path: Path) -> None:
    run = save_checkpoint(tmp_path / "run", _tiny_model(), step=0, env_name="tabletop")
    result = score_clips(ScoreConfig(checkpoint=run, clips=clip_dir))
    saved = json.loads((run / "physics.json").read_text())
    for key in (
        "pairwise_accuracy",
        "by_category",
        "relative_error",
        "absolute_error",
        "pairwise_accuracy_mean",
        "by_variant",
        "pairs",
        "model",
        "clips",
    ):
        assert key in saved and key in result
    assert set(saved["by_category"]) == {
        "permanence",
        "continuity",
        "solidity",
        "gravity",
        "immutability",
    }
    assert saved["relative_error"] == pytest.approx(1 - saved["pairwise_accuracy"])
    assert (run / "physics.png").stat().st_size > 1000
    untrained = score_clips(
        ScoreConfig(checkpoint=run, clips=clip_dir, model="untrained", plot=False)
    )
    assert untrained["model"]["kind"] == "jepa-untrained"
    assert (run / "physics_untrained.json").exists()
    with pytest.raises(ValueError, match="--model"):
        ScoreConfig(checkpoint=run, clips=clip_dir, model="oracle")
