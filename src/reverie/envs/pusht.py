"""Push-T: a disc pusher slides a T-shaped block to a goal pose on a table (pymunk 7 contacts).

The world is 512×512 units, like the public Push-T benchmark (gym-pusht), seen from above and
rendered to ``size`` px. The T is a bar 120×30 on a stem 30×90 (one rigid body, two boxes); the
pusher is a disc of radius 15. Walls line the workspace edge. The action is a velocity command in
[-1, 1]²: a force servo drives the pusher toward ``action · 150 · gain`` units/s, so contacts with
the T are real two-way contacts (a heavy T slows the pusher). Control is 10 Hz with 5 physics
substeps per step. The table resists the T with Coulomb friction plus viscous damping.

State (float64, 10): ``[agent_x, agent_y, agent_vx, agent_vy, block_x, block_y, block_angle,
block_vx, block_vy, block_angvel]`` (units, units/s, radians, rad/s; block position is the T's
centre of mass). Every control step reloads the bodies from this vector and clears Chipmunk's
contact and solver memory, so the state is the whole story: ``set_state`` then ``step``
reproduces a recorded trajectory bit for bit. Frames are drawn with numpy by signed distance
(anti-aliased edges carry sub-pixel pose), the goal is never drawn (goals are images).

Success: pusher and T both within 20 units of the goal's positions and the T's angle within 20°.
``goal_distance`` = T + pusher position errors (units) + T angle error (degrees), 0 at goal.
The published protocol's rule (DINO-WM / stable-worldmodel) is stricter and is reported beside
ours: ``published_success`` = ‖(agent_xy, block_xy) − goal‖₂ < 20 (one norm over the 4 numbers)
and wrapped |Δθ| < 20°, so 15 + 15 units of error passes ours (each ≤ 20) and fails theirs
(√(15² + 15²) ≈ 21.2). ``goal_difficulty`` measures how far a pair's goal is from its start.

    from reverie.envs import make
    env = make("pusht"); obs, info = env.reset(seed=0); obs, r, done, _, info = env.step([1, 0])
"""

from __future__ import annotations

import colorsys
import math

import gymnasium as gym
import numpy as np
import pymunk

# Chipmunk numbers every shape it indexes; resetting the counter before re-adding the moving
# shapes makes the spatial index (and so the contact solve order) identical on every rebuild.
from pymunk._chipmunk_cffi import lib as _cp

from reverie.envs.base import KEYMAP_Y_DOWN, Factor, ReverieEnv

WORLD = 512.0  # world units per side (the public benchmark's scale)
AGENT_RADIUS = 15.0
AGENT_MASS = 1.0
VMAX = 150.0  # pusher speed (units/s) at |action| = 1 and gain 1
SERVO = 30.0  # pusher velocity servo stiffness (1/s): reaches ~99% of a new command per step
CONTROL_DT = 0.1  # 10 Hz control, as in gym-pusht
SUBSTEPS = 5
DT = CONTROL_DT / SUBSTEPS
POS_TOL, ANGLE_TOL_DEG = 20.0, 20.0
# The published protocol's thresholds: one joint norm over (agent_xy, block_xy), strict "<".
PUBLISHED_POS_TOL, PUBLISHED_ANGLE_TOL_DEG = 20.0, 20.0
PUBLISHED_RULE = (
    "||(agent_xy, block_xy) - goal||_2 < 20 (one joint norm) and wrapped |dtheta| < 20 deg, "
    "latched at any step (DINO-WM / stable-worldmodel)"
)
START_MARGIN, GOAL_MARGIN = 110.0, 120.0  # T centre stays this far from the walls when sampled
ORBIT = 105.0  # expert's detour radius around the T's centre (T reaches 80, pusher 15)

