"""Tabletop: a pusher shoves a cube and a ball around a table; what goes over the edge falls.

A 0.8 × 0.8 m table stands 0.4 m above the floor. A cylinder pusher glides just above the table top
on two slide joints (it never touches the table, only the objects); the action is its target
velocity in the table plane. The objects (``cube``, ``ball`` and, with ``n_objects=3``, ``cube2``)
are free bodies under gravity: they slide, roll, topple, and fall to the floor when pushed off.
A fixed camera looks down at the table at an angle and sees some of the floor around it.

    from reverie.envs import make
    env = make("tabletop")                     # or gym.make("reverie/Tabletop-v0")
    obs, info = env.reset(seed=0)              # obs uint8 (64, 64, 3)
    obs, reward, success, _, info = env.step(env.expert_action(env.np_random))

State (float64): ``qpos ⊕ qvel`` = ``[px, py, (x y z qw qx qy qz) per object,
vpx, vpy, (vx vy vz wx wy wz) per object]`` (free-joint linear velocity in the world frame, angular
velocity in the body frame). Action: ``Box(-1, 1, (2,))``, the pusher's target velocity in units
of 0.5 m/s × ``actuator_gain``. One control step = 10 × 0.01 s = 0.1 s.

Editing the scene (the physics suite builds impossible clips this way):

- ``set_object_pose(i, pos, quat=None)`` teleports object ``i``; ``hide_object(i)`` parks it on
  the floor far outside the view (state-only, so ``get_state`` records it); ``launch(i, v)`` sets
  its linear velocity. All three call ``mj_forward``.
- ``set_object_rgba(i, rgba)`` and ``set_object_size(i, scale)`` edit the model (colour; collision
  and drawn size). They last until the next ``reset()`` and survive ``set_factors``.
- ``set_occluder(xy)`` stands a thin screen (0.24 m wide, 0.36 m tall, facing the camera, no
  collisions) on the table at ``xy``; ``set_occluder(None)`` removes it. It is a mocap body, so it
  is not part of the state vector; ``reset()`` removes it. The physics suite slides it across
  objects to hide them (object permanence); with no screen placed, frames are as without it.
- Gravity is the ``gravity`` factor, a signed multiple of 9.81 m/s² downward: ``set_factors(
  {"gravity": -1.0})`` mid-episode flips it (objects fall up). Randomisation (``randomize=physics``)
  only draws it from [0.5, 1.5]; negative values come only from explicit requests.

Scenes: ``make("tabletop", scene=spec)`` (a ``reverie.scenes.SceneSpec``: 1–4 cubes, balls or
cylinders with sizes, masses, frictions, bounciness and colours; the table's friction, gravity,
light and camera) builds the world from the spec instead; ``reverie.scenes.mjcf`` writes its MJCF
and the few facts the env needs (names, kinds, sizes, colours, start state). Objects are then
named ``obj0 … obj{K-1}``, start at the spec's poses (only the pusher's start is drawn), keep the
spec's colours (the ``*_hue`` factors colour only the default objects) and the state layout above
holds with ``K = len(spec.objects)`` objects: ``4 + 13·K`` floats. ``set_scene(spec)`` rebuilds
the env in another world (the layout may change). Factors still apply, as multipliers and offsets
from the spec's values. Without a scene the default world is exactly as it was (same MJCF, byte
for byte).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from reverie.envs.base import Factor
from reverie.envs.mujoco_base import MujocoEnv, hsv_rgba
from reverie.envs.tabletop_scene import (  # noqa: F401  (the table's numbers, re-exported)
    OCCLUDER_HALF,
    OCCLUDER_PARKED,
    PUSHER_RADIUS,
    PUSHER_RANGE,
    PUSHER_SPEED,
    PUSHER_START,
    TABLE_BRIGHTNESS,
    TABLE_HALF,
    TABLE_RGB,
    TABLE_TOP,
    tabletop_xml,
)

GOAL_HALF = 0.25  # m, goals (and starts) keep objects this close to the centre: reachable
SUCCESS_TOL = 0.04  # m, per object, 3-D distance
RANDOM_GRAVITY = (0.5, 1.5)  # what physics randomisation draws; flips come from set_factors
HIDDEN_AT = np.array([10.0, 10.0])  # m, where hide_object parks things (off camera, on the floor)

# name, MJCF geom type, size (half-extent or radius), mass (kg), default hue
OBJECTS = (
    ("cube", "box", 0.045, 0.3, 0.0),
    ("ball", "sphere", 0.045, 0.2, 0.6),
    ("cube2", "box", 0.035, 0.2, 0.33),
)


def _object_xml(name: str, kind: str, half: float, mass: float, x: float) -> str:
    size = f"{half} {half} {half}" if kind == "box" else f"{half}"
    # Rolling friction (condim 6) stops a pushed ball within ~5 cm instead of rolling off the table.
    extra = 'condim="6" friction="0.6 0.005 0.01"' if kind == "sphere" else ""
    return f"""
    <body name="{name}" pos="{x} 0 {TABLE_TOP + half}">
      <freejoint name="{name}"/>
      <geom name="{name}" type="{kind}" size="{size}" mass="{mass}" contype="1"
            conaffinity="3" {extra}/>
    </body>"""


class TabletopEnv(MujocoEnv):
    """A pusher, a table, objects; bring every object to its goal position."""

    short_name: ClassVar[str] = "tabletop"
    # The camera looks along +y, so +y is up on screen.
    keymap: ClassVar[dict[str, tuple[float, ...]] | None] = {
        "up": (0.0, 1.0),
        "down": (0.0, -1.0),
        "left": (-1.0, 0.0),
        "right": (1.0, 0.0),
    }
    gym_id: ClassVar[str] = "reverie/Tabletop-v0"
    success_rule: ClassVar[str] = (
        f"every object's centre within {SUCCESS_TOL * 100:.0f} cm (3-D) of its goal position"
    )
    max_episode_steps: ClassVar[int] = 100
    frame_skip: ClassVar[int] = 10
    camera_name: ClassVar[str] = "main"
    proprio_names: ClassVar[tuple[str, ...]] = ("pusher_x", "pusher_y", "pusher_vx", "pusher_vy")
    physics_factors: ClassVar[dict[str, Factor]] = {
        "mass_scale": Factor(1.0, 0.5, 2.0, "multiplier on every object's mass and inertia"),
        "friction": Factor(1.0, 0.3, 2.0, "multiplier on sliding friction of table and objects"),
        "damping": Factor(0.0, 0.0, 0.3, "viscous damping on the objects' free joints (N·s/m)"),
        "gravity": Factor(
            1.0, -1.5, 1.5, "gravity in units of 9.81 m/s² downward; negative flips it upward"
        ),
        "actuator_gain": Factor(1.0, 0.5, 1.5, "multiplier on the pusher's commanded speed"),
    }
    visual_factors: ClassVar[dict[str, Factor]] = {
        "cube_hue": Factor(0.0, 0.0, 1.0, "hue of the cube"),
        "ball_hue": Factor(0.6, 0.0, 1.0, "hue of the ball"),
        "cube2_hue": Factor(0.33, 0.0, 1.0, "hue of the second cube (n_objects=3)"),
        "table_brightness": Factor(
            TABLE_BRIGHTNESS, 0.3, 0.8, "brightness of the (wooden) table top"
        ),
        "light": Factor(1.0, 0.4, 1.3, "multiplier on the overhead light's diffuse colour"),
        "ambient": Factor(0.25, 0.0, 0.5, "headlight ambient level"),
        "camera_dx": Factor(0.0, -0.05, 0.05, "camera offset along x (m)"),
        "camera_dy": Factor(0.0, -0.05, 0.05, "camera offset along y (m)"),
        "camera_dz": Factor(0.0, -0.05, 0.05, "camera offset along z (m)"),
    }

    def __init__(
        self,
        size: int = 64,
        factors: dict[str, float] | None = None,
        randomize: str = "none",
        render_mode: str = "rgb_array",
        n_objects: int = 2,
        scene: Any = None,
    ) -> None:
        # A scene (``reverie.scenes.SceneSpec``) decides the objects; only ``reverie.scenes``
        # knows its fields: the env asks it for MJCF (``scene_xml``) and a few per-object facts.
        self.scene = None
        if scene is not None:
            from reverie.scenes import mjcf as scene_mjcf

            self.scene = scene_mjcf.placed(scene)
            self._scene_mjcf = scene_mjcf
            n_objects = len(scene_mjcf.object_names(self.scene))
        elif n_objects not in (2, 3):
            raise ValueError(f"tabletop n_objects must be 2 or 3, got {n_objects}")
        self.n_objects = n_objects
        super().__init__(size=size, factors=factors, randomize=randomize, render_mode=render_mode)

    @property
    def object_names(self) -> tuple[str, ...]:
        if self.scene is not None:
            return self._scene_mjcf.object_names(self.scene)
        return tuple(name for name, *_ in OBJECTS[: self.n_objects])

    def set_scene(self, scene: Any) -> None:
        """Rebuild the world from another ``SceneSpec`` (the number of objects, and so the state
        layout, may change); factors keep their values. Takes effect now; reset() to start."""
        self.close()
        self.__init__(  # type: ignore[misc]
            size=self.size,
            factors=self._base_factors,
            randomize=self.randomize,
            render_mode=self.render_mode,
            scene=scene,
        )

    def _build_xml(self) -> str:
        if self.scene is not None:
            return self._scene_mjcf.scene_xml(self.scene, self.size)
        objects = "".join(
            _object_xml(name, kind, half, mass, x=0.15 * k - 0.15)
            for k, (name, kind, half, mass, _) in enumerate(OBJECTS[: self.n_objects])
        )
        return tabletop_xml(self.size, objects)

    def _setup(self) -> None:
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        m = self.model
        self._bodies = [self._body_id(n) for n in self.object_names]
        self._geoms = [self._geom_id(n) for n in self.object_names]
        self._qadr = [int(m.jnt_qposadr[self._joint_id(n)]) for n in self.object_names]
        self._vadr = [int(m.jnt_dofadr[self._joint_id(n)]) for n in self.object_names]
        self._table = self._geom_id("table_top")
        self._occluder = int(m.body_mocapid[self._body_id("occluder")])
        assert m.nq == 2 + 7 * self.n_objects and m.nv == 2 + 6 * self.n_objects
        if self.scene is None:
            self._kinds = tuple(kind for _, kind, *_ in OBJECTS[: self.n_objects])
            self._halves = tuple(half for _, _, half, *_ in OBJECTS[: self.n_objects])
            self._base_rgba: tuple[np.ndarray, ...] | None = None
        else:
            self._kinds = self._scene_mjcf.geom_types(self.scene)
            self._halves = self._scene_mjcf.half_sizes(self.scene)
            self._base_rgba = self._scene_mjcf.colours(self.scene)
        self._pair_friction = m.pair_friction.copy()  # scenes' object–table pairs (else empty)
        self._clear_edits()

    def _clear_edits(self) -> None:
        self._rgba_override: dict[int, np.ndarray] = {}
        self._size_scale = np.ones(self.n_objects)

    # ----------------------------------------------------------------------------- factors
    def _draw_factors(self, rng: np.random.Generator) -> dict[str, float]:
        factors = super()._draw_factors(rng)
        if self.randomize in ("physics", "both"):
            # Training-time variety should not turn the world upside down: flips are explicit.
            factors["gravity"] = float(rng.uniform(*RANDOM_GRAVITY))
        return factors

    def _apply_factors(self) -> None:
        f, m = self.factors, self.model
        for body in self._bodies:
            self._scale("body_mass", body, f["mass_scale"])
            self._scale("body_inertia", body, f["mass_scale"])
        self._scale("geom_friction", (slice(None), 0), f["friction"])
        m.pair_friction[:, :2] = self._pair_friction[:, :2] * f["friction"]
        object_dofs = np.concatenate([np.arange(a, a + 6) for a in self._vadr])
        m.dof_damping[object_dofs] = f["damping"]
        m.opt.gravity[:] = self.nominal["gravity"] * f["gravity"]
        # Velocity actuator: force = gain·ctrl - kv·v, so the pusher settles at gain/kv·ctrl m/s.
        self._scale("actuator_gainprm", (slice(None), 0), PUSHER_SPEED * f["actuator_gain"])
        for i, (name, geom) in enumerate(zip(self.object_names, self._geoms)):
            base = (
                hsv_rgba(f[f"{name}_hue"]) if self._base_rgba is None else self._base_rgba[i]
            )  # a scene's colours are its own; the hue factors colour the default objects
            m.geom_rgba[geom] = self._rgba_override.get(i, base)
            for field in ("geom_size", "geom_rbound", "geom_aabb"):
                self._scale(field, geom, self._size_scale[i])
        table_rgb = np.array(TABLE_RGB) * f["table_brightness"]
        m.geom_rgba[self._table, :3] = np.clip(table_rgb, 0, 1)
        ambient = f["ambient"]
        if self.scene is not None:  # the factor moves the scene's own level, not replaces it
            base = self._scene_mjcf.ambient(self.scene)
            ambient = float(np.clip(base + ambient - 0.25, 0.0, 1.0))
        self._set_lighting(f["light"], ambient)
        self._offset_camera(np.array([f["camera_dx"], f["camera_dy"], f["camera_dz"]]))
        self._refresh_constants()  # also runs mj_forward: camera and lights move now

    # -------------------------------------------------------------------------- state views
    def object_positions(self, state: np.ndarray | None = None) -> np.ndarray:
        """Object centres ``(K, 3)`` in metres, from ``state`` (default: the current state)."""
        state = self.get_state() if state is None else np.asarray(state, np.float64)
        return np.stack([state[a : a + 3] for a in self._qadr])

    def pusher_position(self, state: np.ndarray | None = None) -> np.ndarray:
        state = self.get_state() if state is None else np.asarray(state, np.float64)
        return state[:2].copy()

    def _object_radius(self, i: int) -> float:
        """Horizontal reach of object ``i`` from its centre (a box's half-diagonal)."""
        half = float(self.model.geom_size[self._geoms[i], 0])
        return half * (np.sqrt(2.0) if self._kinds[i] == "box" else 1.0)

    # ---------------------------------------------------------------------------- editing
    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.n_objects:
            raise ValueError(f"object index {i} out of range; objects: {self.object_names}")

    def set_object_pose(self, i: int, pos: np.ndarray, quat: np.ndarray | None = None) -> None:
        """Teleport object ``i`` to ``pos`` (m), optionally with orientation ``quat`` (w x y z)."""
        self._check_index(i)
        a = self._qadr[i]
        self.data.qpos[a : a + 3] = np.asarray(pos, np.float64)
        if quat is not None:
            q = np.asarray(quat, np.float64)
            self.data.qpos[a + 3 : a + 7] = q / np.linalg.norm(q)
        self.set_state(self.get_state())  # mj_forward through the one checked path

    def hide_object(self, i: int) -> None:
        """Make object ``i`` vanish: park it at rest on the floor far outside the camera's view."""
        self._check_index(i)
        half = float(self.model.geom_size[self._geoms[i], 0])
        self.set_object_pose(i, [*(HIDDEN_AT + [0.0, 0.5 * i]), half], [1.0, 0.0, 0.0, 0.0])
        self.launch(i, np.zeros(3), angular=np.zeros(3))

    def launch(self, i: int, velocity: np.ndarray, angular: np.ndarray | None = None) -> None:
        """Give object ``i`` linear velocity ``velocity`` (m/s, world frame) and optionally
        angular velocity ``angular`` (rad/s, body frame)."""
        self._check_index(i)
        v = self._vadr[i]
        self.data.qvel[v : v + 3] = np.asarray(velocity, np.float64)
        if angular is not None:
            self.data.qvel[v + 3 : v + 6] = np.asarray(angular, np.float64)
        self.set_state(self.get_state())

    def set_object_rgba(self, i: int, rgba: np.ndarray) -> None:
        """Recolour object ``i`` (RGBA in [0, 1]; alpha 0 makes it invisible but still solid)."""
        self._check_index(i)
        self._rgba_override[i] = np.clip(np.asarray(rgba, np.float64), 0.0, 1.0)
        self._apply_factors()

    def set_object_size(self, i: int, scale: float) -> None:
        """Scale object ``i``'s collision and drawn size by ``scale`` from its XML size (its mass
        is unchanged; a grown object resting on the table will be pushed out of it)."""
        self._check_index(i)
        if not 0.1 <= scale <= 5.0:
            raise ValueError(f"object size scale must be in [0.1, 5], got {scale}")
        self._size_scale[i] = scale
        self._apply_factors()

    # ------------------------------------------------------------------------------- world
    def _place(self, rng: np.random.Generator, keep_out: list[np.ndarray]) -> np.ndarray:
        """Random xy within the reachable square, at least 0.13 m from everything in keep_out."""
        for _ in range(1000):
            xy = rng.uniform(-GOAL_HALF, GOAL_HALF, 2)
            if all(np.linalg.norm(xy - o) > 0.13 for o in keep_out):
                return xy
        raise RuntimeError("could not place objects apart (this should not happen)")

    def _random_layout(self, rng: np.random.Generator, pusher: np.ndarray) -> np.ndarray:
        """A state with every object resting on the table at a random spot (and yaw for cubes)."""
        state = np.zeros(self.state_dim)
        state[:2] = pusher
        taken = [pusher]
        for i, (kind, half) in enumerate(zip(self._kinds, self._halves)):
            xy = self._place(rng, taken)
            taken.append(xy)
            yaw = rng.uniform(-np.pi, np.pi) if kind == "box" else 0.0
            a = self._qadr[i]
            state[a : a + 3] = [*xy, TABLE_TOP + half * self._size_scale[i]]
            state[a + 3 : a + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        return state

    def set_occluder(self, xy: np.ndarray | None) -> None:
        """Stand the occluding screen on the table centred at ``xy`` (m), or remove it (None)."""
        pos = OCCLUDER_PARKED
        if xy is not None:
            pos = np.array([*np.asarray(xy, np.float64).reshape(2), TABLE_TOP + OCCLUDER_HALF[2]])
        self.data.mocap_pos[self._occluder] = pos
        self.set_state(self.get_state())  # mj_forward: the next render shows it

    def occluder_position(self) -> np.ndarray | None:
        """Centre ``xy`` of the screen, or None when it is not placed."""
        pos = self.data.mocap_pos[self._occluder]
        return None if pos[2] < 0 else pos[:2].copy()

    def _reset_world(self, rng: np.random.Generator) -> None:
        self.set_occluder(None)
        if np.any(self._size_scale != 1.0) or self._rgba_override:
            self._clear_edits()
            self._apply_factors()
        if self.scene is not None:
            self.set_state(self._scene_mjcf.start_state(self.scene, self, rng))
            return
        self.set_state(self._random_layout(rng, rng.uniform(-PUSHER_START, PUSHER_START, 2)))

    def _step_world(self, action: np.ndarray) -> None:
        self._physics_step(action)

    @classmethod
    def perturbations(cls) -> tuple[str, ...]:
        return ("teleport", *super().perturbations(), "delete")

    def _perturb(
        self, kind: str, rng: np.random.Generator, target: tuple[float, float] | None
    ) -> tuple[str, bool | None]:
        """Teleport the first visible object above a random table spot, or delete (hide) it."""
        pos = self.object_positions()  # (K, 3)
        visible = [i for i in range(len(pos)) if np.linalg.norm(pos[i, :2] - HIDDEN_AT) > 2.0]
        if not visible:
            raise ValueError("every object is already deleted: reset to bring them back")
        i = visible[0]
        if kind == "teleport":
            xy = rng.uniform(-0.6 * TABLE_HALF, 0.6 * TABLE_HALF, size=2)
            self.set_object_pose(i, [xy[0], xy[1], TABLE_TOP + 0.15])
            self.launch(i, np.zeros(3), angular=np.zeros(3))
            return f"{self.object_names[i]} teleported above ({xy[0]:.2f}, {xy[1]:.2f})", None
        self.hide_object(i)
        return f"{self.object_names[i]} deleted", None

    def _sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        """Objects at rest at random reachable spots on the table, with their current orientation
        (success ignores orientation; keeping it makes the goal image one the scene can show);
        the pusher anywhere over the table."""
        goal = self._random_layout(rng, rng.uniform(-PUSHER_START, PUSHER_START, 2))
        current = self.get_state()
        for a in self._qadr:
            goal[a + 3 : a + 7] = current[a + 3 : a + 7]
        return goal

    @classmethod
    def proprio_indices(cls, state_dim: int) -> tuple[int, ...]:
        # qpos = [px, py, 7 per object], qvel = [vx, vy, 6 per object]: 4 + 13 K entries.
        if state_dim < 4 or (state_dim - 4) % 13:
            raise ValueError(f"a tabletop state has 4 + 13 K entries, got {state_dim}")
        nq = 2 + 7 * ((state_dim - 4) // 13)
        return (0, 1, nq, nq + 1)

    def goal_distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        """Sum over objects of the 3-D distance between centre and goal centre (m)."""
        err = self.object_positions(state) - self.object_positions(goal)
        return float(np.linalg.norm(err, axis=1).sum())

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        err = self.object_positions(state) - self.object_positions(goal)
        return bool(np.all(np.linalg.norm(err, axis=1) <= SUCCESS_TOL))

    def success_margin(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        err = self.object_positions(state) - self.object_positions(goal)
        return np.linalg.norm(err, axis=1) / SUCCESS_TOL  # (K,) per object

    def approach_margin(self, state: np.ndarray, goal: np.ndarray) -> float:
        """How far the pusher is from where it can push, over the success tolerance: its entry
        of ``approach_margins`` for the on-table object farthest from its goal; 0 once every
        object is within tolerance. (The oracle's ``reach`` cost uses ``approach_margins``,
        placing the objects one at a time.)"""
        pos, goal_pos = self.object_positions(state), self.object_positions(goal)
        err = np.linalg.norm(goal_pos[:, :2] - pos[:, :2], axis=1)
        err = np.where((pos[:, 2] > TABLE_TOP - 0.01) & (err > SUCCESS_TOL), err, -1.0)
        if err.max() < 0:
            return 0.0
        return float(self.approach_margins(state, goal)[int(np.argmax(err))])

    def approach_margins(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """(K,) how far the pusher is from the spot behind each object (opposite its goal
        direction), over the success tolerance; inf for an object off the table (it cannot be
        pushed back). The oracle's ``reach`` cost places the objects one at a time with it
        (``reverie.planning.objective.state_cost``)."""
        pos, goal_pos = self.object_positions(state), self.object_positions(goal)
        pusher = self.pusher_position(state)[:2]
        out = np.full(len(pos), np.inf)
        for i in range(len(pos)):
            if pos[i, 2] <= TABLE_TOP - 0.01:
                continue
            delta = goal_pos[i, :2] - pos[i, :2]
            norm = float(np.linalg.norm(delta))
            u = delta / norm if norm > 1e-9 else np.zeros(2)
            behind = pos[i, :2] - u * (self._object_radius(i) + PUSHER_RADIUS + 0.01)
            out[i] = float(np.linalg.norm(pusher - behind)) / SUCCESS_TOL
        return out

    def expert_action(self, rng: np.random.Generator) -> np.ndarray:
        """Push the object farthest from its goal: get behind it (relative to the push
        direction), going round it if needed, then push it toward the goal."""
        assert self.goal is not None, "call reset() before expert_action()"
        state = self.get_state()
        pos, goal_pos = self.object_positions(state), self.object_positions(self.goal)
        pusher = state[:2]
        err = np.linalg.norm(goal_pos[:, :2] - pos[:, :2], axis=1)
        # Objects that left the table cannot be brought back: ignore them.
        on_table = pos[:, 2] > TABLE_TOP - 0.01
        err = np.where(on_table & (err > SUCCESS_TOL / 2), err, -1.0)
        if err.max() < 0:
            return np.zeros(2, np.float32)
        i = int(np.argmax(err))
        obj, target = pos[i, :2], goal_pos[i, :2]
        u = (target - obj) / err[i]  # push direction
        reach = self._object_radius(i) + PUSHER_RADIUS + 0.01  # centre distance that clears it
        rel = pusher - obj
        along = float(rel @ u)  # < 0: the pusher is behind the object
        lateral = rel - along * u
        lat_dist = float(np.linalg.norm(lateral))
        side = lateral / lat_dist if lat_dist > 1e-6 else np.array([-u[1], u[0]])
        top_speed = 1.0
        # Go round the object on a rectangle (sideways, back, across) so the pusher does not
        # shove it the wrong way, then push.
        if along > -0.5 * reach and lat_dist < reach:
            waypoint = obj + side * (reach + 0.03) + u * along  # step aside
        elif along > -0.5 * reach:
            waypoint = obj + side * (reach + 0.03) - u * reach  # pass it on the side
        elif lat_dist > 0.015:
            waypoint = obj - u * reach  # line up behind it
        else:
            # Push along u, slowing near the goal (the object coasts a little), staying lined up.
            waypoint = pusher + u * min(0.7 * err[i], 0.05) - lateral
            top_speed = 0.5  # a hard shove sends things flying
        waypoint = np.clip(waypoint, -PUSHER_RANGE, PUSHER_RANGE)
        step = (
            PUSHER_SPEED * self.factors["actuator_gain"] * self.frame_skip * self.model.opt.timestep
        )
        action = (waypoint - pusher) / step  # metres per control step at |action| = 1
        norm = float(np.linalg.norm(action))
        if norm > top_speed:
            action *= top_speed / norm
        return np.clip(action, -1.0, 1.0).astype(np.float32)
