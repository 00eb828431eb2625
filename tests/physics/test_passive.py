"""Tests of the passive data mode, the Tabletop occluder and dataset merging.

.venv/bin/python -m pytest tests/physics/test_passive.py -q
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reverie.data.collect import CollectConfig, collect
from reverie.data.dataset import SequenceDataset
from reverie.data.format import load_manifest, read_shard
from reverie.envs import make
from reverie.envs.policies import PARK_XY, SCREEN_TURN, make_policy, screen_x
from reverie.io import ReverieError
from reverie.physics.passive import merge_datasets


def _episodes(root: Path) -> list[dict[str, np.ndarray]]:
    m = load_manifest(root)
    return [ep for s in m["shards"] for _, ep in sorted(read_shard(root / s["file"]).items())]


def test_passive_episodes_have_no_agent_but_moving_objects(passive_data: Path) -> None:
    env = make("tabletop", size=32)
    moved = 0
    for ep in _episodes(passive_data):
        assert not ep["actions"].any()  # the agent never acts
        # After set-up the pusher stays parked (frame 0 is recorded before the policy's reset).
        np.testing.assert_allclose(
            ep["states"][1:, :2], np.broadcast_to(PARK_XY, (20, 2)), atol=1e-3
        )
        pos = np.stack([env.object_positions(s) for s in ep["states"][1:]])  # (T, K, 3)
        moved += int(np.abs(pos - pos[:1]).max() > 0.05)
    assert moved >= 3  # scripted events (launches, drops) moved objects in most episodes
    env.close()


def test_passive_collection_is_deterministic(passive_data: Path, tmp_path: Path) -> None:
    again = collect(
        CollectConfig(
            env="tabletop",
            episodes=6,
            out=tmp_path,
            policy="passive",
            size=32,
            episode_steps=20,
            shard_episodes=3,
        ),
        progress=False,
    )
    first, second = load_manifest(passive_data), load_manifest(again)
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]


def test_passive_policy_needs_tabletop() -> None:
    env = make("tworoom")
    with pytest.raises(ValueError, match="passive"):
        make_policy("passive").reset(env, np.random.default_rng(0))


def test_screen_slides_continuously_and_hides_what_is_behind_it() -> None:
    xs = np.array([screen_x(0.3, 0.07, t) for t in range(60)])
    assert np.abs(xs).max() <= SCREEN_TURN + 1e-9
    assert np.abs(np.diff(xs)).max() <= 0.07 + 1e-9  # no jumps, even where it turns round
    env = make("tabletop", size=64)
    env.reset(seed=0)
    assert env.occluder_position() is None
    env.set_object_pose(0, [0.0, 0.0, 0.445])
    env.set_object_pose(1, [0.25, 0.25, 0.445])
    visible = env.render()
    env.set_occluder([0.0, -0.08])
    np.testing.assert_allclose(env.occluder_position(), [0.0, -0.08])
    hidden = env.render()
    env.hide_object(0)
    np.testing.assert_array_equal(env.render(), hidden)  # the cube was fully hidden
    assert np.any(visible != hidden)
    env.reset(seed=0)
    assert env.occluder_position() is None  # reset removes it
    env.close()


def test_merge_datasets(passive_data: Path, tmp_path: Path) -> None:
    other = collect(
        CollectConfig(
            env="tabletop",
            episodes=2,
            out=tmp_path / "mixed",
            policy="mixed",
            size=32,
            episode_steps=20,
            seed=1,
        ),
        progress=False,
    )
    merged = merge_datasets([passive_data, other], tmp_path / "merged", shard_episodes=4)
    ds = SequenceDataset(merged, history=3, horizon=1)
    assert ds.num_episodes == 8 and ds.episode_ids == list(range(8))
    np.testing.assert_array_equal(
        ds.episode(6)["obs"].numpy().transpose(0, 2, 3, 1), _episodes(other)[0]["obs"]
    )
    wrong = collect(
        CollectConfig(env="tabletop", episodes=1, out=tmp_path / "big", size=48, episode_steps=5),
        progress=False,
    )
    with pytest.raises(ReverieError, match="observation_space"):
        merge_datasets([passive_data, wrong], tmp_path / "bad")
