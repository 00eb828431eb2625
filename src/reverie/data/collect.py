"""Parallel, resumable collection of (frame, action) episodes into HDF5 shards.

    reverie collect --env tworoom --episodes 1000 --out runs/tworoom-data --policy mixed --workers 2

Each shard (``shard_episodes`` episodes) is produced by one worker process (spawn context: MuJoCo
renderers do not survive fork), written to a temporary file and renamed; the manifest is rewritten
atomically after every finished shard. Re-running the same command after an interruption keeps the
finished shards (their checksums are verified) and produces only the missing ones, so the result is
identical to an uninterrupted run.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

import reverie
from reverie.data.format import (
    FORMAT_VERSION,
    MANIFEST,
    MAX_COLLECT_SEED,
    SEED_STRIDE,
    create_episode_group,
    episode_seed,
    load_manifest,
    sha256_file,
    shard_name,
    write_episode,
)
from reverie.envs import RANDOMIZE_CHOICES, env_class, make, resolve
from reverie.envs.policies import POLICIES, make_policy
from reverie.io import ReverieError, atomic_path, atomic_write_json


@dataclass(frozen=True)
class CollectConfig:
    """What to collect and where."""

    env: str = "tworoom"
    """Environment short name (see ``reverie envs``)."""
    episodes: int | None = None
    """Number of episodes to collect (None: the env's recipe, ``reverie.recipes``; else 100)."""
    out: Path = Path("runs/data")
    """Output directory (created; re-running continues or grows a collection, never shrinks it)."""
    policy: str = "mixed"
    """expert | random | mixed (expert with random segments: diverse yet goal-directed)."""
    workers: int = 1
    """Worker processes; each writes whole shards."""
    seed: int = 0
    """Base seed in [0, 999]: episode i uses env seed seed*1e6 + i (never an evaluation seed)."""
    size: int = 64
    """Rendered image size in pixels (square)."""
    episode_steps: int | None = None
    """Control steps per episode; None takes the env's default length."""
    randomize: str = "none"
    """Factors drawn afresh per episode: none | physics | visual | both (ranges in the manifest)."""
    shard_episodes: int = 20
    """Episodes per shard file (the unit of parallelism and of resumption)."""
    progress: bool = True
    """Show a progress bar (``reverie collect``; the Python call takes ``progress=``)."""
    scenes: str = "none"
    """tabletop only: none (the env's own scene) | random (a scene spec drawn per episode from
    the family, seeded by the episode seed) | a spec JSON file (every episode in that world).
    Each episode's spec is stored with it (attribute ``scene``) and in the manifest."""
    scene_objects: int = 2
    """Objects per random scene (1-4; fixed, so every episode's state has one layout)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", resolve(self.env))
        object.__setattr__(self, "out", Path(self.out))
        if self.episodes is None:  # the env's recipe (how its headline row was collected)
            from reverie.recipes import recipe

            object.__setattr__(self, "episodes", int(recipe(self.env).get("episodes", 100)))
        if not 1 <= self.episodes < SEED_STRIDE:
            raise ValueError(f"--episodes must be in [1, {SEED_STRIDE - 1}], got {self.episodes}")
        if self.policy not in POLICIES:
            raise ValueError(f"--policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if not 1 <= self.workers <= 64:
            raise ValueError(f"--workers must be in [1, 64], got {self.workers}")
        if not 0 <= self.seed <= MAX_COLLECT_SEED:
            raise ValueError(f"--seed must be in [0, {MAX_COLLECT_SEED}], got {self.seed}")
        if not 16 <= self.size <= 512:
            raise ValueError(f"--size must be in [16, 512], got {self.size}")
        if self.episode_steps is not None and not 1 <= self.episode_steps <= 10_000:
            raise ValueError(f"--episode-steps must be in [1, 10000], got {self.episode_steps}")
        if self.randomize not in RANDOMIZE_CHOICES:
            raise ValueError(
                f"--randomize must be one of {RANDOMIZE_CHOICES}, got {self.randomize!r}"
            )
        if self.scenes != "none" and self.env != "tabletop":
            raise ValueError(f"--scenes needs --env tabletop (got {self.env})")
        if not 1 <= self.scene_objects <= 4:
            raise ValueError(f"--scene-objects must be in [1, 4], got {self.scene_objects}")
        if not 1 <= self.shard_episodes <= 10_000:
            raise ValueError(f"--shard-episodes must be >= 1, got {self.shard_episodes}")

    @property
    def steps(self) -> int:
        return self.episode_steps or env_class(self.env).max_episode_steps

    def shard_ranges(self) -> list[range]:
        n, s = self.episodes, self.shard_episodes
        return [range(i, min(i + s, n)) for i in range(0, n, s)]


def episode_scene(cfg: CollectConfig, seed: int) -> Any:
    """The ``SceneSpec`` of the episode with env seed ``seed`` (None: the env's own scene)."""
    if cfg.scenes == "none":
        return None
    from reverie.scenes.sample import random_scene
    from reverie.scenes.spec import load_spec

    if cfg.scenes == "random":
        return random_scene(np.random.default_rng([seed, 16]), cfg.scene_objects)
    return load_spec(cfg.scenes)[0]


def _make_env(cfg: CollectConfig, scene: Any = None) -> Any:
    if scene is None:
        return make(cfg.env, size=cfg.size, randomize=cfg.randomize)
    return make(cfg.env, size=cfg.size, randomize=cfg.randomize, scene=scene)


def run_episode(env: Any, policy_name: str, seed: int, steps: int) -> dict[str, Any]:
    """One episode: frames (L+1), actions (L), states (L+1), all from the env seeded by ``seed``."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    policy = make_policy(policy_name)
    policy.reset(env, rng)
    # Frame 0 is recorded after the policy's reset, which may set the scene (passive events).
    obs, state = env.render(), env.get_state()
    frames, actions, states = [obs], [], [state]
    for _ in range(steps):
        action = np.asarray(policy(env, rng), np.float32)
        obs, _, _, _, info = env.step(action)
        frames.append(obs)
        actions.append(action)
        states.append(info["state"])
    return {
        "obs": np.stack(frames),  # (L+1, Hi, Wi, 3)
        "actions": np.stack(actions),  # (L, A)
        "states": np.stack(states),  # (L+1, S)
        "factors": dict(env.factors),
    }


def _collect_shard(job: tuple[CollectConfig, int, list[int]]) -> dict[str, Any]:
    cfg, shard_index, episodes = job
    env = _make_env(cfg, episode_scene(cfg, episode_seed(cfg.seed, episodes[0])))
    path = cfg.out / shard_name(shard_index)
    frames = 0
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            for i in episodes:
                seed = episode_seed(cfg.seed, i)
                scene = episode_scene(cfg, seed)
                if scene is not None and scene != env.scene:
                    env.set_scene(scene)
                ep = run_episode(env, cfg.policy, seed, cfg.steps)
                write_episode(
                    create_episode_group(f, i),
                    ep["obs"],
                    ep["actions"],
                    ep["states"],
                    seed,
                    ep["factors"],
                    scene=None if scene is None else scene.to_dict(),
                )
                frames += len(ep["obs"])
    finally:
        if hasattr(env, "close"):
            env.close()
    return {"file": path.name, "episodes": episodes, "frames": frames, "sha256": sha256_file(path)}


def _settings(cfg: CollectConfig) -> dict[str, Any]:
    """The options that define the data; a resumed run must match them exactly."""
    settings = {
        "env": cfg.env,
        "policy": cfg.policy,
        "seed": cfg.seed,
        "size": cfg.size,
        "episode_steps": cfg.steps,
        "randomize": cfg.randomize,
        "shard_episodes": cfg.shard_episodes,
    }
    if cfg.scenes != "none":  # only then, so older collections resume unchanged
        settings["scenes"] = str(cfg.scenes)
        settings["scene_objects"] = cfg.scene_objects
    return settings


def _manifest(cfg: CollectConfig, shards: list[dict[str, Any]]) -> dict[str, Any]:
    cls = env_class(cfg.env)
    first_scene = episode_scene(cfg, episode_seed(cfg.seed, 0))
    env = _make_env(cfg, first_scene)
    state_dim = int(env.reset(seed=0)[1]["state"].shape[0])
    if hasattr(env, "close"):
        env.close()
    shards = sorted(shards, key=lambda s: s["file"])
    factor_ranges = {
        group: {k: [f.low, f.high, f.default] for k, f in factors.items()}
        for group, factors in (("physics", cls.physics_factors), ("visual", cls.visual_factors))
    }
    return {
        "format_version": FORMAT_VERSION,
        "reverie_version": reverie.__version__,
        "env": cfg.env,
        "env_id": cls.gym_id,
        "settings": _settings(cfg),
        "observation_space": {"shape": [cfg.size, cfg.size, 3], "dtype": "uint8"},
        "action_space": {
            "shape": list(env.action_space.shape),
            "dtype": "float32",
            "low": env.action_space.low.tolist(),
            "high": env.action_space.high.tolist(),
        },
        "state_dim": state_dim,
        "factor_ranges": factor_ranges,
        "success_rule": cls.success_rule,
        "episodes": sum(len(s["episodes"]) for s in shards),
        "frames": sum(s["frames"] for s in shards),
        "shards": shards,
        "complete": False,
        **_scene_record(cfg, first_scene),
    }


def _scene_record(cfg: CollectConfig, first: Any) -> dict[str, Any]:
    """What the manifest says about scenes: the spec of a fixed scene, or the family's ranges
    for random ones (each episode's own spec is in its ``scene`` attribute)."""
    if first is None:
        return {}
    from reverie.scenes.spec import RANGES, SPEC_VERSION

    if cfg.scenes == "random":
        return {
            "scenes": {
                "mode": "random",
                "objects": cfg.scene_objects,
                "spec_version": SPEC_VERSION,
                "ranges": {k: list(v) for k, v in RANGES.items()},
                "per_episode": "episode attribute 'scene' (spec JSON)",
            }
        }
    return {"scenes": {"mode": "file", "spec": first.to_dict()}}


def _finished_shards(cfg: CollectConfig, wanted: dict[str, list[int]]) -> list[dict[str, Any]]:
    """Shards of an earlier run in ``cfg.out`` that can be kept (same settings, intact files)."""
    if not (cfg.out / MANIFEST).exists():
        return []
    manifest = load_manifest(cfg.out)
    if manifest.get("settings") != _settings(cfg):
        raise ReverieError(
            f"{cfg.out} already holds a dataset collected with other settings "
            f"({manifest.get('settings')}); choose a new --out"
        )
    kept = []
    for shard in manifest["shards"]:
        path = cfg.out / shard["file"]
        if (
            wanted.get(shard["file"]) == shard["episodes"]
            and path.is_file()
            and sha256_file(path) == shard["sha256"]
        ):
            kept.append(shard)
    return kept


def _refuse_shrinking(cfg: CollectConfig, jobs: dict[str, list[int]]) -> None:
    """Refuse (one line) a run that would drop episodes already in ``cfg.out``.

    Fewer ``--episodes`` than a directory holds would mean deleting or rewriting shards the user
    never asked to delete; only growing or resuming a collection is done in place."""
    held = 0
    if (cfg.out / MANIFEST).exists():
        held = max(
            (i + 1 for s in load_manifest(cfg.out)["shards"] for i in s["episodes"]), default=0
        )
    beyond = sorted(p.name for p in cfg.out.glob("shard_*.h5") if p.name not in jobs)
    if held > cfg.episodes or beyond:
        found = f"{held} episodes" if held > cfg.episodes else f"shards beyond it ({beyond[0]})"
        raise ReverieError(
            f"{cfg.out} already holds {found}; --episodes {cfg.episodes} would delete data: "
            "pass --episodes >= what it holds, or choose a new --out"
        )


def collect(cfg: CollectConfig, progress: bool = True) -> Path:
    """Collect ``cfg.episodes`` episodes into ``cfg.out``; returns the directory."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    for stale in cfg.out.glob(".shard_*.tmp"):  # left by a killed run; never valid data
        stale.unlink()
    jobs = {shard_name(i): list(r) for i, r in enumerate(cfg.shard_ranges())}
    done = _finished_shards(cfg, jobs)
    _refuse_shrinking(cfg, jobs)
    todo = [
        (cfg, i, list(r))
        for i, r in enumerate(cfg.shard_ranges())
        if shard_name(i) not in {s["file"] for s in done}
    ]
    bar = tqdm(
        total=cfg.episodes,
        initial=sum(len(s["episodes"]) for s in done),
        desc=f"collect {cfg.env}",
        unit="ep",
        disable=not progress,
    )
    atomic_write_json(cfg.out / MANIFEST, _manifest(cfg, done))
    t0 = time.perf_counter()
    try:
        if cfg.workers == 1 or len(todo) <= 1:
            results = map(_collect_shard, todo)
            for shard in results:
                done.append(shard)
                atomic_write_json(cfg.out / MANIFEST, _manifest(cfg, done))
                bar.update(len(shard["episodes"]))
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(min(cfg.workers, len(todo))) as pool:
                for shard in pool.imap_unordered(_collect_shard, todo):
                    done.append(shard)
                    atomic_write_json(cfg.out / MANIFEST, _manifest(cfg, done))
                    bar.update(len(shard["episodes"]))
    except OSError as e:
        raise ReverieError(f"writing the dataset in {cfg.out} failed: {e.strerror or e}") from None
    finally:
        bar.close()
    manifest = _manifest(cfg, done)
    manifest["complete"] = True
    manifest["collect_seconds"] = round(time.perf_counter() - t0, 2)
    atomic_write_json(cfg.out / MANIFEST, manifest)
    return cfg.out


def summary(root: Path) -> dict[str, Any]:
    m = load_manifest(root)
    return {
        "dir": str(root),
        "env": m["env"],
        "episodes": m["episodes"],
        "frames": m["frames"],
        "shards": len(m["shards"]),
        "image": m["observation_space"]["shape"],
        "action_dim": m["action_space"]["shape"][0],
        "complete": m.get("complete", False),
    }
