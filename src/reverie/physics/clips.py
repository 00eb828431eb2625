"""Matched possible/impossible clip pairs on the Tabletop scene (violation of expectation).

    reverie physics generate --out runs/physics-clips [--pairs-per-category 100] [--seed 0]
    reverie physics generate --scenes random --scene-objects 2 --out runs/voe-heldout  # family

    from reverie.physics.clips import GenerateConfig, generate_clips, load_clips
    generate_clips(GenerateConfig(out=Path("runs/physics-clips"), pairs_per_category=100))
    clips = load_clips("runs/physics-clips")   # clips.possible: uint8 (P, F, Hi, Wi, 3), ...

Three files make the suite's clips: ``scene.py`` (the scripted scene and its one edit),
``variants.py`` (the categories and how a matched pair of each variant is drawn) and this one
(what to generate, the seeds, and the on-disk clip-set format: writing and reading).

Every pair is one passive Tabletop scene (no agent: the pusher is parked, actions are zero; the
same world ``--policy passive`` collects): objects slide, fall, get tossed, and a screen may slide
across the table. Both clips are simulated from the same seed with the same scripted events; the
impossible one gets one edit of the simulator at its *violation frame* v, applied just before the
physics step that produces frame v, so frames 0..v-1 are identical (and the tests check it).

Categories and their variants (the impossible edit at v):

- permanence: ``vanish_in_view`` (a sliding object is removed); ``vanish_in_flight`` (a tossed
  object is removed in mid-air); ``appear_behind_screen`` (an object is put where the sliding
  screen hides an empty spot, and is revealed there).
- continuity: ``jump_in_view`` / ``jump_in_flight`` (a sliding / tossed object moves 10-20 cm
  sideways between two frames); ``jump_behind_screen`` (an object the screen hides leaves its
  hiding place and stands 20-30 cm away, in view).
- solidity: ``sink_through_table`` (its contact with the table is switched off: it sinks through);
  ``drop_through_table`` (a tossed object falls through the table instead of landing);
  ``pass_through_object`` (two objects' contact is switched off just before they collide).
- gravity / support: ``rise_off_edge`` / ``toss_rise`` (an object pushed over an edge / tossed
  up falls upward); ``sideways_off_edge`` / ``toss_sideways`` (its gravity turns horizontal: back
  toward the table, or in a random direction).
- immutability: ``recolour_in_view`` / ``resize_in_view`` (a sliding object changes colour or
  size); ``recolour_in_flight`` (a tossed object changes colour).

Balance. A frame-difference detector (or an untrained model, which starts as copy-last) is
surprised by *any* change. Some variants add change the lawful clip lacks (a jump, a recolour);
in others the lawful clip has as much or more (the object slides or falls on where the impossible
one vanishes or falls up, a lawful landing against sinking on), so over the suite such a detector
sits near chance (the untrained model: 55-63%; by category from ~30% for permanence to ~85% for
continuity), while a model that predicts motion ranks both kinds.

``hard=True`` adds variants where the violation *removes* lawful motion or needs memory:
``vanish_behind_screen`` (removed while hidden; the screen reveals an empty table),
``hover_off_edge`` / ``toss_hover`` (held in mid-air instead of falling) and
``recolour_behind_screen``. Ranking a hovering object above a falling one needs a predictor that
gets more than half of the fall right (a weaker one is closer to "nothing moves", which is what
hovering looks like), and a reveal needs memory of what went behind the screen: the CPU-preset
model does neither (see BENCHMARKS.md), so these are a stretch set, off by default.

Seeds: pair i of category c (index in ``CATEGORIES``) generated with ``seed`` s uses env seed
``PHYSICS_SEED_BASE + s * 1_000_000 + c * 100_000 + i``, with ``PHYSICS_SEED_BASE = EVAL_SEED_BASE
+ 500_000_000``: disjoint from collection seeds (< 1e9) and from the planning evaluation's
start/goal seeds (``EVAL_SEED_BASE + 10_000 * seed + j``, far below the physics block). The
clip is a pure function of that seed (``make_pair``), so a stored clip can be re-simulated and
compared (``reproduce_pair``).

Scenes of the family (``--scenes random``): each pair is played in its own two-object
``SceneSpec`` (kinds, sizes, colours, masses, frictions, bounciness, gravity, light), drawn by
``pair_scene`` from the pair's seed, so held out from every collection's scenes; the edits act on
that scene's objects (a recolour turns one to a named colour the scene does not use; slides are
slowed on slippery tables so they stay on them; no colour or size of the default objects' draws is
applied). A scene in which the pair's variant cannot happen (a cube on a sticky table stops
before it can vanish in motion) is replaced by the pair's next draw, up to ``SCENE_TRIES``.
``--scenes DIR`` (a ``collect --scenes random`` dataset) uses its episodes' scenes instead: the
worlds a family model trained on. Each pair's record holds its scene (``scene``, spec JSON).
Match a family model's data: ``--size`` its image size, and ``--frames`` one more than a multiple
of its frameskip (21 for 5) so it sees the last frame.

Output (written atomically): ``DIR/clips.h5`` with one group per pair (``pair_00000/possible``,
``impossible`` uint8 (F, Hi, Wi, 3), ``actions`` float32 (F-1, 2), ``states_possible``,
``states_impossible`` float64 (F, S)) and ``DIR/manifest.json`` (category, variant, seed,
violation frame, object per pair; the file's sha256).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from reverie.data.format import EVAL_SEED_BASE
from reverie.io import ReverieError, atomic_path, atomic_write_json, read_json, sha256_file
from reverie.physics.scene import Plan, make_env
from reverie.physics.variants import (
    CATEGORIES,
    HARD_VARIANTS,
    VARIANTS,
    NoPairError,
    make_pair,
    variants,
)

PHYSICS_SEED_BASE = EVAL_SEED_BASE + 500_000_000
CLIPS_FILE = "clips.h5"
MANIFEST = "manifest.json"
FORMAT = "reverie-physics-clips"
FORMAT_VERSION = 1
MAX_PAIRS = 100_000  # per category: the seed layout leaves room for this many


def pair_seed(seed: int, category: str, index: int) -> int:
    """The env seed of pair ``index`` of ``category`` (see the module docstring)."""
    return PHYSICS_SEED_BASE + seed * 1_000_000 + CATEGORIES.index(category) * 100_000 + index


@dataclass(frozen=True)
class GenerateConfig:
    """What clips to make and where."""

    out: Path
    """Output directory (clips.h5 + manifest.json)."""
    pairs_per_category: int = 100
    """Matched pairs per category."""
    seed: int = 0
    """Generation seed in [0, 999]; selects a disjoint block of env seeds."""
    size: int = 64
    """Rendered image size (square); match the model's training data."""
    frames: int = 20
    """Frames per clip (10 steps = 1 s); violations fall in the middle third or so."""
    categories: tuple[str, ...] = CATEGORIES
    """Which categories to make."""
    hard: bool = False
    """Add the stretch variants (hovering, vanishing behind the screen; see the docstring)."""
    workers: int = 1
    """Worker processes (pairs are independent)."""
    progress: bool = True
    """Show a progress bar (``reverie physics generate``; the Python call takes ``progress=``)."""
    scenes: str = "none"
    """none (the default cube and ball) | random (a held-out scene of the family per pair,
    ``pair_scene``) | DIR of a ``collect --scenes random`` dataset (its episodes' scenes in turn:
    the scenes a family model trained on)."""
    scene_objects: int = 2
    """Objects per random scene: the clips' edits act on two, so 2 (match the family data's)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "categories", tuple(self.categories))
        if self.scene_objects != 2:
            raise ValueError(
                f"--scene-objects must be 2 (clips are two-object scenes), got {self.scene_objects}"
            )
        if not 1 <= self.pairs_per_category <= MAX_PAIRS:
            raise ValueError(
                f"--pairs-per-category must be in [1, {MAX_PAIRS}], got {self.pairs_per_category}"
            )
        if not 0 <= self.seed <= 999:
            raise ValueError(f"--seed must be in [0, 999], got {self.seed}")
        if not 16 <= self.size <= 512:
            raise ValueError(f"--size must be in [16, 512], got {self.size}")
        if not 16 <= self.frames <= 60:
            raise ValueError(f"--frames must be in [16, 60], got {self.frames}")
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
        if not 1 <= self.workers <= 64:
            raise ValueError(f"--workers must be in [1, 64], got {self.workers}")


# ------------------------------------------------------------------------------------- scenes
def pair_scene(seed: int, attempt: int = 0, n_objects: int = 2) -> Any:
    """Held-out family scene ``attempt`` of the pair with env seed ``seed``: a ``random_scene``
    from ``default_rng([seed, 16, attempt])``. Physics seeds (> 2.5e9) are ones no collection
    uses (< 1e9; ``collect`` draws ``default_rng([episode_seed, 16])``), so never a training
    scene. Attempt k+1 is drawn when scene k does not allow the pair's variant."""
    from reverie.scenes.sample import random_scene

    return random_scene(np.random.default_rng([seed, 16, attempt]), n_objects)


