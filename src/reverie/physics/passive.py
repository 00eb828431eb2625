"""Training data for the physics suite: passive Tabletop episodes (plus some pushing), one dataset.

    reverie collect --env tabletop --policy passive --episodes 1000 --out runs/tt-passive \
        --episode-steps 50
    reverie collect --env tabletop --policy mixed --episodes 200 --out runs/tt-mixed
    reverie data merge runs/tt-physics runs/tt-passive runs/tt-mixed   # or python -m this module

    from reverie.physics.passive import PhysicsDataConfig, collect_physics_data
    root = collect_physics_data(PhysicsDataConfig(out=Path("runs/tt-physics")))

The passive policy (``reverie.envs.policies.PassivePolicy``) parks the pusher and moves objects by
scripted events (launches, collisions, falls, tosses, a sliding screen), so a world model sees the
physics the clips test. ``merge_datasets`` joins several collected datasets of one env into one
directory that ``SequenceDataset`` and ``reverie train`` read (episodes renumbered, shards copied
with their compression, a manifest recording the sources).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py

from reverie.data.format import (
    FORMAT_VERSION,
    MANIFEST,
    episode_key,
    load_manifest,
    sha256_file,
    shard_name,
)
from reverie.io import ReverieError, atomic_path, atomic_write_json


@dataclass(frozen=True)
class PhysicsDataConfig:
    """Passive + mixed Tabletop episodes, merged into one training set."""

    out: Path
    """Merged dataset directory (the parts go to OUT-passive and OUT-mixed beside it)."""
    passive_episodes: int = 1000
    """Episodes of the passive policy (scripted events, no agent)."""
    mixed_episodes: int = 200
    """Episodes of the mixed (expert + random) pushing policy; 0 for none."""
    episode_steps: int = 50
    """Control steps per episode (objects that fall off do not come back: keep it short)."""
    size: int = 64
    """Image size; the clips must be generated at the same size."""
    seed: int = 0
    """Collection seed in [0, 998] (the mixed part uses seed + 1)."""
    workers: int = 1
    """Collection worker processes."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.passive_episodes < 1 or self.mixed_episodes < 0:
            raise ValueError("need passive_episodes >= 1 and mixed_episodes >= 0")
        if not 0 <= self.seed <= 998:
            raise ValueError(f"seed must be in [0, 998], got {self.seed}")


def collect_physics_data(cfg: PhysicsDataConfig, progress: bool = True) -> Path:
    """Collect the passive and mixed parts (resumable, as ``reverie collect``) and merge them."""
    from reverie.data.collect import CollectConfig, collect

    parts = []
    for policy, episodes, seed in (
        ("passive", cfg.passive_episodes, cfg.seed),
        ("mixed", cfg.mixed_episodes, cfg.seed + 1),
    ):
        if episodes == 0:
            continue
        out = cfg.out.with_name(f"{cfg.out.name}-{policy}")
        parts.append(
            collect(
                CollectConfig(
                    env="tabletop",
                    episodes=episodes,
                    out=out,
                    policy=policy,
                    workers=cfg.workers,
                    seed=seed,
                    size=cfg.size,
                    episode_steps=cfg.episode_steps,
                ),
                progress=progress,
            )
        )
    return merge_datasets(parts, cfg.out)


def merge_datasets(sources: list[Path], out: Path, shard_episodes: int = 50) -> Path:
    """Join datasets of one env and image size into ``out`` (episodes renumbered 0..N-1)."""
    if not sources:
        raise ValueError("merge_datasets needs at least one source dataset")
    manifests = [load_manifest(s) for s in sources]
    first = manifests[0]
    for src, m in zip(sources, manifests):
        if not m.get("complete", False):
            raise ReverieError(f"dataset {src} is incomplete: finish its collection first")
        for key in ("env", "observation_space", "action_space", "state_dim"):
            if m.get(key) != first.get(key):
                raise ReverieError(f"cannot merge {src}: its {key} differs from {sources[0]}'s")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # (source dir, shard file, episode key) in order; new index = position in this list.
    episodes = [
        (src, shard["file"], episode_key(e))
        for src, m in zip(sources, manifests)
        for shard in m["shards"]
        for e in shard["episodes"]
    ]
    shards: list[dict[str, Any]] = []
    total_frames = 0
    for start in range(0, len(episodes), shard_episodes):
        name = shard_name(len(shards))
        chunk = episodes[start : start + shard_episodes]
        frames = 0
        with atomic_path(out / name) as tmp, h5py.File(tmp, "w") as dst:
            opened: dict[Path, h5py.File] = {}
            try:
                for k, (src, file, key) in enumerate(chunk):
                    path = Path(src) / file
                    if path not in opened:
                        opened[path] = h5py.File(path, "r")
                    opened[path].copy(opened[path][key], dst, name=episode_key(start + k))
                    frames += int(opened[path][key]["obs"].shape[0])
            finally:
                for f in opened.values():
                    f.close()
        total_frames += frames
        shards.append(
            {
                "file": name,
                "episodes": list(range(start, start + len(chunk))),
                "frames": frames,
                "sha256": sha256_file(out / name),
            }
        )
    manifest = {
        **{
            k: first[k]
            for k in (
                "env",
                "env_id",
                "observation_space",
                "action_space",
                "state_dim",
                "factor_ranges",
                "success_rule",
                "reverie_version",
            )
            if k in first
        },
        "format_version": FORMAT_VERSION,
        "settings": {
            "merged_from": [
                {"dir": str(s), "settings": m.get("settings"), "episodes": m["episodes"]}
                for s, m in zip(sources, manifests)
            ]
        },
        "episodes": len(episodes),
        "frames": total_frames,
        "shards": shards,
        "complete": True,
    }
    for stale in out.glob("shard_*.h5"):  # left from an earlier, larger merge
        if stale.name not in {s["file"] for s in shards}:
            stale.unlink()
    atomic_write_json(out / MANIFEST, manifest)
    return out


if __name__ == "__main__":  # the same grammar as `reverie data merge OUT SOURCE ...`
    from reverie.cli import main

    raise SystemExit(main(["data", "merge", *sys.argv[1:]]))
