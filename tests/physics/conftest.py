"""Fixtures of the physics-suite tests: a small clip set and a small passive dataset (32 px).

.venv/bin/python -m pytest tests/physics -q
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 pairs per category (40 in all), 16 frames of 32 px (a few seconds to make)."""
    from reverie.physics.clips import GenerateConfig, generate_clips

    out = tmp_path_factory.mktemp("physics-clips")
    return generate_clips(
        GenerateConfig(out=out, pairs_per_category=8, size=32, frames=16), progress=False
    )


@pytest.fixture(scope="session")
def passive_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 passive Tabletop episodes of 20 steps at 32 px."""
    from reverie.data.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("passive-data")
    return collect(
        CollectConfig(
            env="tabletop",
            episodes=6,
            out=out,
            policy="passive",
            size=32,
            episode_steps=20,
            shard_episodes=3,
        ),
        progress=False,
    )