# The T in its body frame (y down, as in the image): bar on top, stem below, origin at the centre
# of mass so that position and angle are the T's pose.
_BAR_W, _BAR_H, _STEM_W, _STEM_H = 120.0, 30.0, 30.0, 90.0
_COM_Y = (_BAR_W * _BAR_H * _BAR_H / 2 + _STEM_W * _STEM_H * (_BAR_H + _STEM_H / 2)) / (
    _BAR_W * _BAR_H + _STEM_W * _STEM_H
)
BAR = np.array([[-60, 0], [60, 0], [60, 30], [-60, 30]], np.float64) - [0, _COM_Y]
STEM = np.array([[-15, 30], [15, 30], [15, 120], [-15, 120]], np.float64) - [0, _COM_Y]
#: The T outline (8 vertices, clockwise on screen) used for drawing and contact candidates.
T_OUTLINE = np.array(
    [[-60, 0], [60, 0], [60, 30], [15, 30], [15, 120], [-15, 120], [-15, 30], [-60, 30]],
    np.float64,
) - [0, _COM_Y]
# (centre, half extents) of the two boxes, for signed distances in the body frame.
_BOXES = ((BAR.mean(0), np.array([60.0, 15.0])), (STEM.mean(0), np.array([15.0, 45.0])))


def _t_geometry() -> tuple[float, float]:
    """Squared radius of gyration and mean footprint radius of the T (per unit mass)."""
    parts = [(BAR, _BAR_W, _BAR_H), (STEM, _STEM_W, _STEM_H)]
    area = sum(w * h for _, w, h in parts)
    rho2 = sum(
        w * h / area * ((w * w + h * h) / 12 + float(np.sum(v.mean(0) ** 2))) for v, w, h in parts
    )
    # Mean distance of the footprint from the centre of mass sets the table's friction torque.
    xs, ys = np.meshgrid(np.arange(-59.5, 60), np.arange(0.5, 120))  # 1-unit cells, T's box
    inside = (ys < _BAR_H) | (np.abs(xs) < _STEM_W / 2)
    return rho2, float(np.hypot(xs, ys - _COM_Y)[inside].mean())


RHO2, FRICTION_RADIUS = _t_geometry()
# Plain-float copies for the renderer's per-frame loops.
_OUTLINE_LIST = [tuple(p) for p in T_OUTLINE.tolist()]
_BOXES_LIST = [(tuple(c.tolist()), tuple(h.tolist())) for c, h in _BOXES]
ANGLE_WEIGHT = 180.0 / math.pi  # goal_distance: one unit per degree of angle error


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Wrap to [-pi, pi)."""
    return (np.asarray(a) + math.pi) % (2 * math.pi) - math.pi


def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def t_signed_distance(points: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) from body-frame ``points`` (..., 2) to the T."""
    out = None
    for centre, half in _BOXES:
        q = np.abs(points - centre) - half
        d = np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(-1), 0.0)
        out = d if out is None else np.minimum(out, d)
    return out


