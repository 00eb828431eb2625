"""Matched possible/impossible clip pairs on the Tabletop scene (violation of expectation).

    reverie physics generate --out runs/physics-clips [--pairs-per-category 100] [--seed 0]

    from reverie.physics.clips import GenerateConfig, generate_clips, load_clips
    generate_clips(GenerateConfig(out=Path("runs/physics-clips"), pairs_per_category=100))
    clips = load_clips("runs/physics-clips")   # clips.possible: uint8 (P, F, Hi, Wi, 3), ...

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

Output (written atomically): ``DIR/clips.h5`` with one group per pair (``pair_00000/possible``,
``impossible`` uint8 (F, Hi, Wi, 3), ``actions`` float32 (F-1, 2), ``states_possible``,
``states_impossible`` float64 (F, S)) and ``DIR/manifest.json`` (category, variant, seed,
violation frame, object per pair; the file's sha256).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from reverie.data.format import EVAL_SEED_BASE
from reverie.envs.tabletop import TABLE_HALF, TABLE_TOP
from reverie.io import ReverieError, atomic_path, atomic_write_json, read_json

CATEGORIES = ("permanence", "continuity", "solidity", "gravity", "immutability")
VARIANTS: dict[str, tuple[str, ...]] = {
    "permanence": ("vanish_in_view", "vanish_in_flight", "appear_behind_screen"),
    "continuity": ("jump_in_view", "jump_in_flight", "jump_behind_screen"),
    "solidity": ("sink_through_table", "drop_through_table", "pass_through_object"),
    "gravity": ("rise_off_edge", "toss_rise", "sideways_off_edge", "toss_sideways"),
    "immutability": ("recolour_in_view", "resize_in_view", "recolour_in_flight"),
}
#: The stretch set ``hard=True`` adds (see the module docstring).
HARD_VARIANTS: dict[str, tuple[str, ...]] = {
    "permanence": ("vanish_behind_screen",),
    "continuity": (),
    "solidity": (),
    "gravity": ("hover_off_edge", "toss_hover"),
    "immutability": ("recolour_behind_screen",),
}


def variants(category: str, hard: bool = False) -> tuple[str, ...]:
    """The variants pairs of ``category`` cycle through."""
    return VARIANTS[category] + (HARD_VARIANTS[category] if hard else ())


PHYSICS_SEED_BASE = EVAL_SEED_BASE + 500_000_000
CLIPS_FILE = "clips.h5"
MANIFEST = "manifest.json"
FORMAT = "reverie-physics-clips"
FORMAT_VERSION = 1
MAX_PAIRS = 100_000  # per category: the seed layout leaves room for this many

FREE = 0.30  # m: objects start (and jumps land) within +-FREE of the table centre
EDGE = TABLE_HALF  # m: the table's half side


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "categories", tuple(self.categories))
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


# ------------------------------------------------------------------------------------ the plan
@dataclass
class Plan:
    """A scripted passive scene and the one edit that makes it impossible."""

    category: str
    variant: str
    seed: int
    frames: int
    obj: int
    """Index of the object the violation acts on (0 cube, 1 ball)."""
    poses: np.ndarray
    """(K, 4): x, y, height above the resting height, yaw of each object at frame 0."""
    hues: list[float | None]
    """Per object: a hue in [0, 1], or None for the scene's default colour."""
    scales: list[float]
    """Per object: size scale at frame 0."""
    screen: tuple[float, float, float] | None = None
    """(y, x0, speed per step) of the sliding screen, or None."""
    launches: list[tuple[int, int, tuple[float, float, float]]] = field(default_factory=list)
    """(frame, object, velocity m/s): applied just before the step that produces ``frame``."""
    hidden: list[int] = field(default_factory=list)
    """Objects absent from frame 0 (parked off camera)."""
    violation_frame: int = -1
    violation: dict[str, Any] = field(default_factory=dict)
    """``kind`` and its parameters (see ``_apply_violation``)."""


def _env(size: int) -> Any:
    from reverie.envs import make

    return make("tabletop", size=size)


