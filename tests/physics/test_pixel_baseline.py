"""Tests of the pixel-space baseline: copy-last start, training, save/load, scoring in the harness.

.venv/bin/python -m pytest tests/physics/test_pixel_baseline.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.io import ReverieError
from reverie.physics.clips import load_clips
from reverie.physics.pixel_baseline import (
    PixelModelConfig,
    PixelPredictor,
    PixelTrainConfig,
    is_pixel_checkpoint,
    load_pixel_model,
    pixel_surprise,
    train_pixel_baseline,
)
from reverie.physics.surprise import ScoreConfig, score_clips


def test_untrained_pixel_model_copies_the_last_frame() -> None:
    model = PixelPredictor(PixelModelConfig(image_size=32, history=2))
    frames = torch.randint(0, 256, (2, 2, 3, 32, 32), dtype=torch.uint8)
    out = model(frames, torch.ones(2, 2))
    torch.testing.assert_close(out, frames[:, -1].float() / 255)
    with pytest.raises(ValueError, match="divisible"):
        PixelModelConfig(image_size=40)


def test_train_save_load_and_score(passive_data: Path, clip_dir: Path, tmp_path: Path) -> None:
    run = train_pixel_baseline(
        PixelTrainConfig(
            data=passive_data,
            out=tmp_path / "pixel",
            steps=20,
            batch_size=4,
            lr=2e-3,
            channels=(16, 32),
            threads=1,
            progress=False,
        )
    )
    assert is_pixel_checkpoint(run) and not is_pixel_checkpoint(tmp_path)
    meta = json.loads((run / "config.json").read_text())
    assert meta["step"] == 20 and np.isfinite(meta["metrics"]["loss"])
    model, _ = load_pixel_model(run)
    clips = load_clips(clip_dir)
    surprise = pixel_surprise(model)(clips.possible[:4], clips.actions[:4])
    assert surprise.shape == (4, 16) and np.all(np.isnan(surprise[:, 0]))
    assert np.all(np.isfinite(surprise[:, 1:])) and np.all(surprise[:, 1:] >= 0)
    result = score_clips(ScoreConfig(checkpoint=run, clips=clip_dir, plot=False))
    assert result["model"]["kind"] == "pixel-baseline" and 0 <= result["pairwise_accuracy"] <= 1
    (run / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ReverieError, match="corrupt"):
        load_pixel_model(run)
