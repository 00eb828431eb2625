"""Viewer fixtures: one tiny trained checkpoint with a decoder, shared by every viewer test.

Collect 20 Two-Room episodes, train the ``tiny`` preset 50 steps and a decoder 60 steps (~15 s on
one core); the model is poor, which is fine: the tests check the plumbing, not the imagination.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Batch-1 inference gains nothing from a second thread; on a shared 2-core machine the
    # spinning of two OpenMP threads made each step ~5x slower (the server defaults to 1 too).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def play_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reverie.data.collect import CollectConfig, collect
    from reverie.models.decoder import DecoderTrainConfig, train_decoder
    from reverie.train import TrainConfig, train

    root = tmp_path_factory.mktemp("play")
    data = collect(
        CollectConfig(
            env="tworoom", episodes=20, out=root / "data", episode_steps=40, shard_episodes=10
        ),
        progress=False,
    )
    run = train(
        TrainConfig(
            data=data,
            out=root / "run",
            preset="tiny",
            steps=50,
            tensorboard=False,
            progress=False,
            threads=1,
            val_windows=32,
        )
    )
    train_decoder(DecoderTrainConfig(checkpoint=run, steps=60, progress=False, threads=1))
    return run


@pytest.fixture(scope="session")
def shared(play_run: Path):
    from reverie.viewer.play_model import load_play_model

    return load_play_model(play_run)