def dataset_scenes(root: str | Path) -> list[Any]:
    """The scene specs of every episode of a ``collect --scenes random`` dataset, in order."""
    import json

    from reverie.data.format import load_manifest
    from reverie.scenes.spec import spec_from_dict

    root = Path(root)
    if not (root / "manifest.json").is_file():
        raise ReverieError(f"--scenes {root}: neither none, random nor a dataset directory")
    manifest = load_manifest(root)
    if manifest.get("settings", {}).get("scenes") != "random":
        raise ReverieError(f"--scenes {root}: not collected with --scenes random")
    specs: list[Any] = []
    for shard in manifest["shards"]:
        with h5py.File(root / shard["file"], "r") as f:
            specs += [spec_from_dict(json.loads(f[k].attrs["scene"])) for k in sorted(f)]
    return specs


SCENE_TRIES = 16  # scenes a pair may try before giving up (a scene may not allow its variant)


def _candidates(cfg: GenerateConfig, seed: int, index: int, pool: list[Any]) -> list[Any]:
    """The scenes pair ``index`` (env seed ``seed``) tries in turn: [None] without scenes."""
    if cfg.scenes == "none":
        return [None]
    if cfg.scenes == "random":
        return [pair_scene(seed, k, cfg.scene_objects) for k in range(SCENE_TRIES)]
    # Training scenes: pair i plays episode i's scene (distinct ones while the dataset lasts),
    # falling back on the episodes after it.
    return [pool[(index + k) % len(pool)] for k in range(SCENE_TRIES)]


