"""The on-disk episode format: HDF5 shards plus a ``manifest.json``.

    DIR/
      manifest.json         format version, env, options, spaces, counts, per-shard sha256
      shard_00000.h5        episodes 0..S-1, one group each: /ep_000000/{obs, actions, states}
      shard_00001.h5        ...

Episode group: ``obs`` uint8 (L+1, Hi, Wi, 3), ``actions`` float32 (L, A), ``states`` float64
(L+1, S); ``actions[t]`` is what the agent did after seeing ``obs[t]``, leading to ``obs[t+1]``.
Attributes: ``seed`` (the env seed of the episode), ``factors`` (JSON of the factor values used),
and for scene collections ``scene`` (JSON of the episode's ``reverie.scenes.SceneSpec``).
Every file is written to a temporary name and renamed, so a shard is either whole or absent.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from reverie.io import ReverieError, read_json, sha256_file  # noqa: F401 (re-exported)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Episode i of a collection run with seed s uses env seed s * SEED_STRIDE + i. Evaluation draws
#: its start/goal pairs from seeds >= EVAL_SEED_BASE, which no collection can reach
#: (collection seeds are < 1000 and episodes < SEED_STRIDE), so evaluation is always held out.
SEED_STRIDE = 1_000_000
MAX_COLLECT_SEED = 999
EVAL_SEED_BASE = 2_000_000_000
#: Evaluation pair j of ``--seed`` s uses env seed EVAL_SEED_BASE + s * EVAL_SEED_STRIDE + j.
#: Bounding s keeps every pair seed >= EVAL_SEED_BASE (no negative seed reaches training seeds)
#: and below the physics clips' block (EVAL_SEED_BASE + 5e8, ``reverie.physics.clips``).
EVAL_SEED_STRIDE = 10_000
MAX_EVAL_SEED = 49_999


def episode_seed(seed: int, index: int) -> int:
    return seed * SEED_STRIDE + index


def check_eval_seed(seed: int) -> None:
    """Refuse (one line) an evaluation ``--seed`` whose pairs would leave the held-out block."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_EVAL_SEED:
        raise ValueError(f"--seed must be an integer in [0, {MAX_EVAL_SEED}], got {seed!r}")


def eval_pair_seed(seed: int, index: int) -> int:
    """Env seed of held-out start/goal pair ``index`` of evaluation ``seed`` (never a collection
    seed: those are < MAX_COLLECT_SEED * SEED_STRIDE + SEED_STRIDE < EVAL_SEED_BASE)."""
    check_eval_seed(seed)
    return EVAL_SEED_BASE + EVAL_SEED_STRIDE * seed + index


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.h5"


def episode_key(index: int) -> str:
    return f"ep_{index:06d}"


def manifest_hash(manifest: dict[str, Any]) -> str:
    """A short stable hash of the data a manifest describes (checkpoints record it).

    Only what defines the data counts (version, env, settings, shard checksums), not bookkeeping
    such as timings, so re-running a finished collection keeps the hash.
    """
    keys = ("format_version", "env", "settings", "shards")
    blob = json.dumps(
        {k: manifest.get(k) for k in keys}, sort_keys=True, separators=(",", ":")
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def create_episode_group(f: h5py.File, index: int) -> h5py.Group:
    """A group for episode ``index`` without creation timestamps (see ``write_episode``)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    gid = h5py.h5g.create(f.id, episode_key(index).encode(), gcpl=gcpl)
    return h5py.Group(gid)


def write_episode(
    group: h5py.Group,
    obs: np.ndarray,
    actions: np.ndarray,
    states: np.ndarray,
    seed: int,
    factors: dict[str, float],
    scene: dict[str, Any] | None = None,
) -> None:
    # lzf: fast enough to load 100k frames in seconds, ~5-20x smaller on these renders.
    # track_times=False: identical episodes give byte-identical shards (checksums reproduce).
    group.create_dataset(
        "obs", data=obs, chunks=(1, *obs.shape[1:]), compression="lzf", track_times=False
    )
    group.create_dataset("actions", data=actions.astype(np.float32), track_times=False)
    group.create_dataset("states", data=states.astype(np.float64), track_times=False)
    group.attrs["seed"] = seed
    group.attrs["factors"] = json.dumps(factors, sort_keys=True)
    if scene is not None:  # the episode's SceneSpec (reverie.scenes), as JSON
        group.attrs["scene"] = json.dumps(scene, sort_keys=True)


def load_manifest(root: str | Path) -> dict[str, Any]:
    """Read and check ``root/manifest.json``: present, parseable, this format version."""
    root = Path(root)
    if not root.is_dir():
        raise ReverieError(f"dataset directory not found: {root}")
    manifest = read_json(root / MANIFEST, what="dataset manifest")
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise ReverieError(
            f"dataset {root} has format version {version!r}; this Reverie reads {FORMAT_VERSION}"
        )
    for key in ("env", "shards", "episodes", "frames"):
        if key not in manifest:
            raise ReverieError(f"dataset manifest {root / MANIFEST} lacks the key {key!r}")
    return manifest


def verify_shards(root: str | Path, manifest: dict[str, Any]) -> None:
    """Check every shard exists and matches its recorded sha256; name the first bad one."""
    root = Path(root)
    for shard in manifest["shards"]:
        path = root / shard["file"]
        if not path.is_file():
            raise ReverieError(f"dataset shard missing: {path}")
        if sha256_file(path) != shard["sha256"]:
            raise ReverieError(f"dataset shard is corrupt (checksum mismatch): {path}")


def read_shard(path: Path) -> dict[int, dict[str, np.ndarray]]:
    """All episodes of one shard, keyed by episode index; unreadable files raise one line."""
    try:
        out = {}
        with h5py.File(path, "r") as f:
            for key in sorted(f.keys()):
                g = f[key]
                out[int(key.split("_")[1])] = {
                    "obs": g["obs"][()],
                    "actions": g["actions"][()],
                    "states": g["states"][()],
                    "seed": int(g.attrs["seed"]),
                }
        return out
    except (OSError, KeyError, ValueError) as e:
        raise ReverieError(f"dataset shard cannot be read: {path}: {e}") from None
