"""SceneSpec → MuJoCo: the tabletop env's MJCF for a spec, its start state, and MJCF export.

    from reverie.scenes.mjcf import export_mjcf
    xml = export_mjcf(spec)                       # through mujoco.MjSpec → to_xml()
    model = mujoco.MjModel.from_xml_string(xml)   # same bodies, masses, frictions as the env

The tabletop env calls ``scene_xml`` when built with ``scene=``; everything a spec means in
physics is decided here:

- objects are free bodies ``obj0 … obj{K-1}`` in spec order (a cube is a box, a ball a sphere, a
  cylinder an upright cylinder of height ``2·size``); balls get rolling friction (condim 6);
- object–table contact is an explicit ``<pair>`` per object with friction ``√(μ_object·μ_table)``
  (MuJoCo's default would take the larger of the two, so an icy table would not be icy) and the
  object's bounciness as the contact's damping ratio: a restitution ``e`` gives
  ``ζ = -ln e / √(π² + ln² e)`` (a spring-damper's bounce), ``solref = (0.02, ζ)``. The dynamic
  contacts between each object and the table body are excluded (so the pair is the only one);
  objects then pass through the table's legs when they fall, which the camera barely sees;
- object–object contacts use MuJoCo's mixing (larger friction, mean solref);
- gravity, the light's diffuse level, the ambient level and the camera offset go into the XML, so
  the env's factors scale and shift *from the scene's values*.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from reverie.io import ReverieError
from reverie.scenes.layout import base_height, place
from reverie.scenes.spec import ObjectSpec, SceneSpec

GEOM_TYPES = {"cube": "box", "ball": "sphere", "cylinder": "cylinder"}
CONTACT_TIMECONST = 0.04  # s: softer than MuJoCo's 0.02, so lightly damped contacts stay stable
MIN_DAMPING = 0.2  # contact damping ratio of the bounciest object (below it, dt = 0.01 blows up)
BALL_ROLLING = (0.005, 0.01)  # torsional, rolling friction of balls (the default ball's values)
PUSHER_CLEARANCE = 0.03  # m, the pusher starts at least this far from every object


def placed(spec: SceneSpec, seed: int = 0) -> SceneSpec:
    """``spec`` with every object given a pose (relations solved; see ``layout.place``)."""
    return spec if spec.placed else place(spec, seed=seed)


def object_names(spec: SceneSpec) -> tuple[str, ...]:
    return tuple(f"obj{i}" for i in range(len(spec.objects)))


def geom_types(spec: SceneSpec) -> tuple[str, ...]:
    return tuple(GEOM_TYPES[o.kind] for o in spec.objects)


def half_sizes(spec: SceneSpec) -> tuple[float, ...]:
    return tuple(o.size for o in spec.objects)


def colours(spec: SceneSpec) -> tuple[np.ndarray, ...]:
    """Opaque RGBA (4,) per object."""
    return tuple(np.array([*(o.rgb or (1.0, 1.0, 1.0)), 1.0]) for o in spec.objects)


def ambient(spec: SceneSpec) -> float:
    return spec.light.ambient


def damping_ratio(restitution: float) -> float:
    """The contact damping ratio for a bounciness: ``max(MIN_DAMPING, 1 - restitution)``.

    The textbook spring-damper value (``-ln e / √(π² + ln² e)``, 0.07 for e = 0.8) is unstable
    at this timestep: resting objects take off. Measured with a ball dropped 0.3 m: ζ = 0.2 (e ≥
    0.8) rebounds to about half the drop speed; ζ ≥ 0.3 (e ≤ 0.7) hardly bounces."""
    return max(MIN_DAMPING, 1.0 - restitution)


def _size_attr(o: ObjectSpec) -> str:
    s = f"{o.size:g}"
    return {"cube": f"{s} {s} {s}", "cylinder": f"{s} {s}"}.get(o.kind, s)


def _object_xml(name: str, o: ObjectSpec, z: float) -> str:
    x, y = o.pose if o.pose is not None else (0.0, 0.0)
    quat = f"{math.cos(o.yaw / 2):.6g} 0 0 {math.sin(o.yaw / 2):.6g}"
    mu = o.friction
    friction = f"{mu:g} {BALL_ROLLING[0]:g} {BALL_ROLLING[1]:g}" if o.kind == "ball" else f"{mu:g}"
    condim = ' condim="6"' if o.kind == "ball" else ""
    solref = f"{CONTACT_TIMECONST:g} {damping_ratio(o.restitution):.6g}"
    r, g, b = o.rgb or (1.0, 1.0, 1.0)
    return f"""
    <body name="{name}" pos="{x:g} {y:g} {z:.6g}" quat="{quat}">
      <freejoint name="{name}"/>
      <geom name="{name}" type="{GEOM_TYPES[o.kind]}" size="{_size_attr(o)}" mass="{o.mass:g}"
            contype="1" conaffinity="3" friction="{friction}"{condim} solref="{solref}"
            rgba="{r:g} {g:g} {b:g} 1"/>
    </body>"""


def _pair_xml(name: str, o: ObjectSpec, table_friction: float) -> str:
    mu = math.sqrt(o.friction * table_friction)
    solref = f"{CONTACT_TIMECONST:g} {damping_ratio(o.restitution):.6g}"
    if o.kind == "ball":
        rolling = f"{BALL_ROLLING[0]:g} {BALL_ROLLING[1]:g} {BALL_ROLLING[1]:g}"
        return (
            f'\n    <pair geom1="{name}" geom2="table_top" condim="6" '
            f'friction="{mu:.6g} {mu:.6g} {rolling}" solref="{solref}"/>'
        )
    return (
        f'\n    <pair geom1="{name}" geom2="table_top" condim="3" '
        f'friction="{mu:.6g} {mu:.6g} 0.005 0.0001 0.0001" solref="{solref}"/>'
    )


def heights(spec: SceneSpec) -> list[float]:
    """Centre height of every object above the floor, resting (stacked objects on their support)."""
    from reverie.envs.tabletop_scene import TABLE_TOP

    return [TABLE_TOP + base_height(spec, i) + o.size for i, o in enumerate(spec.objects)]


def scene_xml(spec: SceneSpec, size: int = 64) -> str:
    """The tabletop env's MJCF for ``spec`` (its objects at their poses, resting)."""
    from reverie.envs.tabletop_scene import tabletop_xml

    spec = placed(spec)
    names = object_names(spec)
    zs = heights(spec)
    objects = "".join(_object_xml(n, o, z) for n, o, z in zip(names, spec.objects, zs))
    contacts = "".join(_pair_xml(n, o, spec.table_friction) for n, o in zip(names, spec.objects))
    contacts += "".join(f'\n    <exclude body1="{n}" body2="table"/>' for n in names)
    c = spec.camera
    return tabletop_xml(
        size,
        objects,
        contacts=contacts,
        gravity=spec.gravity,
        light_diffuse=spec.light.diffuse,
        ambient=spec.light.ambient,
        camera_pos=(c.dx, -0.9 + c.dy, 1.9 + c.dz),
    )


