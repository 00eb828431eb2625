"""Shared fixtures, made once per session: a small Two-Room dataset, a tiny Tabletop checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture(scope="session")
def tworoom_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 mixed-policy Two-Room episodes of 60 steps (about a second to collect)."""
    from reverie.data.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("tworoom-data")
    return collect(
        CollectConfig(env="tworoom", episodes=30, out=out, episode_steps=60, shard_episodes=10),
        progress=False,
    )


@pytest.fixture(scope="session")
def tabletop_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Tabletop checkpoint with a decoder (6 random episodes of 30 steps, 10 training
    steps; ~15 s): worlds from a prompt need a model of the tabletop to play and plan in."""
    from reverie.data.collect import CollectConfig, collect
    from reverie.models.decoder import DecoderTrainConfig, train_decoder
    from reverie.train import TrainConfig, train

    root = tmp_path_factory.mktemp("play-tabletop")
    data = collect(
        CollectConfig(
            env="tabletop",
            episodes=6,
            out=root / "data",
            episode_steps=30,
            shard_episodes=6,
            policy="random",
        ),
        progress=False,
    )
    run = train(
        TrainConfig(
            data=data,
            out=root / "run",
            preset="tiny",
            steps=10,
            tensorboard=False,
            progress=False,
            threads=1,
            val_windows=16,
        )
    )
    train_decoder(DecoderTrainConfig(checkpoint=run, steps=10, progress=False, threads=1))
    return run