def _setup(env: Any, plan: Plan) -> None:
    from reverie.envs.mujoco_base import hsv_rgba
    from reverie.envs.policies import park_pusher, rest_height

    env.reset(seed=plan.seed)
    env.data.xfrc_applied[:] = 0.0
    park_pusher(env)
    for i in range(env.n_objects):
        if plan.scales[i] != 1.0:
            env.set_object_size(i, plan.scales[i])
        if plan.hues[i] is not None:
            env.set_object_rgba(i, hsv_rgba(plan.hues[i]))
        x, y, lift, yaw = plan.poses[i]
        quat = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        env.set_object_pose(i, [x, y, rest_height(env, i) + lift], quat)
        env.launch(i, np.zeros(3), angular=np.zeros(3))
    for i in plan.hidden:
        env.hide_object(i)
    _move_screen(env, plan, 0)


def _move_screen(env: Any, plan: Plan, t: int) -> None:
    from reverie.envs.policies import screen_x

    if plan.screen is not None:
        y, x0, speed = plan.screen
        env.set_occluder([screen_x(x0, speed, t), y])


def simulate(
    env: Any, plan: Plan, impossible: bool, render: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """Run ``plan`` from its seed: frames uint8 (F, Hi, Wi, 3) (None if not rendering) and
    states float64 (F, S). The impossible run applies the violation before step v."""
    saved = (env.model.geom_contype.copy(), env.model.geom_conaffinity.copy())
    frames, states = [], []
    zero = np.zeros(env.action_space.shape, np.float32)
    try:
        _setup(env, plan)
        frames.append(env.render() if render else None)
        states.append(env.get_state())
        for t in range(1, plan.frames):
            _move_screen(env, plan, t)
            for frame, i, velocity in plan.launches:
                if frame == t:
                    env.launch(i, np.asarray(velocity))
            if impossible and t == plan.violation_frame:
                _apply_violation(env, plan)
            env._physics_step(zero)  # no render inside step: we render once below
            frames.append(env.render() if render else None)
            states.append(env.get_state())
    finally:
        env.model.geom_contype[:], env.model.geom_conaffinity[:] = saved
        env.data.xfrc_applied[:] = 0.0
    return (np.stack(frames) if render else None), np.stack(states)


def _apply_violation(env: Any, plan: Plan) -> None:
    """The impossible edit, applied just before the physics step that produces frame v."""
    from reverie.envs.mujoco_base import hsv_rgba
    from reverie.envs.policies import rest_height

    v, i = plan.violation, plan.obj
    kind = v["kind"]
    if kind == "hide":
        env.hide_object(i)
    elif kind == "place":  # teleport, keeping the velocity (appear / jump)
        pos = env.object_positions()[i]
        z = rest_height(env, i) if v.get("rest") else pos[2]
        quat = v.get("quat")
        env.set_object_pose(i, [v["xy"][0], v["xy"][1], z], quat)
        if v.get("rest"):
            env.launch(i, np.zeros(3), angular=np.zeros(3))
    elif kind == "no_contact":  # with the table top, or with another object
        other = env._table if v["with"] == "table" else env._geoms[v["with"]]
        _exclude_contact(env, env._geoms[i], other)
    elif kind in ("hover", "rise", "sideways"):
        # A constant force on this object only: cancels (hover), reverses (rise) or turns
        # (sideways: along v["dir"]) its gravity; the rest of the scene keeps its own.
        body = env._bodies[i]
        mg = -float(env.model.opt.gravity[2]) * float(env.model.body_mass[body])
        force = np.array([0.0, 0.0, mg if kind != "rise" else 2 * mg])
        if kind == "hover":  # held exactly where it is
            env.launch(i, np.zeros(3), angular=np.zeros(3))
        if kind == "sideways":
            force[:2] = mg * np.asarray(v["dir"], np.float64)
        env.data.xfrc_applied[body] = [*force, 0.0, 0.0, 0.0]
    elif kind == "recolour":
        env.set_object_rgba(i, hsv_rgba(v["hue"]))
    elif kind == "resize":
        pos = env.object_positions()[i]
        resting = bool(pos[2] < rest_height(env, i) + 0.01)
        env.set_object_size(i, v["scale"])
        if resting:  # keep it standing on the table rather than sunk into it or floating
            env.set_object_pose(i, [pos[0], pos[1], rest_height(env, i)])
    else:
        raise ValueError(f"unknown violation kind {kind!r}")


def _exclude_contact(env: Any, a: int, b: int) -> None:
    """Switch off contacts between geoms ``a`` and ``b`` only (MuJoCo collides two geoms when
    ``contype_a & conaffinity_b or contype_b & conaffinity_a``): ``a`` gets a private bit as its
    contype and no conaffinity, and every geom it used to collide with, except ``b``, gets that
    bit in its conaffinity."""
    m = env.model
    ct, ca = m.geom_contype, m.geom_conaffinity
    bit = 1 << 4
    partners = [
        g for g in range(m.ngeom) if g not in (a, b) and ((ct[a] & ca[g]) or (ct[g] & ca[a]))
    ]
    ct[a], ca[a] = bit, 0
    for g in partners:
        ca[g] |= bit


# ----------------------------------------------------------------------------- state helpers
def _pos(env: Any, state: np.ndarray, i: int) -> np.ndarray:
    return env.object_positions(state)[i]


def _vel(env: Any, state: np.ndarray, i: int) -> np.ndarray:
    a = env.model.nq + env._vadr[i]
    return state[a : a + 3]


def _radius(i: int, scale: float) -> float:
    """Horizontal reach of object i (a box's half-diagonal), for spacing checks."""
    from reverie.envs.tabletop import OBJECTS

    half = OBJECTS[i][2] * scale
    return half * (np.sqrt(2.0) if OBJECTS[i][1] == "box" else 1.0)


def _default_hue(env: Any, i: int) -> float:
    return float(env.factors[f"{env.object_names[i]}_hue"])


def _far_hue(rng: np.random.Generator, hue: float) -> float:
    """A hue at least 0.25 round the colour wheel from ``hue``."""
    return float((hue + rng.uniform(0.25, 0.75)) % 1.0)


def _visible(env: Any, plan: Plan, state: np.ndarray, t: int, i: int) -> bool:
    """Does any pixel of object ``i`` show at frame t (screen where the plan puts it)?"""
    from reverie.envs.tabletop import HIDDEN_AT

    _move_screen(env, plan, t)
    with_obj = env.render_state(state)
    without = state.copy()
    a = env._qadr[i]
    without[a : a + 3] = [HIDDEN_AT[0], HIDDEN_AT[1] + 3.0, 0.0]
    return bool(np.any(with_obj != env.render_state(without)))


def _stays_apart(env: Any, plan: Plan, states: np.ndarray) -> bool:
    """The two objects never get within touching distance (plus 2 cm)."""
    gap = _radius(0, plan.scales[0]) + _radius(1, plan.scales[1]) + 0.02
    pos = np.stack([env.object_positions(s) for s in states])  # (F, K, 3)
    return bool(np.all(np.linalg.norm(pos[:, 0, :2] - pos[:, 1, :2], axis=1) > gap))


# ------------------------------------------------------------------------------ scene drawing
def _base(
    env: Any, rng: np.random.Generator, category: str, variant: str, seed: int, frames: int
) -> Plan:
    """Two objects at random spots, colours and sizes as the passive policy draws them."""
    poses = np.zeros((2, 4))
    for _ in range(100):
        poses[:, :2] = rng.uniform(-FREE, FREE, (2, 2))
        if np.linalg.norm(poses[0, :2] - poses[1, :2]) > 0.2:
            break
    poses[0, 3] = rng.uniform(-np.pi, np.pi)  # the cube's yaw
    hues = [float(rng.random()) if rng.random() < 0.5 else None for _ in range(2)]
    scales = [float(rng.uniform(0.7, 1.3)) if rng.random() < 0.25 else 1.0 for _ in range(2)]
    return Plan(category, variant, seed, frames, int(rng.integers(2)), poses, hues, scales)


def _slide(env: Any, rng: np.random.Generator, plan: Plan) -> np.ndarray | None:
    """Launch ``plan.obj`` 2-3 frames before v so it is sliding at v (and the other object,
    half the time, earlier); returns the possible run's states, or None if the draw fails."""
    F, i = plan.frames, plan.obj
    v = int(rng.integers(6, F - 5))
    angle = rng.uniform(-np.pi, np.pi)
    speed = rng.uniform(1.2, 2.2)
    plan.launches.append(
        (v - int(rng.integers(2, 4)), i, (speed * np.cos(angle), speed * np.sin(angle), 0.0))
    )
    if rng.random() < 0.5:
        angle = rng.uniform(-np.pi, np.pi)
        speed = rng.uniform(0.5, 1.5)
        plan.launches.append(
            (int(rng.integers(1, v)), 1 - i, (speed * np.cos(angle), speed * np.sin(angle), 0.0))
        )
    plan.violation_frame = v
    _, states = simulate(env, plan, impossible=False, render=False)
    xy = np.stack([env.object_positions(s)[:, :2] for s in states])  # (F, K, 2)
    if np.abs(xy).max() > EDGE - 0.06 or not _stays_apart(env, plan, states):
        return None  # something fell off or they collided: not the scene we want
    if np.linalg.norm(_vel(env, states[v - 1], i)[:2]) < 0.3:
        return None  # stopped before v
    return states


def _screen_pass(env: Any, rng: np.random.Generator, plan: Plan) -> tuple[int, int] | None:
    """A screen slides over ``plan.obj`` (at rest); returns the first and last frames in which
    the object is fully hidden, or None when the draw does not hide it for 1-3 frames."""
    F, i = plan.frames, plan.obj
    x, y = plan.poses[i, :2]
    speed = rng.uniform(0.05, 0.08) * rng.choice([-1.0, 1.0])
    centre = rng.uniform(6, F - 7)  # the frame at which the screen is centred on the object
    x0 = x - speed * centre
    if abs(x0) > 0.45 or y - 0.09 < -EDGE + 0.05:
        return None
    plan.screen = (float(y - rng.uniform(0.06, 0.09)), float(x0), float(speed))
    if rng.random() < 0.5:  # the other object slides meanwhile, as a distraction
        angle = rng.uniform(-np.pi, np.pi)
        s = rng.uniform(0.5, 1.5)
        plan.launches.append(
            (int(rng.integers(1, 6)), 1 - i, (s * np.cos(angle), s * np.sin(angle), 0.0))
        )
    _, states = simulate(env, plan, impossible=False, render=False)
    xy = np.stack([env.object_positions(s)[:, :2] for s in states])
    if np.abs(xy).max() > EDGE - 0.06 or not _stays_apart(env, plan, states):
        return None
    hidden = [t for t in range(F) if not _visible(env, plan, states[t], t, i)]
    if not hidden or hidden[-1] - hidden[0] + 1 != len(hidden) or not 1 <= len(hidden) <= 3:
        return None
    if hidden[0] < 4 or hidden[-1] > F - 4:
        return None
    return hidden[0], hidden[-1]


def _off_edge(env: Any, rng: np.random.Generator, plan: Plan) -> np.ndarray | None:
    """Push ``plan.obj`` over the left, right or front edge; v = the first frame whose previous
    state has its centre past the edge (unsupported) while still at table height."""
    F, i = plan.frames, plan.obj
    axis, sign = [(0, -1.0), (0, 1.0), (1, -1.0)][int(rng.integers(3))]
    plan.poses[i, axis] = sign * (EDGE - rng.uniform(0.1, 0.2))
    plan.poses[i, 1 - axis] = rng.uniform(-0.25, 0.25)
    if np.linalg.norm(plan.poses[0, :2] - plan.poses[1, :2]) < 0.2:
        return None
    velocity = np.zeros(3)
    velocity[axis] = sign * rng.uniform(1.2, 2.0)
    velocity[1 - axis] = rng.uniform(-0.3, 0.3)
    launch = int(rng.integers(3, F - 10))
    plan.launches.append((launch, i, tuple(velocity)))
    _, states = simulate(env, plan, impossible=False, render=False)
    for t in range(launch, F):
        p = _pos(env, states[t], i)
        if sign * p[axis] > EDGE + 0.01:
            if p[2] < TABLE_TOP + 0.02 or t + 1 > F - 5:
                return None  # already dropped, or too late to show what follows
            plan.violation_frame = t + 1
            return states if _pos(env, states[-1], i)[2] < 0.2 else None
    return None


def _toss(env: Any, rng: np.random.Generator, plan: Plan) -> np.ndarray | None:
    """Toss ``plan.obj`` up (1.8-2.6 m/s) so it is in the air for 4-5 frames."""
    F, i = plan.frames, plan.obj
    launch = int(rng.integers(3, F - 10))
    angle = rng.uniform(-np.pi, np.pi)
    s = rng.uniform(0.0, 0.5)
    plan.launches.append((launch, i, (s * np.cos(angle), s * np.sin(angle), rng.uniform(1.8, 2.6))))
    plan.violation_frame = launch  # provisional
    _, states = simulate(env, plan, impossible=False, render=False)
    if not _stays_apart(env, plan, states):
        return None
    return states


# ------------------------------------------------------------------------------------ variants
def _draw(
    env: Any, rng: np.random.Generator, category: str, variant: str, seed: int, frames: int
) -> Plan | None:
    """One attempt at a pair of ``variant``: a complete plan, or None to draw again."""
    from reverie.envs.policies import rest_height

    plan = _base(env, rng, category, variant, seed, frames)
    i = plan.obj

    if variant in (
        "vanish_in_view",
        "jump_in_view",
        "sink_through_table",
        "recolour_in_view",
        "resize_in_view",
    ):
        states = _slide(env, rng, plan)
        if states is None:
            return None
        v = plan.violation_frame
        if variant == "vanish_in_view":
            plan.violation = {"kind": "hide"}
        elif variant == "sink_through_table":
            plan.violation = {"kind": "no_contact", "with": "table"}
        elif variant == "recolour_in_view":
            hue = plan.hues[i] if plan.hues[i] is not None else _default_hue(env, i)
            plan.violation = {"kind": "recolour", "hue": _far_hue(rng, hue)}
        elif variant == "resize_in_view":
            factor = rng.uniform(0.55, 0.75) if rng.random() < 0.5 else rng.uniform(1.35, 1.6)
            plan.violation = {"kind": "resize", "scale": float(plan.scales[i] * factor)}
        else:  # jump sideways (perpendicular to the motion) onto free table
            p, vel = _pos(env, states[v - 1], i), _vel(env, states[v - 1], i)
            side = np.array([-vel[1], vel[0]]) / max(float(np.linalg.norm(vel[:2])), 1e-9)
            target = p[:2] + side * rng.uniform(0.1, 0.2) * rng.choice([-1.0, 1.0])
            other = np.stack([_pos(env, s, 1 - i)[:2] for s in states[v - 1 :]])
            if np.abs(target).max() > FREE or np.linalg.norm(other - target, axis=1).min() < 0.2:
                return None
            plan.violation = {"kind": "place", "xy": target.tolist()}
        return plan

    if variant in (
        "vanish_behind_screen",
        "appear_behind_screen",
        "recolour_behind_screen",
        "jump_behind_screen",
    ):
        span = _screen_pass(env, rng, plan)
        if span is None:
            return None
        plan.violation_frame = span[0]
        if variant == "vanish_behind_screen":
            plan.violation = {"kind": "hide"}
        elif variant == "appear_behind_screen":
            x, y, _, yaw = plan.poses[i]
            plan.hidden = [i]
            plan.violation = {
                "kind": "place",
                "xy": [x, y],
                "rest": True,
                "quat": [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)],
            }
        elif variant == "recolour_behind_screen":
            hue = plan.hues[i] if plan.hues[i] is not None else _default_hue(env, i)
            plan.violation = {"kind": "recolour", "hue": _far_hue(rng, hue)}
        else:  # it leaves its hiding place: stands in view, in front of the screen's path
            x, y = plan.poses[i, :2]
            target = np.array([x + rng.uniform(-0.1, 0.1), y - rng.uniform(0.2, 0.3)])
            other = plan.poses[1 - i, :2]
            if np.abs(target).max() > FREE or np.linalg.norm(other - target) < 0.2:
                return None
            plan.violation = {"kind": "place", "xy": target.tolist(), "rest": True}
        return plan

    if variant in ("hover_off_edge", "rise_off_edge", "sideways_off_edge"):
        if _off_edge(env, rng, plan) is None:
            return None
        if variant == "sideways_off_edge":  # pulled back toward the middle of the table
            p = plan.poses[i, :2]
            axis = int(np.argmax(np.abs(p)))
            back = np.zeros(2)
            back[axis] = -np.sign(p[axis])
            plan.violation = {"kind": "sideways", "dir": back.tolist()}
        else:
            plan.violation = {"kind": "hover" if variant == "hover_off_edge" else "rise"}
        return plan

    if variant in (
        "toss_hover",
        "toss_rise",
        "toss_sideways",
        "vanish_in_flight",
        "jump_in_flight",
        "recolour_in_flight",
        "drop_through_table",
    ):
        states = _toss(env, rng, plan)
        if states is None:
            return None
        launch = plan.launches[0][0]
        z = np.array([_pos(env, s, i)[2] for s in states]) - rest_height(env, i)
        if variant == "drop_through_table":  # the step that would land it takes it through
            landing = [t for t in range(launch + 2, frames - 4) if z[t] < 0.02 and z[t - 1] > 0]
            if not landing:
                return None
            plan.violation_frame = landing[0]
            plan.violation = {"kind": "no_contact", "with": "table"}
            return plan
        # Act on it on the way up or down, well clear of the table.
        airborne = [t for t in range(launch + 1, frames - 4) if z[t - 1] > 0.08]
        if not airborne:
            return None
        v = plan.violation_frame = int(rng.choice(airborne))
        if variant == "toss_hover":
            plan.violation = {"kind": "hover"}
        elif variant == "toss_rise":
            plan.violation = {"kind": "rise"}
        elif variant == "toss_sideways":
            angle = rng.uniform(-np.pi, np.pi)
            plan.violation = {"kind": "sideways", "dir": [np.cos(angle), np.sin(angle)]}
        elif variant == "vanish_in_flight":
            plan.violation = {"kind": "hide"}
        elif variant == "recolour_in_flight":
            hue = plan.hues[i] if plan.hues[i] is not None else _default_hue(env, i)
            plan.violation = {"kind": "recolour", "hue": _far_hue(rng, hue)}
        else:  # jump sideways in mid-air, keeping its height and velocity
            p = _pos(env, states[v - 1], i)
            angle = rng.uniform(-np.pi, np.pi)
            target = p[:2] + rng.uniform(0.1, 0.2) * np.array([np.cos(angle), np.sin(angle)])
            other = np.stack([_pos(env, s, 1 - i)[:2] for s in states[v - 1 :]])
            if np.abs(target).max() > FREE or np.linalg.norm(other - target, axis=1).min() < 0.2:
                return None
            plan.violation = {"kind": "place", "xy": target.tolist()}
        return plan

    if variant == "pass_through_object":
        j = 1 - i
        # i starts 18-30 cm from j and is launched straight at it.
        angle = rng.uniform(-np.pi, np.pi)
        dist = rng.uniform(0.18, 0.3)
        plan.poses[i, :2] = plan.poses[j, :2] - dist * np.array([np.cos(angle), np.sin(angle)])
        if np.abs(plan.poses[i, :2]).max() > FREE:
            return None
        speed = rng.uniform(1.6, 2.4)
        launch = int(rng.integers(3, frames - 9))
        plan.launches.append((launch, i, (speed * np.cos(angle), speed * np.sin(angle), 0.0)))
        plan.violation_frame = launch
        _, states = simulate(env, plan, impossible=False, render=False)
        gap = _radius(0, plan.scales[0]) + _radius(1, plan.scales[1]) + 0.01
        for t in range(launch, frames - 4):
            if np.linalg.norm(_pos(env, states[t], i)[:2] - _pos(env, states[t], j)[:2]) < gap:
                if t == launch:
                    return None
                plan.violation_frame = t
                plan.violation = {"kind": "no_contact", "with": j}
                moved = np.linalg.norm(_pos(env, states[-1], j) - _pos(env, states[0], j))
                return plan if moved > 0.03 else None
        return None
    raise AssertionError(variant)


