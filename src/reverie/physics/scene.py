"""The scripted passive Tabletop scene of a physics clip, and the one edit that makes it impossible.

    plan = Plan(...)                                  # drawn per variant by ``variants.py``
    frames, states = simulate(env, plan, impossible=True)

A ``Plan`` fixes everything about a clip (object poses, colours, sizes, launches, the screen)
and the violation applied just before the physics step that produces its violation frame;
``simulate`` plays it in MuJoCo with or without that edit. The state helpers read object
positions, velocities and visibility from a state vector. ``reverie.physics.clips`` describes
the categories and the seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reverie.envs.tabletop import TABLE_HALF

FREE = 0.30  # m: objects start (and jumps land) within +-FREE of the table centre
EDGE = TABLE_HALF  # m: the table's half side


# ------------------------------------------------------------------------------------ the plan
@dataclass
class Plan:
    """A scripted passive scene and the one edit that makes it impossible."""

    category: str
    variant: str
    seed: int
    frames: int
    obj: int
    """Index of the object the violation acts on (default objects: 0 cube, 1 ball)."""
    poses: np.ndarray
    """(K, 4): x, y, height above the resting height, yaw of each object at frame 0."""
    hues: list[float | None]
    """Per object: a hue in [0, 1], or None for the scene's own colour (always, in a scene)."""
    scales: list[float]
    """Per object: size scale at frame 0 (1: its own size; always, in a scene)."""
    screen: tuple[float, float, float] | None = None
    """(y, x0, speed per step) of the sliding screen, or None."""
    launches: list[tuple[int, int, tuple[float, float, float]]] = field(default_factory=list)
    """(frame, object, velocity m/s): applied just before the step that produces ``frame``."""
    hidden: list[int] = field(default_factory=list)
    """Objects absent from frame 0 (parked off camera)."""
    violation_frame: int = -1
    violation: dict[str, Any] = field(default_factory=dict)
    """``kind`` and its parameters (see ``_apply_violation``)."""


def make_env(size: int, scene: Any = None) -> Any:
    """The Tabletop env clips are played in: its default objects, or a ``SceneSpec``'s."""
    from reverie.envs import make

    return make("tabletop", size=size, scene=scene)


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
    m = env.model
    saved = (m.geom_contype.copy(), m.geom_conaffinity.copy(), m.pair_margin.copy())
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
        m.geom_contype[:], m.geom_conaffinity[:], m.pair_margin[:] = saved
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
    elif kind == "recolour":  # to a hue (default objects) or a scene's named colour (rgb)
        env.set_object_rgba(i, [*v["rgb"], 1.0] if "rgb" in v else hsv_rgba(v["hue"]))
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
    # A scene's object-table contacts are explicit <pair>s, which contype/conaffinity do not
    # gate: a margin no penetration reaches switches such a pair off.
    for p in range(m.npair):
        if {int(m.pair_geom1[p]), int(m.pair_geom2[p])} == {a, b}:
            m.pair_margin[p] = -10.0
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


def _radius(env: Any, i: int, scale: float) -> float:
    """Horizontal reach of object i at size scale ``scale`` (a box's half-diagonal), for
    spacing checks; the env knows its objects (default or a scene's)."""
    half = env._halves[i] * scale
    return half * (np.sqrt(2.0) if env._kinds[i] == "box" else 1.0)


def _slide_speed(env: Any, i: int, speed: float, reach: float = 0.35) -> float:
    """``speed`` (m/s), capped in a scene so that object ``i`` slides at most ``reach`` m before
    friction stops it (v² = 2·μ·g·d, μ the geometric mean of its and the table's friction): on
    an icy table a default launch would carry it off. The default objects keep ``speed``."""
    if env.scene is None:
        return speed
    mu = np.sqrt(env.scene.objects[i].friction * env.scene.table_friction)
    g = -float(env.model.opt.gravity[2])
    return float(min(speed, np.sqrt(2.0 * mu * g * reach)))


def _default_hue(env: Any, i: int) -> float:
    return float(env.factors[f"{env.object_names[i]}_hue"])


def _far_hue(rng: np.random.Generator, hue: float) -> float:
    """A hue at least 0.25 round the colour wheel from ``hue``."""
    return float((hue + rng.uniform(0.25, 0.75)) % 1.0)


def _recolour(env: Any, rng: np.random.Generator, plan: Plan) -> dict[str, Any]:
    """The recolour violation of ``plan.obj``: a hue far from its own on the default objects; in
    a scene, a named colour no object of the scene wears (a colour the family's world has)."""
    i = plan.obj
    if env.scene is None:
        hue = plan.hues[i] if plan.hues[i] is not None else _default_hue(env, i)
        return {"kind": "recolour", "hue": _far_hue(rng, hue)}
    from reverie.scenes.spec import COLOURS

    worn = {o.colour for o in env.scene.objects}
    name = str(rng.choice(sorted(set(COLOURS) - worn)))
    return {"kind": "recolour", "colour": name, "rgb": list(COLOURS[name])}


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
    gap = _radius(env, 0, plan.scales[0]) + _radius(env, 1, plan.scales[1]) + 0.02
    pos = np.stack([env.object_positions(s) for s in states])  # (F, K, 3)
    return bool(np.all(np.linalg.norm(pos[:, 0, :2] - pos[:, 1, :2], axis=1) > gap))
