"""The five categories of physics clips, their variants, and how one matched pair is drawn.

    from reverie.physics.variants import CATEGORIES, make_pair
    plan, arrays = make_pair("gravity", seed)   # arrays: possible, impossible, actions, states_*

Each variant draws a scene (``_base``, then a slide, a screen pass, a push off an edge or a toss),
checks that the lawful clip shows what the violation needs (the object visible, moving, apart from
the other one), and redraws otherwise. The variants are described in ``reverie.physics.clips``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reverie.envs.tabletop import TABLE_TOP
from reverie.io import ReverieError
from reverie.physics.scene import (
    EDGE,
    FREE,
    Plan,
    _pos,
    _radius,
    _recolour,
    _slide_speed,
    _stays_apart,
    _vel,
    _visible,
    make_env,
    simulate,
)


class NoPairError(RuntimeError):
    """A scene where a variant's events cannot happen (``make_pair`` with a ``scene``)."""


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


# ------------------------------------------------------------------------------ scene drawing
def _base(
    env: Any, rng: np.random.Generator, category: str, variant: str, seed: int, frames: int
) -> Plan:
    """Two objects at random spots, colours and sizes as the passive policy draws them; in a
    scene (``env.scene``) its objects keep their own colours, sizes and yaws."""
    poses = np.zeros((2, 4))
    for _ in range(100):
        poses[:, :2] = rng.uniform(-FREE, FREE, (2, 2))
        if np.linalg.norm(poses[0, :2] - poses[1, :2]) > 0.2:
            break
    poses[0, 3] = rng.uniform(-np.pi, np.pi)  # the cube's yaw
    hues = [float(rng.random()) if rng.random() < 0.5 else None for _ in range(2)]
    scales = [float(rng.uniform(0.7, 1.3)) if rng.random() < 0.25 else 1.0 for _ in range(2)]
    if env.scene is not None:  # the spec is the world: the same draws, then its own looks
        poses[:, 3] = [o.yaw for o in env.scene.objects]
        hues, scales = [None, None], [1.0, 1.0]
    return Plan(category, variant, seed, frames, int(rng.integers(2)), poses, hues, scales)


def _slide(env: Any, rng: np.random.Generator, plan: Plan) -> np.ndarray | None:
    """Launch ``plan.obj`` 2-3 frames before v so it is sliding at v (and the other object,
    half the time, earlier); returns the possible run's states, or None if the draw fails."""
    F, i = plan.frames, plan.obj
    v = int(rng.integers(6, F - 5))
    angle = rng.uniform(-np.pi, np.pi)
    speed = _slide_speed(env, i, rng.uniform(1.2, 2.2))
    plan.launches.append(
        (v - int(rng.integers(2, 4)), i, (speed * np.cos(angle), speed * np.sin(angle), 0.0))
    )
    if rng.random() < 0.5:
        angle = rng.uniform(-np.pi, np.pi)
        speed = _slide_speed(env, 1 - i, rng.uniform(0.5, 1.5))
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
        s = _slide_speed(env, 1 - i, rng.uniform(0.5, 1.5))
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
            plan.violation = _recolour(env, rng, plan)
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
            plan.violation = _recolour(env, rng, plan)
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
            plan.violation = _recolour(env, rng, plan)
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
        gap = _radius(env, 0, plan.scales[0]) + _radius(env, 1, plan.scales[1]) + 0.01
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
    scene: Any = None,
) -> tuple[Plan, dict[str, np.ndarray]]:
    """The pair of ``category`` for env seed ``seed``: its plan and arrays ``possible``,
    ``impossible`` (F, Hi, Wi, 3), ``states_possible``, ``states_impossible`` (F, S), ``actions``
    (F-1, 2) zeros. ``scene``: a two-object ``SceneSpec`` to play it in (``env`` is rebuilt
    from it); None: the default objects. Deterministic: the same arguments give the same pair."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    if scene is not None and len(scene.objects) != 2:
        raise ReverieError(
            f"physics clips are two-object scenes; this scene has {len(scene.objects)} objects"
        )
    env = env if env is not None else make_env(size, scene)
    if env.size != size:
        raise ValueError(f"env renders {env.size} px, pair wants {size}")
    if scene is not None and env.scene != scene:
        env.set_scene(scene)
    elif scene is None and env.scene is not None:
        raise ValueError("make_pair without a scene needs an env of the default objects")
    rng = np.random.default_rng(seed)
    # Consecutive seeds cycle through the variants, so each is equally represented.
    cycle = variants(category, hard)
    variant = cycle[seed % len(cycle)]
    # A scene may not allow a variant (a cube on a sticky table stops before it can vanish in
    # motion); the caller then moves on to another scene (``NoPairError``), so fewer tries.
    for _ in range(500 if scene is None else 300):
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
    if scene is not None:
        raise NoPairError(f"scene does not allow a {variant} pair for seed {seed}")
    raise RuntimeError(f"could not draw a {variant} pair for seed {seed} (this is a bug)")