def _contact_candidates(spacing: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Points on the T's outline (body frame) with outward normals where the pusher fits."""
    points, normals = [], []
    n = len(T_OUTLINE)
    for i in range(n):
        a, b = T_OUTLINE[i], T_OUTLINE[(i + 1) % n]
        edge = b - a
        length = float(np.linalg.norm(edge))
        outward = np.array([edge[1], -edge[0]]) / length  # clockwise outline: right-hand side
        for t in np.arange(4.0, length - 3.9, spacing) / length:
            points.append(a + t * edge)
            normals.append(outward)
    points, normals = np.array(points), np.array(normals)
    # Keep only contacts the disc can touch without hitting the other box (the inner corners).
    centres = points + normals * AGENT_RADIUS
    ok = t_signed_distance(centres) >= AGENT_RADIUS - 0.5
    return points[ok], normals[ok]


CONTACT_POINTS, CONTACT_NORMALS = _contact_candidates()


def push_contacts(
    state: np.ndarray, goal: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where the pusher can push the T from, and how well each push serves the goal.

    Each outline contact, pushed along its inward normal, would move the T by a twist
    (translation, rotation ∝ lever arm × normal / gyration²); its alignment is the cosine between
    that twist and the T's remaining pose error (position in units, angle in degrees). Returns
    ``approach`` (K, 2) where the pusher stands to push, ``inward`` (K, 2) the push directions,
    ``align`` (K,) in [-1, 1] and ``want`` (3,) the pose error. The expert picks among these;
    ``PushTEnv.approach_margin`` measures the pusher's distance to the best one.
    """
    com, theta = state[4:6], float(state[6])
    err_p = goal[4:6] - com
    err_a = float(wrap_angle(goal[6] - theta))
    rot = _rot(theta)
    points = com + CONTACT_POINTS @ rot.T  # (K, 2) world contact points
    inward = -CONTACT_NORMALS @ rot.T  # (K, 2) push directions
    approach = points - inward * (AGENT_RADIUS + 3.0)  # (K, 2) where the pusher starts
    lever = points - com
    torque = lever[:, 0] * inward[:, 1] - lever[:, 1] * inward[:, 0]
    twist = np.column_stack([inward, ANGLE_WEIGHT * torque / RHO2])  # (K, 3)
    want = np.array([*err_p, ANGLE_WEIGHT * err_a])
    align = twist @ want / (np.linalg.norm(twist, axis=1) * np.linalg.norm(want))
    return approach, inward, align, want


class PushTEnv(ReverieEnv):
    """Push a T to a goal pose with a disc pusher (pymunk contacts, top-down, no gravity).

    Success: the pusher and the T's centre of mass are each within 20 units of the goal's, and
    the T's angle is within 20° of the goal's (angles wrapped). ``goal_distance`` is the T's
    position error plus the pusher's position error (units) plus the T's angle error (degrees).
    Gravity is not modelled (a level table seen from above); the table acts on the T through
    Coulomb friction (``friction``) and viscous damping (``damping``).
    """

    short_name = "pusht"
    keymap = KEYMAP_Y_DOWN
    gym_id = "reverie/PushT-v0"
    success_rule = (
        "pusher and T within 20 units of the goal positions and T angle within 20° "
        "(world 512 units)"
    )
    published_rule = PUBLISHED_RULE
    #: ``success_margin`` entries that measure the pusher itself (the oracle's ``reach`` cost).
    pusher_margins = (0,)
    max_episode_steps = 200
    proprio_names = ("agent_x", "agent_y", "agent_vx", "agent_vy")
    physics_factors = {
        "mass": Factor(1.0, 0.5, 2.0, "mass of the T (the pusher's is 1): heavier slows pushes"),
        "friction": Factor(
            800.0, 300.0, 1600.0, "table Coulomb friction: T deceleration, units/s²"
        ),
        "damping": Factor(2.0, 0.0, 8.0, "table viscous damping of the T's velocity, 1/s"),
        "contact_friction": Factor(0.5, 0.1, 1.0, "friction coefficient pusher–T and T–wall"),
        "gain": Factor(1.0, 0.5, 1.5, "actuator gain: pusher speed per unit action"),
    }
    visual_factors = {
        "block_hue": Factor(0.0, -0.5, 0.5, "hue shift of the T (turns; 0 = slate blue)"),
        # held_out: wider limits only the visual-unseen shift preset may use (see Factor).
        "lighting": Factor(1.0, 0.6, 1.3, "global brightness multiplier", held_out=(0.4, 1.6)),
        "camera_x": Factor(0.0, -24.0, 24.0, "camera shift along x, in world units", (-48, 48)),
        "camera_y": Factor(0.0, -24.0, 24.0, "camera shift along y, in world units", (-48, 48)),
        "camera_angle": Factor(
            0.0, -5.0, 5.0, "camera roll about the table centre, degrees", held_out=(-10, 10)
        ),
        "floor_tint": Factor(
            0.0, 0.0, 0.0, "table blended toward green (never randomised)", held_out=(0.0, 1.0)
        ),
    }

    def __init__(self, size: int = 64, **kwargs) -> None:
        super().__init__(size=size, **kwargs)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._state = np.array([128.0, 128.0, 0, 0, 256.0, 256.0, 0, 0, 0, 0])
        self._space = pymunk.Space()
        thick = 20.0  # walls are thick segments just outside the workspace (no tunnelling)
        for a, b in (
            ((0, -thick), (WORLD, -thick)),
            ((WORLD + thick, 0), (WORLD + thick, WORLD)),
            ((0, WORLD + thick), (WORLD, WORLD + thick)),
            ((-thick, 0), (-thick, WORLD)),
        ):
            self._space.add(pymunk.Segment(self._space.static_body, a, b, thick))
        self._shape_id_base = _cp.cpSpaceGetShapeIDCounter(self._space._space)
        self._agent = pymunk.Body(AGENT_MASS, math.inf)  # a disc that never spins
        self._block = pymunk.Body(1.0, RHO2)
        self._space.add(self._agent, self._block)
        self._shapes = (
            pymunk.Circle(self._agent, AGENT_RADIUS),
            pymunk.Poly(self._block, BAR.tolist()),
            pymunk.Poly(self._block, STEM.tolist()),
        )
        self._expert_choice = -1  # contact the expert chose last step (-1: none)
        self._colours: dict[str, np.ndarray] | None = None  # RGB float32 (3,) by part
        self._centres = np.arange(size, dtype=np.float32) + 0.5  # pixel centres, pixel units
        self._background: np.ndarray | None = None
        self._camera = np.eye(3)  # world -> pixel affine map (3, 3), set by _apply_factors
        self._pixel_to_world = np.eye(3)
        self._apply_factors()

    @classmethod
    def proprio_indices(cls, state_dim: int) -> tuple[int, ...]:
        return (0, 1, 2, 3)  # [agent_x, agent_y, agent_vx, agent_vy, ...]

    # ----------------------------------------------------------------------------- simulation
    def _load_state(self) -> tuple[pymunk.Body, pymunk.Body]:
        """Put the bodies at ``self._state`` with no contact or solver memory left over.

        Chipmunk keeps warm-start impulses in its contact cache, position-correction velocities
        in each body and a history-shaped spatial index. Re-adding the shapes (with the same ids)
        clears the first and last, a zero-length position update clears the second, so each
        control step depends on the state vector alone.
        """
        space, agent, block, s = self._space, self._agent, self._block, self._state
        if self._shapes[0].space is not None:
            space.remove(*self._shapes)
        agent.position = (s[0], s[1])
        agent.velocity = (s[2], s[3])
        block.angle = s[6]
        block.position = (s[4], s[5])
        block.velocity = (s[7], s[8])
        block.angular_velocity = s[9]
        pymunk.Body.update_position(agent, 0.0)
        pymunk.Body.update_position(block, 0.0)
        _cp.cpSpaceSetShapeIDCounter(space._space, self._shape_id_base)
        space.add(*self._shapes)
        return agent, block

    def _step_world(self, action: np.ndarray) -> None:
        agent, block = self._load_state()
        f = self.factors
        cx, cy = (float(a) * VMAX * f["gain"] for a in action)
        mass, inertia = f["mass"], f["mass"] * RHO2
        decay = math.exp(-f["damping"] * DT)
        lin_fric = f["friction"] * DT  # speed the table removes per substep
        ang_fric = f["friction"] * FRICTION_RADIUS / RHO2 * DT
        servo = AGENT_MASS * SERVO
        for _ in range(SUBSTEPS):
            # Step 1. pusher servo: a force toward the commanded velocity.
            avx, avy = agent.velocity
            agent.force = (servo * (cx - avx), servo * (cy - avy))
            # Step 2. table: damping then Coulomb friction, never reversing the motion (a force
            # that brings the velocity to its reduced value within this substep).
            bvx, bvy = block.velocity
            speed = math.hypot(bvx, bvy)
            if speed > 0.0:
                k = (max(0.0, speed * decay - lin_fric) / speed - 1.0) * mass / DT
                block.force = (k * bvx, k * bvy)
            w = block.angular_velocity
            if w != 0.0:
                block.torque = (
                    (max(0.0, abs(w) * decay - ang_fric) / abs(w) - 1.0) * w * inertia / DT
                )
            # Step 3. contacts and integration.
            self._space.step(DT)
        (ax, ay), (avx, avy) = agent.position, agent.velocity
        (bx, by), (bvx, bvy) = block.position, block.velocity
        angle = float(wrap_angle(block.angle))
        self._state = np.array([ax, ay, avx, avy, bx, by, angle, bvx, bvy, block.angular_velocity])

    def _apply_factors(self) -> None:
        f = self.factors
        self._block.mass = f["mass"]
        self._block.moment = f["mass"] * RHO2
        # Chipmunk multiplies the two shapes' coefficients: with the T at 1, pusher–T and T–wall
        # contacts get exactly ``contact_friction``.
        self._shapes[0].friction = f["contact_friction"]
        self._shapes[1].friction = self._shapes[2].friction = 1.0
        for wall in self._space.static_body.shapes:
            wall.friction = f["contact_friction"]
        # Camera: shift, then roll about the table centre, then scale to pixel units (pixel i spans
        # [i, i + 1), so world 0 is the image's left edge when the camera is still).
        self._scale = self.size / WORLD
        centre = WORLD / 2
        rot = _rot(-math.radians(f["camera_angle"])) * self._scale
        offset = centre * self._scale - rot @ [centre + f["camera_x"], centre + f["camera_y"]]
        self._camera = np.vstack([np.column_stack([rot, offset]), [0.0, 0.0, 1.0]])
        self._pixel_to_world = np.linalg.inv(self._camera)
        self._colours, self._background = None, None

    def get_state(self) -> np.ndarray:
        return self._state.copy()

    def set_state(self, state: np.ndarray) -> None:
        state = np.asarray(state, np.float64)
        if state.shape != (10,) or not np.all(np.isfinite(state)):
            raise ValueError(
                "pusht state must be 10 finite numbers [agent_x, agent_y, agent_vx, agent_vy, "
                f"block_x, block_y, block_angle, block_vx, block_vy, block_angvel], got {state}"
            )
        self._state = state.copy()

    # ---------------------------------------------------------------------------- sampling
    @staticmethod
    def _free_agent_position(rng: np.random.Generator, block: np.ndarray) -> np.ndarray:
        """A pusher position inside the walls and clear of the T at pose ``block`` (x, y, angle)."""
        to_body = _rot(block[2])  # row vectors: (p - c) @ R = R^T (p - c)
        while True:
            p = rng.uniform(AGENT_RADIUS + 5, WORLD - AGENT_RADIUS - 5, size=2)
            if t_signed_distance((p - block[:2]) @ to_body) > AGENT_RADIUS + 10:
                return p

    def _random_pose(self, rng: np.random.Generator, margin: float) -> np.ndarray:
        block = np.array([*rng.uniform(margin, WORLD - margin, size=2), rng.uniform(-np.pi, np.pi)])
        agent = self._free_agent_position(rng, block)
        return np.array([*agent, 0.0, 0.0, *block, 0.0, 0.0, 0.0])

    def _reset_world(self, rng: np.random.Generator) -> None:
        self._state = self._random_pose(rng, START_MARGIN)
        self._expert_choice = -1

    def _sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        """A resting goal pose well inside the walls, not already met by the current state."""
        while True:
            goal = self._random_pose(rng, GOAL_MARGIN)
            if self.goal_distance(self._state, goal) > 2 * (POS_TOL + ANGLE_TOL_DEG):
                return goal

    # ------------------------------------------------------------------------- perturbations
    @classmethod
    def perturbations(cls) -> tuple[str, ...]:
        return ("teleport", "delete")  # top-down table: no gravity

    def _perturb(
        self, kind: str, rng: np.random.Generator, target: tuple[float, float] | None
    ) -> tuple[str, bool | None]:
        state = self.get_state()  # [agent x, y, vx, vy, T x, y, angle, vx, vy, omega]
        if kind == "teleport":
            pose = self._random_pose(rng, 100.0)
            state[4:7], state[7:10] = pose[4:7], 0.0
            self.set_state(state)
            return "T teleported", None
        state[4:6], state[7:10] = -10 * WORLD, 0.0
        self.set_state(state)
        return "T deleted (parked outside the walls)", None

    # ---------------------------------------------------------------------------- goal tests
    def goal_distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        # The success test also needs the pusher at its goal, so the progress measure counts it.
        pos = math.hypot(state[4] - goal[4], state[5] - goal[5])
        agent = math.hypot(state[0] - goal[0], state[1] - goal[1])
        return pos + agent + ANGLE_WEIGHT * abs(float(wrap_angle(state[6] - goal[6])))

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return bool(
            math.hypot(state[0] - goal[0], state[1] - goal[1]) <= POS_TOL
            and math.hypot(state[4] - goal[4], state[5] - goal[5]) <= POS_TOL
            and abs(float(wrap_angle(state[6] - goal[6]))) <= math.radians(ANGLE_TOL_DEG)
        )

    def success_margin(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """[pusher error / 20, T position error / 20, T angle error / 20°]."""
        return np.array(
            [
                math.hypot(state[0] - goal[0], state[1] - goal[1]) / POS_TOL,
                math.hypot(state[4] - goal[4], state[5] - goal[5]) / POS_TOL,
                math.degrees(abs(float(wrap_angle(state[6] - goal[6])))) / ANGLE_TOL_DEG,
            ]
        )

    def approach_margin(self, state: np.ndarray, goal: np.ndarray) -> float:
        """How far the pusher is from pushing, over the position tolerance: its distance to the
        approach spot of the contact whose push best moves the T toward its goal pose (the
        expert's twist alignment, ``push_contacts``; spots the walls block are skipped); 0 once
        the T is placed. The oracle's ``reach`` cost adds it: the other costs are flat until the
        pusher touches the T, so without it the search has nothing to follow to the T."""
        state, goal = np.asarray(state, np.float64), np.asarray(goal, np.float64)
        err = self.success_margin(state, goal)
        if err[1] <= 1.0 and err[2] <= 1.0:
            return 0.0
        approach, _, align, _ = push_contacts(state, goal)
        inside = np.all((approach > AGENT_RADIUS + 2) & (approach < WORLD - AGENT_RADIUS - 2), 1)
        i = int(np.argmax(np.where(inside, align, -np.inf)))
        return float(np.hypot(*(state[:2] - approach[i]))) / POS_TOL

    @staticmethod
    def published_success(state: np.ndarray, goal: np.ndarray) -> bool:
        """The published protocol's test: ‖(agent_xy, block_xy) − goal's‖₂ < 20 (one norm over
        the 4 numbers) and wrapped |Δθ| < 20°. Stricter than ``is_success``."""
        state, goal = np.asarray(state, np.float64), np.asarray(goal, np.float64)
        pos = float(np.linalg.norm(state[[0, 1, 4, 5]] - goal[[0, 1, 4, 5]]))
        angle = abs(float(wrap_angle(state[6] - goal[6])))
        return pos < PUBLISHED_POS_TOL and angle < math.radians(PUBLISHED_ANGLE_TOL_DEG)

    @staticmethod
    def goal_difficulty(expert_states: np.ndarray) -> dict[str, float]:
        """How far one pair's goal is: ``expert_states`` (T+1, 10), start first, goal last ->
        block displacement (units), block rotation (degrees, wrapped), pusher travel (units:
        the length of the expert's pusher path over the T goal steps) and pusher displacement
        (units, start to goal in a straight line: issue 12's "pusher travel median 257")."""
        s = np.asarray(expert_states, np.float64)
        start, goal = s[0], s[-1]
        return {
            "block_displacement": float(np.hypot(*(goal[4:6] - start[4:6]))),
            "block_rotation_deg": math.degrees(abs(float(wrap_angle(goal[6] - start[6])))),
            "pusher_travel": float(np.linalg.norm(np.diff(s[:, :2], axis=0), axis=1).sum()),
            "pusher_displacement": float(np.hypot(*(goal[:2] - start[:2]))),
        }

    # ---------------------------------------------------------------------------- expert
    def expert_action(self, rng: np.random.Generator) -> np.ndarray:
        """Push from the contact whose push best matches the wanted motion of the T.

        Each outline point, pushed along its inward normal, would move the T by a twist
        (translation, rotation ∝ lever arm × normal / gyration²). The expert scores every point by
        how well that twist aligns with the remaining pose error, minus the walk to it (around the
        T when the T is in the way), walks there and pushes, slowing near the goal. Once the T is
        placed it parks the pusher at the goal's pusher position. Its only memory is a small bonus
        for the contact it chose last step (against dithering), so it can take over mid-episode.
        """
        assert self.goal is not None, "call reset() before expert_action()"
        s, g = self._state, self.goal
        agent, com, theta = s[:2], s[4:6], float(s[6])
        err_p = g[4:6] - com
        err_a = float(wrap_angle(g[6] - theta))
        if math.hypot(*err_p) < 0.6 * POS_TOL and abs(err_a) < math.radians(0.6 * ANGLE_TOL_DEG):
            self._expert_choice = -1
            action = self._walk_to(agent, g[:2], com, theta)
        else:
            rot = _rot(theta)
            approach, inward, align, want = push_contacts(s, g)
            travel = self._walk_length(agent, approach, com, rot)
            inside = (approach > AGENT_RADIUS + 2) & (approach < WORLD - AGENT_RADIUS - 2)
            score = align - 0.003 * travel
            if 0 <= self._expert_choice < len(score):
                score[self._expert_choice] += 0.1
            score = np.where(np.all(inside, axis=1), score, -np.inf)
            i = self._expert_choice = int(np.argmax(score))
            offset = agent - approach[i]
            if np.linalg.norm(offset) < 8.0:
                # In place: push along the normal, steering back onto the push line.
                lateral = offset - (offset @ inward[i]) * inward[i]
                speed = float(np.clip(np.linalg.norm(want) / 60.0, 0.25, 1.0))
                action = inward[i] * speed - 0.1 * lateral
            else:
                action = self._walk_to(agent, approach[i], com, theta)
        action = action / max(self.factors["gain"], 1e-6) + rng.normal(0.0, 0.05, 2)
        norm = float(np.linalg.norm(action))
        if norm > 1.0:
            action = action / norm
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    @staticmethod
    def _walk_length(
        agent: np.ndarray, targets: np.ndarray, com: np.ndarray, rot: np.ndarray
    ) -> np.ndarray:
        """Rough walking distance to each of ``targets`` (K, 2): straight, or around the T."""
        t = np.linspace(0.15, 0.95, 8)[None, :, None]
        path = agent + t * (targets[:, None] - agent)  # (K, 8, 2)
        blocked = t_signed_distance((path - com) @ rot).min(1) < AGENT_RADIUS
        straight = np.linalg.norm(targets - agent, axis=1)
        r_a, r_t = np.linalg.norm(agent - com), np.linalg.norm(targets - com, axis=1)
        phi_a = math.atan2(agent[1] - com[1], agent[0] - com[0])
        phi_t = np.arctan2(targets[:, 1] - com[1], targets[:, 0] - com[0])
        around = ORBIT * np.abs(wrap_angle(phi_t - phi_a)) + abs(ORBIT - r_a) + np.abs(ORBIT - r_t)
        return np.where(blocked, np.maximum(around, straight), straight)

    @staticmethod
    def _walk_to(
        agent: np.ndarray, target: np.ndarray, com: np.ndarray, theta: float
    ) -> np.ndarray:
        """Unit-speed action toward ``target``, circling the T when the straight path crosses it."""
        path = agent + np.linspace(0.15, 1.0, 10)[:, None] * (target - agent)  # (10, 2)
        clear = t_signed_distance((path - com) @ _rot(theta)).min() > AGENT_RADIUS + 1.0
        if clear:
            delta = target - agent
            dist = float(np.linalg.norm(delta))
            return delta / max(dist, 1e-9) * min(1.0, dist / (VMAX * CONTROL_DT))
        # Orbit the T's centre toward the target's bearing, at a radius that clears the T.
        phi_a = math.atan2(agent[1] - com[1], agent[0] - com[0])
        phi_t = math.atan2(target[1] - com[1], target[0] - com[0])
        turn = math.copysign(0.6, float(wrap_angle(phi_t - phi_a)))
        waypoint = com + ORBIT * np.array([math.cos(phi_a + turn), math.sin(phi_a + turn)])
        waypoint = np.clip(waypoint, AGENT_RADIUS + 2, WORLD - AGENT_RADIUS - 2)
        delta = waypoint - agent
        return delta / max(float(np.linalg.norm(delta)), 1e-9)

    # ----------------------------------------------------------------------------- rendering
    def _palette(self) -> dict[str, np.ndarray]:
        if self._colours is None:
            f = self.factors
            hue = (0.61 + f["block_hue"]) % 1.0
            block = np.array(colorsys.hsv_to_rgb(hue, 0.45, 0.72)) * 255
            raw = {
                "outside": np.array([88.0, 94.0, 108.0]),
                "floor": np.array([236.0, 234.0, 226.0]) * (1 - f["floor_tint"])
                + np.array([150.0, 205.0, 150.0]) * f["floor_tint"],
                "block": block,
                "agent": np.array([226.0, 92.0, 58.0]),
            }
            self._colours = {
                k: np.clip(np.round(v * f["lighting"]), 0, 255).astype(np.float32)
                for k, v in raw.items()
            }
        return self._colours

    def _window(self, xs: list[float], ys: list[float]) -> tuple[int, int, int, int]:
        """Pixel window ``x0, x1, y0, y1`` covering pixel-unit points ``xs, ys`` plus a margin."""
        n = self.size
        x0, x1 = max(0, int(min(xs)) - 1), min(n, int(max(xs)) + 2)
        y0, y1 = max(0, int(min(ys)) - 1), min(n, int(max(ys)) + 2)
        return x0, max(x0, x1), y0, max(y0, y1)

    @staticmethod
    def _paint(img: np.ndarray, x0: int, y0: int, cover: np.ndarray, colour: np.ndarray) -> None:
        """Blend ``colour`` into ``img`` at (y0, x0) by ``cover`` (h, w): 0.5 minus the signed
        distance to the shape in pixels, clipped here to [0, 1]. That one-pixel ramp across the
        edge is the pixel's covered fraction for straight edges (analytic anti-aliasing)."""
        np.minimum(np.maximum(cover, 0.0, out=cover), 1.0, out=cover)
        h, w = cover.shape
        patch = img[y0 : y0 + h, x0 : x0 + w].astype(np.float32)  # (h, w, 3)
        patch += cover[..., None] * (colour - patch)
        img[y0 : y0 + h, x0 : x0 + w] = np.rint(patch, out=patch)

    def _static_layer(self) -> np.ndarray:
        """The table and what lies beyond its edge (visible when the camera moves); cached."""
        if self._background is None:
            colours = self._palette()
            img = np.empty((self.size, self.size, 3), np.uint8)
            img[:] = colours["outside"]
            # Pixel centres -> world (Hi, Wi), then the table square's distance in pixels.
            (ia, ib, ic), (id_, ie, if_) = self._pixel_to_world[:2].tolist()
            x = self._centres[None, :]
            y = self._centres[:, None]
            wx, wy = ia * x + ib * y + ic, id_ * x + ie * y + if_
            half = WORLD / 2
            d = np.maximum(np.abs(wx - half), np.abs(wy - half)) - half
            self._paint(img, 0, 0, (0.5 - d * self._scale).astype(np.float32), colours["floor"])
            self._background = img
        return self._background

    def _render(self) -> np.ndarray:
        img = self._static_layer().copy()
        colours = self._palette()
        (ca, cb, cc), (cd, ce, cf) = self._camera[:2].tolist()
        (ia, ib, ic), (id_, ie, if_) = self._pixel_to_world[:2].tolist()
        k = self._scale
        ax, ay, _, _, bx, by, angle = self._state[:7].tolist()
        cos, sin = math.cos(angle), math.sin(angle)
        # The T's pixel window, from its outline: body -> world -> pixels, in plain floats.
        px, py = [], []
        for ox, oy in _OUTLINE_LIST:
            wx, wy = bx + cos * ox - sin * oy, by + sin * ox + cos * oy
            px.append(ca * wx + cb * wy + cc)
            py.append(cd * wx + ce * wy + cf)
        x0, x1, y0, y1 = self._window(px, py)
        if x1 > x0 and y1 > y0:
            # Pixel centres -> body frame in pixel units, one affine map per coordinate:
            # body = k · R(-angle) · (pixel_to_world(p) - (bx, by)); each box's centre folded in.
            ux, uy = k * (cos * ia + sin * id_), k * (cos * ib + sin * ie)
            vx, vy = k * (cos * id_ - sin * ia), k * (cos * ie - sin * ib)
            uc = k * (cos * (ic - bx) + sin * (if_ - by))
            vc = k * (cos * (if_ - by) - sin * (ic - bx))
            x, y = self._centres[x0:x1], self._centres[y0:y1]
            cover = None
            for (cx, cy), (hx, hy) in _BOXES_LIST:
                # 0.5 - box distance = min(half + 0.5 - |du|, half + 0.5 - |dv|): sharp corners.
                du = np.add.outer(uy * y + (uc - k * cx), ux * x)  # (h, w)
                dv = np.add.outer(vy * y + (vc - k * cy), vx * x)
                inside = np.minimum(k * hx + 0.5 - np.abs(du), k * hy + 0.5 - np.abs(dv))
                cover = inside if cover is None else np.maximum(cover, inside, out=cover)
            self._paint(img, x0, y0, cover, colours["block"])
        # The pusher disc.
        cx, cy, r = ca * ax + cb * ay + cc, cd * ax + ce * ay + cf, AGENT_RADIUS * k
        x0, x1, y0, y1 = self._window([cx - r, cx + r], [cy - r, cy + r])
        if x1 > x0 and y1 > y0:
            dx, dy = self._centres[x0:x1] - cx, self._centres[y0:y1] - cy
            cover = (r + 0.5) - np.sqrt(np.add.outer(dy * dy, dx * dx))
            self._paint(img, x0, y0, cover, colours["agent"])
        return img