# ------------------------------------------------------------------------------------ writing
_WORKER_ENV: dict[int, Any] = {}
PairJob = tuple[str, int, int, int, bool, list[dict[str, Any] | None]]


def _pair_job(job: PairJob) -> tuple[Plan, dict[str, np.ndarray], dict[str, Any] | None]:
    from reverie.scenes.spec import spec_from_dict

    category, seed, size, frames, hard, scenes = job
    for scene in scenes:
        spec = None if scene is None else spec_from_dict(scene)
        if size not in _WORKER_ENV or (_WORKER_ENV[size].scene is None) != (spec is None):
            _WORKER_ENV[size] = make_env(size, spec)
        try:
            plan, arrays = make_pair(category, seed, size, frames, _WORKER_ENV[size], hard, spec)
            return plan, arrays, scene
        except NoPairError:
            continue
    raise ReverieError(f"none of {len(scenes)} scenes allows a {category} pair for seed {seed}")


def _plan_record(index: int, plan: Plan, scene: dict[str, Any] | None) -> dict[str, Any]:
    record = {
        "index": index,
        "key": f"pair_{index:05d}",
        "category": plan.category,
        "variant": plan.variant,
        "seed": plan.seed,
        "violation_frame": plan.violation_frame,
        "object": plan.obj,
        "violation": {
            k: (np.asarray(v).tolist() if not isinstance(v, str) else v)
            for k, v in plan.violation.items()
        },
        "has_actions": False,
    }
    return record if scene is None else {**record, "scene": scene}


def generate_clips(cfg: GenerateConfig, progress: bool = True) -> Path:
    """Make ``cfg.pairs_per_category`` pairs per category into ``cfg.out``; returns the dir."""
    pool = dataset_scenes(cfg.scenes) if cfg.scenes not in ("none", "random") else []
    jobs: list[PairJob] = []
    for c in cfg.categories:
        for i in range(cfg.pairs_per_category):
            seed = pair_seed(cfg.seed, c, i)
            scenes = _candidates(cfg, seed, len(jobs), pool)
            specs = [None if s is None else s.to_dict() for s in scenes]
            jobs.append((c, seed, cfg.size, cfg.frames, cfg.hard, specs))
    cfg.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    records = []
    path = cfg.out / CLIPS_FILE
    bar = tqdm(total=len(jobs), desc="physics clips", unit="pair", disable=not progress)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for index, (plan, arrays, scene) in enumerate(_map(_pair_job, jobs, cfg.workers)):
            g = f.create_group(f"pair_{index:05d}", track_order=True)
            for name, data in arrays.items():
                chunks = (1, *data.shape[1:]) if data.ndim == 4 else None
                g.create_dataset(
                    name, data=data, chunks=chunks, compression="lzf" if data.ndim == 4 else None
                )
            records.append(_plan_record(index, plan, scene))
            bar.update(1)
    bar.close()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "env": "tabletop",
        "size": cfg.size,
        "frames": cfg.frames,
        "seed": cfg.seed,
        "seed_base": PHYSICS_SEED_BASE,
        "seed_rule": "PHYSICS_SEED_BASE + seed*1e6 + category_index*1e5 + pair_index",
        "pairs_per_category": cfg.pairs_per_category,
        "hard": cfg.hard,
        "scenes": str(cfg.scenes),
        "scene_rule": _SCENE_RULES.get(str(cfg.scenes), "the dataset's episode scenes in turn"),
        "categories": list(cfg.categories),
        "action_dim": 2,
        "actions": "zeros: passive clips (the pusher is parked)",
        "file": CLIPS_FILE,
        "sha256": sha256_file(path),
        "generate_seconds": round(time.perf_counter() - t0, 2),
        "pairs": records,
    }
    atomic_write_json(cfg.out / MANIFEST, manifest)
    return cfg.out


