"""Windows: never straddle episodes; frame t pairs with action t and frame t+1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.data.dataset import SequenceDataset
from reverie.envs import make


def test_shapes_and_counts(tworoom_data: Path) -> None:
    ds = SequenceDataset(tworoom_data, history=3, horizon=2, frameskip=2)
    # 30 episodes of 61 frames; a window spans (5-1)*2 = 8 steps -> 61 - 8 = 53 starts each.
    assert len(ds) == 30 * 53 and ds.num_episodes == 30
    item = ds[0]
    assert item["obs"].shape == (5, 3, 64, 64) and item["obs"].dtype == torch.uint8
    assert item["actions"].shape == (4, 4) and ds.action_dim == 4 and ds.raw_action_dim == 2
    assert item["states"].shape == (5, 4)


def test_windows_never_cross_episodes(tworoom_data: Path) -> None:
    ds = SequenceDataset(tworoom_data, history=4, horizon=4, frameskip=3)
    batch = ds.get_batch(torch.arange(len(ds)))
    # Within an episode the agent moves at most VMAX*|a| = 8*sqrt(2) units per step; across an
    # episode boundary it jumps to an unrelated start: detect any jump larger than physics allows.
    steps = batch["states"][:, 1:, :2] - batch["states"][:, :-1, :2]
    assert steps.norm(dim=-1).max() <= 8.0 * 2**0.5 * 3 + 1e-6
    # And by index: the first and last frame of every window fall in the same episode.
    first = ds.starts
    last = first + (ds.window - 1) * ds.frameskip
    episode_of = np.searchsorted(ds._offsets, np.stack([first, last]), side="right")
    assert (episode_of[0] == episode_of[1]).all()


def test_frame_action_alignment_replays_in_the_simulator(tworoom_data: Path) -> None:
    """Set the env to state t, apply the window's action block t: we land exactly on state t+1."""
    ds = SequenceDataset(tworoom_data, history=2, horizon=1, frameskip=2)
    env = make("tworoom")
    env.reset(seed=0)
    for i in np.random.default_rng(0).integers(len(ds), size=20):
        w = ds[int(i)]
        env.set_state(w["states"][0].numpy())
        for t in range(2):
            for a in w["actions"][t].view(2, 2):  # [frameskip, A]
                env.step(a.numpy())
            np.testing.assert_allclose(env.get_state(), w["states"][t + 1].numpy())
            np.testing.assert_array_equal(env.render(), w["obs"][t + 1].permute(1, 2, 0).numpy())


def test_episode_subset_and_missing(tworoom_data: Path) -> None:
    ds = SequenceDataset(tworoom_data, history=1, horizon=1, episodes=[0, 5])
    assert ds.episode_ids == [0, 5] and len(ds) == 2 * 60
    assert ds.episode(5)["obs"].shape[0] == 61
    with pytest.raises(KeyError):
        ds.episode(7)


def test_bad_arguments(tworoom_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="history"):
        SequenceDataset(tworoom_data, history=0, horizon=1)
    from reverie.io import ReverieError

    with pytest.raises(ReverieError, match="not found"):
        SequenceDataset(tmp_path / "nothing", history=1, horizon=1)
    with pytest.raises(ReverieError, match="too short"):
        SequenceDataset(tworoom_data, history=50, horizon=50)
