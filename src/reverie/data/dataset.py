"""``SequenceDataset``: windows of ``history + horizon`` frames with the actions between them.

    ds = SequenceDataset("runs/tworoom-data", history=3, horizon=1, frameskip=5)
    batch = ds.get_batch(torch.randint(len(ds), (64,)))
    batch["obs"]      # uint8 (B, T, 3, Hi, Wi), T = history + horizon, frames frameskip steps apart
    batch["actions"]  # float32 (B, T-1, A*frameskip): the raw actions that lead frame t to t+1
    batch["states"]   # float64 (B, T, S): true physical states (probes and tests, not training)
    batch["proprio"]  # float32 (B, T, P): with ``proprio=env.proprio_indices(S)`` only

Windows never cross an episode boundary. The whole dataset is decoded into RAM once (random reads
from HDF5 reach only 1–3k frames/s; from RAM a batch gather is microseconds per frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from reverie.data.format import load_manifest, manifest_hash, read_shard, verify_shards
from reverie.io import ReverieError


class SequenceDataset(torch.utils.data.Dataset):
    """Windows over a collected dataset, held in memory (see module docstring)."""

    def __init__(
        self,
        root: str | Path,
        history: int,
        horizon: int,
        frameskip: int = 1,
        episodes: Sequence[int] | None = None,
        verify: bool = True,
        proprio: Sequence[int] = (),
    ) -> None:
        if history < 1 or horizon < 0 or frameskip < 1:
            raise ValueError(
                f"need history >= 1, horizon >= 0, frameskip >= 1; got {history}, {horizon}, "
                f"{frameskip}"
            )
        self.root = Path(root)
        self.manifest: dict[str, Any] = load_manifest(self.root)
        if not self.manifest.get("complete", False):
            raise ReverieError(f"dataset {self.root} is incomplete: re-run the collect command")
        if verify:
            verify_shards(self.root, self.manifest)
        self.manifest_hash = manifest_hash(self.manifest)
        self.env_name: str = self.manifest["env"]
        self.history, self.horizon, self.frameskip = history, horizon, frameskip
        self.window = history + horizon  # T frames per window
        self.proprio = tuple(int(i) for i in proprio)  # state entries served as batch["proprio"]

        wanted = None if episodes is None else set(int(e) for e in episodes)
        obs, actions, states, starts, ids, lengths = [], [], [], [], [], []
        frame_offset = 0
        for shard in self.manifest["shards"]:
            if wanted is not None and not wanted.intersection(shard["episodes"]):
                continue
            for idx, ep in sorted(read_shard(self.root / shard["file"]).items()):
                if wanted is not None and idx not in wanted:
                    continue
                n_frames = len(ep["obs"])
                if len(ep["actions"]) != n_frames - 1 or len(ep["states"]) != n_frames:
                    raise ReverieError(f"episode {idx} in {shard['file']} has mismatched lengths")
                obs.append(ep["obs"])
                # Pad one zero action so frame and action share an index space per episode.
                actions.append(np.concatenate([ep["actions"], ep["actions"][:1] * 0]))
                states.append(ep["states"])
                span = (self.window - 1) * frameskip  # env steps from first to last frame
                starts.append(frame_offset + np.arange(max(0, n_frames - span)))
                ids.append(idx)
                lengths.append(n_frames)
                frame_offset += n_frames
        if not ids:
            raise ReverieError(f"dataset {self.root} holds none of the requested episodes")
        self.episode_ids: list[int] = ids
        self._offsets = np.concatenate([[0], np.cumsum(lengths)])  # first frame of each episode
        # [F, Hi, Wi, 3] -> [F, 3, Hi, Wi]: channels-first once, at load.
        self.obs = torch.from_numpy(rearrange(np.concatenate(obs), "f h w c -> f c h w").copy())
        self.actions = torch.from_numpy(np.concatenate(actions)).float()  # [F, A]
        self.states = torch.from_numpy(np.concatenate(states))  # [F, S]
        if self.proprio and max(self.proprio) >= self.states.shape[1]:
            raise ReverieError(
                f"proprio entries {list(self.proprio)} past the {self.states.shape[1]}-entry "
                f"states of {self.root}"
            )
        self.starts = torch.from_numpy(np.concatenate(starts)).long()  # [W] window first frames
        if len(self.starts) == 0:
            raise ReverieError(
                f"episodes in {self.root} are too short for windows of {self.window} frames "
                f"at frameskip {frameskip}"
            )
        self.raw_action_dim = int(self.actions.shape[1])
        self.action_dim = self.raw_action_dim * frameskip
        self.image_size = int(self.obs.shape[-1])
        # Offsets within a window: frames [T], actions [T-1, frameskip].
        self._frame_offsets = torch.arange(self.window) * frameskip
        self._action_offsets = (
            torch.arange(self.window - 1)[:, None] * frameskip + torch.arange(frameskip)[None]
        )

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ids)

    @property
    def episode_offsets(self) -> np.ndarray:
        """(E + 1,) first frame of each episode in ``obs`` / ``states``, then the frame count."""
        return self._offsets.copy()

    def __len__(self) -> int:
        return len(self.starts)

    def get_batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Windows ``indices`` (int64, [B]) gathered from RAM in one go."""
        start = self.starts[indices]  # [B]
        frames = start[:, None] + self._frame_offsets[None]  # [B, T]
        acts = start[:, None, None] + self._action_offsets[None]  # [B, T-1, frameskip]
        actions = rearrange(self.actions[acts], "b t k a -> b t (k a)")  # [B, T-1, A*frameskip]
        out = {"obs": self.obs[frames], "actions": actions, "states": self.states[frames]}
        if self.proprio:
            out["proprio"] = out["states"][..., list(self.proprio)].float()  # (B, T, P)
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        batch = self.get_batch(torch.tensor([i % len(self)]))
        return {k: v[0] for k, v in batch.items()}

    def episode(self, episode_id: int) -> dict[str, torch.Tensor]:
        """A whole episode: obs [L+1, 3, Hi, Wi], actions [L, A], states [L+1, S]."""
        if episode_id not in self.episode_ids:
            raise KeyError(f"episode {episode_id} is not in this dataset")
        pos = self.episode_ids.index(episode_id)
        start, end = int(self._offsets[pos]), int(self._offsets[pos + 1])
        return {
            "obs": self.obs[start:end],
            "actions": self.actions[start : end - 1],
            "states": self.states[start:end],
        }
