"""The 2-D worlds (Push-T, Two-Room) as *approximate* MJCF, built with MuJoCo's model editor.

    reverie world export pusht --format mjcf --out pusht.xml
    from reverie.scenes.planar import export_planar
    xml = export_planar("tworoom")

Approximate, and labelled so in the model name and a comment: the geometry, masses and the
pusher are the env's (world units → metres: Push-T 1 unit = 1 mm, Two-Room 1 unit = 1 cm), bodies
move on planar joints (slide x, slide y, and a hinge about z for the T), and the pusher is a
velocity-servoed disc. What MuJoCo cannot say the same way is not carried over exactly: Push-T's
table friction (a Coulomb deceleration applied by hand each substep) becomes joint damping, and
Two-Room's kinematic agent (it moves by set velocities, clipped at the walls) becomes a light
servoed disc that collides with the walls. Trajectories will differ from the 2-D simulators.
"""

from __future__ import annotations

from reverie.io import ReverieError

PLANAR_WORLDS = ("pusht", "tworoom")
HEIGHT = 0.02  # m, half height of walls and bodies (they are flat in 2-D)


def _slide_xy(body, prefix: str, damping: float = 0.0) -> None:  # noqa: ANN001 (MjsBody)
    import mujoco

    for axis, name in (([1, 0, 0], "x"), ([0, 1, 0], "y")):
        body.add_joint(
            name=f"{prefix}_{name}", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=axis, damping=damping
        )


def _servo(editor, joint: str, kv: float, speed: float) -> None:  # noqa: ANN001 (MjSpec)
    act = editor.add_actuator(name=joint, target=joint)
    act.trntype = _mujoco().mjtTrn.mjTRN_JOINT
    act.set_to_velocity(kv=kv)
    act.gainprm[0] = kv * speed  # ctrl in [-1, 1] → target speed (m/s), like the env's action
    act.ctrlrange = [-1.0, 1.0]
    act.ctrllimited = 1


def _mujoco():  # noqa: ANN202
    import mujoco

    return mujoco


def _walls(editor, half: float, centre: tuple[float, float]) -> None:  # noqa: ANN001
    mj = _mujoco()
    cx, cy = centre
    t = 0.01
    for name, pos, size in (
        ("wall_left", (cx - half - t, cy), (t, half + 2 * t)),
        ("wall_right", (cx + half + t, cy), (t, half + 2 * t)),
        ("wall_bottom", (cx, cy - half - t), (half + 2 * t, t)),
        ("wall_top", (cx, cy + half + t), (half + 2 * t, t)),
    ):
        editor.worldbody.add_geom(
            name=name,
            type=mj.mjtGeom.mjGEOM_BOX,
            pos=[*pos, HEIGHT],
            size=[*size, HEIGHT],
            rgba=[0.3, 0.3, 0.3, 1],
        )


def _pusht() -> str:
    from reverie.envs import pusht as P

    mj = _mujoco()
    s = 0.001  # m per world unit
    editor = mj.MjSpec()
    editor.modelname = "reverie_pusht_APPROXIMATE"
    editor.option.gravity = [0, 0, 0]  # top-down world: the table's drag is joint damping
    editor.option.timestep = P.DT
    editor.worldbody.add_geom(
        name="floor", type=mj.mjtGeom.mjGEOM_PLANE, size=[1, 1, 0.05], rgba=[0.9, 0.9, 0.9, 1]
    )
    half = P.WORLD * s / 2
    _walls(editor, half, (half, half))
    agent = editor.worldbody.add_body(name="agent", pos=[half, half / 2, HEIGHT])
    _slide_xy(agent, "agent")
    agent.add_geom(
        name="agent",
        type=mj.mjtGeom.mjGEOM_CYLINDER,
        size=[P.AGENT_RADIUS * s, HEIGHT, 0],
        mass=P.AGENT_MASS,
        rgba=[0.25, 0.4, 0.9, 1],
    )
    f = P.PushTEnv.physics_factors
    block = editor.worldbody.add_body(name="T", pos=[half, half, HEIGHT])
    # The env's table removes ~friction units/s² of speed: a damping that stops a T moving at
    # the pusher's top speed in about the same time stands in for it.
    damping = f["mass"].default * f["friction"].default / P.VMAX
    _slide_xy(block, "T", damping=damping)
    block.add_joint(name="T_yaw", type=mj.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1], damping=0.01)
    for i, (centre, halves) in enumerate(P._BOXES):
        block.add_geom(
            name=f"T_{'bar' if i == 0 else 'stem'}",
            type=mj.mjtGeom.mjGEOM_BOX,
            pos=[centre[0] * s, centre[1] * s, 0],
            size=[halves[0] * s, halves[1] * s, HEIGHT],
            mass=f["mass"].default / 2,
            friction=[f["contact_friction"].default, 0.005, 0.0001],
            rgba=[0.6, 0.6, 0.65, 1],
        )
    for axis in ("x", "y"):
        _servo(editor, f"agent_{axis}", kv=P.SERVO * P.AGENT_MASS, speed=P.VMAX * s)
    return editor.to_xml()


def _tworoom() -> str:
    from reverie.envs import tworoom as W

    mj = _mujoco()
    s = 0.01
    editor = mj.MjSpec()
    editor.modelname = "reverie_tworoom_APPROXIMATE"
    editor.option.gravity = [0, 0, 0]
    editor.worldbody.add_geom(
        name="floor", type=mj.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.05], rgba=[0.95, 0.95, 0.9, 1]
    )
    half = W.WORLD * s / 2
    _walls(editor, half, (half, half))
    # The dividing wall with its door: two boxes above and below the opening.
    lo, hi = (W.DOOR_Y - W.DOOR_HALF) * s, (W.DOOR_Y + W.DOOR_HALF) * s
    for name, y0, y1 in (("wall_below_door", 0.0, lo), ("wall_above_door", hi, W.WORLD * s)):
        editor.worldbody.add_geom(
            name=name,
            type=mj.mjtGeom.mjGEOM_BOX,
            pos=[W.WALL_X * s, (y0 + y1) / 2, HEIGHT],
            size=[W.WALL_HALF * s, (y1 - y0) / 2, HEIGHT],
            rgba=[0.3, 0.3, 0.3, 1],
        )
    agent = editor.worldbody.add_body(name="agent", pos=[half / 2, half, HEIGHT])
    _slide_xy(agent, "agent")
    agent.add_geom(
        name="agent",
        type=mj.mjtGeom.mjGEOM_CYLINDER,
        size=[W.RADIUS * s, HEIGHT, 0],
        mass=0.1,
        rgba=[0.9, 0.2, 0.2, 1],
    )
    control_dt = 0.1  # s per control step (the env has no time; 10 Hz as the others)
    for axis in ("x", "y"):
        _servo(editor, f"agent_{axis}", kv=5.0, speed=W.VMAX * s / control_dt)
    return editor.to_xml()


def export_planar(world: str) -> str:
    """Approximate MJCF of a 2-D world (``pusht`` or ``tworoom``), labelled approximate."""
    builders = {"pusht": _pusht, "tworoom": _tworoom}
    if world not in builders:
        raise ReverieError(f"no planar export for {world!r}; known: {', '.join(PLANAR_WORLDS)}")
    xml = builders[world]()
    note = (
        f"<!-- Reverie {world}: APPROXIMATE MJCF of a 2-D world (planar joints; see "
        "reverie.scenes.planar for what differs from the env's own simulator) -->\n"
    )
    return note + xml