def start_state(spec: SceneSpec, env: Any, rng: np.random.Generator) -> np.ndarray:
    """The env state of ``spec`` at rest: objects at their poses, the pusher at a random spot of
    the start square that clears every object (drawn from ``rng``)."""
    from reverie.envs.tabletop_scene import PUSHER_RADIUS, PUSHER_START

    state = np.zeros(env.state_dim)
    zs = heights(spec)
    for i, (o, z) in enumerate(zip(spec.objects, zs)):
        a = env._qadr[i]
        state[a : a + 3] = [*(o.pose or (0.0, 0.0)), z]
        state[a + 3 : a + 7] = [math.cos(o.yaw / 2), 0.0, 0.0, math.sin(o.yaw / 2)]
    xy = np.array([o.pose or (0.0, 0.0) for o in spec.objects])
    reach = np.array([o.radius for o in spec.objects]) + PUSHER_RADIUS + PUSHER_CLEARANCE
    for _ in range(1000):
        p = rng.uniform(-PUSHER_START, PUSHER_START, 2)
        if np.all(np.linalg.norm(xy - p, axis=1) > reach):
            state[:2] = p
            return state
    raise ReverieError("no room for the pusher among the scene's objects")


# ------------------------------------------------------------------------------------ export
def export_mjcf(spec: SceneSpec, size: int = 64) -> str:
    """MJCF of ``spec`` written by MuJoCo's own model editor (``MjSpec.to_xml``): the env's
    scene, primitive geoms only, without the physics suite's parked occluding screen."""
    import mujoco

    editor = mujoco.MjSpec.from_string(scene_xml(spec, size))
    editor.modelname = "reverie_tabletop_scene"
    editor.delete(editor.body("occluder"))
    # What the env sets at run time (its factors at their defaults) is baked in: the pusher's
    # speed gain and the table top's colour.
    from reverie.envs.tabletop_scene import PUSHER_SPEED, TABLE_BRIGHTNESS, TABLE_RGB

    for act in editor.actuators:
        act.gainprm[0] *= PUSHER_SPEED
    editor.geom("table_top").rgba = [*(np.array(TABLE_RGB) * TABLE_BRIGHTNESS), 1.0]
    for geom in editor.geoms:
        if geom.type not in (
            mujoco.mjtGeom.mjGEOM_BOX,
            mujoco.mjtGeom.mjGEOM_SPHERE,
            mujoco.mjtGeom.mjGEOM_CYLINDER,
            mujoco.mjtGeom.mjGEOM_PLANE,
        ):
            raise ReverieError(f"geom {geom.name!r} is not a primitive; cannot export")
    said = (spec.prompt or "from a spec file").replace("--", "- -")
    comment = f"<!-- Reverie scene (spec version 1): {said} -->\n"
    return comment + editor.to_xml()


def with_poses(spec: SceneSpec, poses: np.ndarray) -> SceneSpec:
    """``spec`` with object ``i`` at ``poses[i]`` (x, y); relations are dropped (now poses)."""
    objects = tuple(
        dataclasses.replace(o, pose=(float(p[0]), float(p[1])), relation=None)
        for o, p in zip(spec.objects, poses)
    )
    return dataclasses.replace(spec, objects=objects)
