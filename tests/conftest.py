"""Shared fixtures: a small Two-Room dataset collected once per test session."""

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