def make_pair(
    category: str,
    seed: int,
    size: int = 64,
    frames: int = 20,
    env: Any = None,
    hard: bool = False,
) -> tuple[Plan, dict[str, np.ndarray]]:
    """The pair of ``category`` for env seed ``seed``: its plan and arrays ``possible``,
    ``impossible`` (F, Hi, Wi, 3), ``states_possible``, ``states_impossible`` (F, S), ``actions``
    (F-1, 2) zeros. Deterministic: the same arguments give the same pair."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    env = env if env is not None else _env(size)
    if env.size != size:
        raise ValueError(f"env renders {env.size} px, pair wants {size}")
    rng = np.random.default_rng(seed)
    # Consecutive seeds cycle through the variants, so each is equally represented.
    cycle = variants(category, hard)
    variant = cycle[seed % len(cycle)]
    for _ in range(500):
        plan = _draw(env, rng, category, variant, seed, frames)
        if plan is None:
            continue
        possible, s_pos = simulate(env, plan, impossible=False)
        impossible, s_imp = simulate(env, plan, impossible=True)
        assert possible is not None and impossible is not None
        v = plan.violation_frame
        # The violation must show: at least 3 pixels differ clearly in some frame after v.
        changed = (np.abs(possible[v:].astype(int) - impossible[v:]).max(-1) > 40).sum((1, 2))
        if changed.max() < 3 or not np.all(np.isfinite(s_imp)):
            continue
        actions = np.zeros((frames - 1, *env.action_space.shape), np.float32)
        return plan, {
            "possible": possible,
            "impossible": impossible,
            "actions": actions,
            "states_possible": s_pos,
            "states_impossible": s_imp,
        }
    raise RuntimeError(f"could not draw a {variant} pair for seed {seed} (this is a bug)")


# ------------------------------------------------------------------------------------ writing
_WORKER_ENV: dict[int, Any] = {}


def _pair_job(job: tuple[str, int, int, int, bool]) -> tuple[Plan, dict[str, np.ndarray]]:
    category, seed, size, frames, hard = job
    if size not in _WORKER_ENV:
        _WORKER_ENV[size] = _env(size)
    return make_pair(category, seed, size, frames, _WORKER_ENV[size], hard)


def _plan_record(index: int, plan: Plan) -> dict[str, Any]:
    return {
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


def generate_clips(cfg: GenerateConfig, progress: bool = True) -> Path:
    """Make ``cfg.pairs_per_category`` pairs per category into ``cfg.out``; returns the dir."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (c, pair_seed(cfg.seed, c, i), cfg.size, cfg.frames, cfg.hard)
        for c in cfg.categories
        for i in range(cfg.pairs_per_category)
    ]
    t0 = time.perf_counter()
    records = []
    path = cfg.out / CLIPS_FILE
    bar = tqdm(total=len(jobs), desc="physics clips", unit="pair", disable=not progress)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for index, (plan, arrays) in enumerate(_map(_pair_job, jobs, cfg.workers)):
            g = f.create_group(f"pair_{index:05d}", track_order=True)
            for name, data in arrays.items():
                chunks = (1, *data.shape[1:]) if data.ndim == 4 else None
                g.create_dataset(
                    name, data=data, chunks=chunks, compression="lzf" if data.ndim == 4 else None
                )
            records.append(_plan_record(index, plan))
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
        "categories": list(cfg.categories),
        "action_dim": 2,
        "actions": "zeros: passive clips (the pusher is parked)",
        "file": CLIPS_FILE,
        "sha256": _sha256(path),
        "generate_seconds": round(time.perf_counter() - t0, 2),
        "pairs": records,
    }
    atomic_write_json(cfg.out / MANIFEST, manifest)
    return cfg.out


def _map(fn: Callable[[Any], Any], jobs: list[Any], workers: int) -> Iterator[Any]:
    if workers == 1 or len(jobs) < 2:
        yield from map(fn, jobs)
        return
    # spawn: MuJoCo renderers do not survive fork. imap keeps the order (pairs are indexed).
    with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(fn, jobs, chunksize=4)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


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
    if verify and _sha256(path) != manifest["sha256"]:
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
    manifest = read_json(Path(root) / MANIFEST, what="physics clip manifest")
    record = manifest["pairs"][index]
    _, arrays = make_pair(
        record["category"],
        record["seed"],
        manifest["size"],
        manifest["frames"],
        hard=manifest.get("hard", False),
    )
    return arrays
