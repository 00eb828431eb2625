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


def tiny_play_run(
    root: Path, env: str, episodes: int, episode_steps: int, steps: int, **kw
) -> Path:
    """Collect, train the ``tiny`` preset and a decoder on it, one thread: a checkpoint the viewer
    can serve. ``kw``: collection overrides (``policy``, ``shard_episodes``), ``val_windows`` and
    ``decoder_steps``."""
    from reverie.data.collect import CollectConfig, collect
    from reverie.models.decoder import DecoderTrainConfig, train_decoder
    from reverie.train import TrainConfig, train

    val_windows, decoder_steps = kw.pop("val_windows", 16), kw.pop("decoder_steps", steps)
    data = collect(
        CollectConfig(
            env=env, episodes=episodes, out=root / "data", episode_steps=episode_steps, **kw
        ),
        progress=False,
    )
    run = train(
        TrainConfig(
            data=data,
            out=root / "run",
            preset="tiny",
            steps=steps,
            tensorboard=False,
            progress=False,
            threads=1,
            val_windows=val_windows,
        )
    )
    decoder = DecoderTrainConfig(checkpoint=run, steps=decoder_steps, progress=False, threads=1)
    train_decoder(decoder)
    return run


@pytest.fixture(scope="session")
def make_play_run():
    """``tiny_play_run`` for fixtures in other directories (conftests are not importable)."""
    return tiny_play_run


@pytest.fixture(scope="session")
def tabletop_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Tabletop checkpoint with a decoder (6 random episodes of 30 steps, 10 training
    steps; ~15 s): worlds from a prompt need a model of the tabletop to play and plan in."""
    root = tmp_path_factory.mktemp("play-tabletop")
    return tiny_play_run(root, "tabletop", 6, 30, 10, policy="random", shard_episodes=6)