_SCENE_RULES = {
    "none": "the default cube and ball",
    "random": "held-out: random_scene(default_rng([pair_seed, 16, attempt])), per pair 'scene'",
}


def _map(fn: Callable[[Any], Any], jobs: list[Any], workers: int) -> Iterator[Any]:
    if workers == 1 or len(jobs) < 2:
        yield from map(fn, jobs)
        return
    # spawn: MuJoCo renderers do not survive fork. imap keeps the order (pairs are indexed).
    with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(fn, jobs, chunksize=4)


# ------------------------------------------------------------------------------------ reading
@dataclass
class ClipSet:
    """Pairs in memory: ``possible``/``impossible`` uint8 (P, F, Hi, Wi, 3), ``actions`` float32
    (P, F-1, A), ``pairs`` the manifest records (category, variant, seed, violation_frame)."""

    root: Path
    manifest: dict[str, Any]
    pairs: list[dict[str, Any]]
    possible: np.ndarray
    impossible: np.ndarray
    actions: np.ndarray

    @property
    def violation_frames(self) -> np.ndarray:
        return np.array([p["violation_frame"] for p in self.pairs])

    @property
    def categories(self) -> list[str]:
        return [p["category"] for p in self.pairs]


def load_clips(root: str | Path, verify: bool = True) -> ClipSet:
    """Read a clip directory written by ``generate_clips`` (checks format and checksum)."""
    root = Path(root)
    if not root.is_dir():
        raise ReverieError(f"clip directory not found: {root}")
    manifest = read_json(root / MANIFEST, what="physics clip manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ReverieError(f"{root / MANIFEST} is not a reverie physics clip manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ReverieError(
            f"{root} has clip format version {manifest.get('format_version')!r}; this reverie "
            f"reads {FORMAT_VERSION}"
        )
    path = root / manifest["file"]
    if not path.is_file():
        raise ReverieError(f"clip file missing: {path}")
    if verify and sha256_file(path) != manifest["sha256"]:
        raise ReverieError(f"clip file is corrupt (checksum mismatch): {path}")
    try:
        with h5py.File(path, "r") as f:
            keys = [p["key"] for p in manifest["pairs"]]
            arrays = {
                name: np.stack([f[k][name][()] for k in keys])
                for name in ("possible", "impossible", "actions")
            }
    except (OSError, KeyError) as e:
        raise ReverieError(f"clip file cannot be read: {path}: {e}") from None
    return ClipSet(root, manifest, manifest["pairs"], **arrays)


def reproduce_pair(root: str | Path, index: int) -> dict[str, np.ndarray]:
    """Re-simulate pair ``index`` of a clip directory from its recorded seed."""
    from reverie.scenes.spec import spec_from_dict

    manifest = read_json(Path(root) / MANIFEST, what="physics clip manifest")
    record = manifest["pairs"][index]
    scene = spec_from_dict(record["scene"]) if "scene" in record else None
    _, arrays = make_pair(
        record["category"],
        record["seed"],
        manifest["size"],
        manifest["frames"],
        hard=manifest.get("hard", False),
        scene=scene,
    )
    return arrays


__all__ = [
    "CATEGORIES",
    "HARD_VARIANTS",
    "PHYSICS_SEED_BASE",
    "VARIANTS",
    "ClipSet",
    "GenerateConfig",
    "Plan",
    "generate_clips",
    "load_clips",
    "make_pair",
    "pair_scene",
    "pair_seed",
    "reproduce_pair",
    "variants",
]
