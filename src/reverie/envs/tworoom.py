"""Two-Room: a point agent in two rooms joined by a door in the dividing wall (plain numpy).

The world is 224×224 units (the public Two-Room benchmark's pixel scale), rendered to ``size`` px.
A vertical wall at x = 112 splits it; a door opening in the wall joins the rooms. The action is a
2-D velocity command in [-1, 1]²; the agent's velocity follows it through first-order dynamics
shaped by the physics factors, and the wall stops it (axis-separated collision, four substeps).

Success: the agent's centre is within 16 units of the goal position (16 px at 224 px).

    from reverie.envs import make
    env = make("tworoom"); obs, info = env.reset(seed=0); obs, r, done, _, info = env.step([1, 0])
"""

from __future__ import annotations

import colorsys
import math

import gymnasium as gym
import numpy as np

from reverie.envs.base import KEYMAP_Y_DOWN, Factor, ReverieEnv

WORLD = 224.0  # world units per side (matches the public benchmark's 224 px)
WALL_X, WALL_HALF = 112.0, 7.0  # dividing wall centre and half-thickness
DOOR_Y, DOOR_HALF = 112.0, 24.0  # door centre and half-height
RADIUS = 9.0  # agent radius
VMAX = 8.0  # units per control step at full action and unit gain
SUCCESS_RADIUS = 16.0
SUBSTEPS = 4
PARKED = np.array([-10 * WORLD, -10 * WORLD, 0.0, 0.0])  # where "delete" keeps the agent: unseen


class TwoRoomEnv(ReverieEnv):
    """Point agent, two rooms, one door. State: ``[x, y, vx, vy]`` (units, units/step)."""

    short_name = "tworoom"
    gym_id = "reverie/TwoRoom-v0"
    success_rule = "agent within 16 units of the goal position (world 224 units; 16 px at 224 px)"
    max_episode_steps = 100
    keymap = KEYMAP_Y_DOWN
    physics_factors = {
        "mass": Factor(1.0, 0.5, 4.0, "inertia: velocity moves 1/mass of the way to the command"),
        "friction": Factor(0.0, 0.0, 0.5, "speed lost per step, as a fraction of VMAX"),
        "damping": Factor(0.0, 0.0, 0.5, "fraction of velocity lost per step"),
        "gravity": Factor(0.0, -1.0, 1.0, "downward drift per step, as a fraction of VMAX/4"),
        "gain": Factor(1.0, 0.3, 2.0, "actuator gain: commanded speed multiplier"),
    }
    # held_out: wider limits only the visual-unseen shift preset may use (Factor's docstring).
    visual_factors = {
        "agent_hue": Factor(0.0, 0.0, 1.0, "agent colour hue (0 = red)"),
        "lighting": Factor(1.0, 0.5, 1.3, "global brightness multiplier", held_out=(0.3, 1.6)),
        "camera_x": Factor(0.0, -8.0, 8.0, "camera shift along x, in world units", (-16, 16)),
        "camera_y": Factor(0.0, -8.0, 8.0, "camera shift along y, in world units", (-16, 16)),
        "floor_tint": Factor(
            0.0, 0.0, 0.0, "floor blended toward green (never randomised)", held_out=(0.0, 1.0)
        ),
    }

    def __init__(self, size: int = 64, **kwargs) -> None:
        super().__init__(size=size, **kwargs)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._state = np.array([56.0, 112.0, 0.0, 0.0])
        # Pixel-centre coordinates in world units, reused by every render.
        centres = (np.arange(size) + 0.5) * (WORLD / size)
        self._gx, self._gy = np.meshgrid(centres, centres)  # (Hi, Wi): x along columns
        self._background: np.ndarray | None = None
        self._waypoint_phase = 0
        self._parked = False  # "delete": the agent is kept outside the world after every step

    # ----------------------------------------------------------------------------- world rules
    @staticmethod
    def _blocked(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Does an agent centred at (x, y) overlap the wall outside the door? (vectorised)"""
        near_wall = np.abs(x - WALL_X) < WALL_HALF + RADIUS
        return near_wall & ~(np.abs(y - DOOR_Y) <= DOOR_HALF - RADIUS)

    @staticmethod
    def room(x: float) -> int:
        return 0 if x < WALL_X else 1

    def _free_position(self, rng: np.random.Generator) -> np.ndarray:
        while True:
            x, y = rng.uniform(RADIUS, WORLD - RADIUS, size=2)
            if abs(x - WALL_X) > WALL_HALF + RADIUS + 2:  # start clear of the wall
                return np.array([x, y])

    # --------------------------------------------------------------------------------- hooks
    def _apply_factors(self) -> None:
        self._background = None  # visual factors may have changed

    def _reset_world(self, rng: np.random.Generator) -> None:
        self._parked = False
        self._state = np.concatenate([self._free_position(rng), [0.0, 0.0]])

    def _step_world(self, action: np.ndarray) -> None:
        # Scalar twin of batch_step_world (3x faster for one agent); a test checks they agree.
        f = self.factors
        x, y, vx, vy = (float(v) for v in self._state)
        ax, ay = (min(1.0, max(-1.0, float(a))) * VMAX * f["gain"] for a in action)
        alpha = min(1.0, 1.0 / f["mass"])
        vx, vy = (
            (vx + (ax - vx) * alpha) * (1.0 - f["damping"]),
            (vy + (ay - vy) * alpha) * (1.0 - f["damping"]),
        )
        speed = math.hypot(vx, vy)
        if speed > 0:
            keep = max(0.0, speed - f["friction"] * VMAX) / max(speed, 1e-12)
            vx, vy = vx * keep, vy * keep
        vy += f["gravity"] * VMAX / 4
        for _ in range(SUBSTEPS):
            nx = min(max(x + vx / SUBSTEPS, RADIUS), WORLD - RADIUS)
            if self._blocked_xy(nx, y):
                vx = 0.0
            else:
                x = nx
            ny = min(max(y + vy / SUBSTEPS, RADIUS), WORLD - RADIUS)
            if self._blocked_xy(x, ny):
                vy = 0.0
            else:
                y = ny
        # A deleted agent cannot be removed from this simulator: it stays parked out of view.
        self._state = PARKED.copy() if self._parked else np.array([x, y, vx, vy])

    @staticmethod
    def _blocked_xy(x: float, y: float) -> bool:
        return abs(x - WALL_X) < WALL_HALF + RADIUS and not abs(y - DOOR_Y) <= DOOR_HALF - RADIUS

    def batch_step_world(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """One control step for N states at once: (N, 4), (N, 2) -> (N, 4).

        The single-env step runs through this too, so a batched rollout (the oracle planner's)
        is exactly the env's physics.
        """
        f = self.factors
        pos = states[:, :2].copy()  # [N, 2]
        command = np.clip(actions, -1.0, 1.0) * VMAX * f["gain"]  # [N, 2]
        v = states[:, 2:].copy()
        v += (command - v) * min(1.0, 1.0 / f["mass"])
        v *= 1.0 - f["damping"]
        speed = np.hypot(v[:, 0], v[:, 1])[:, None]  # [N, 1]
        keep = np.maximum(0.0, speed - f["friction"] * VMAX) / np.maximum(speed, 1e-12)
        v = np.where(speed > 0, v * keep, v)
        v[:, 1] += f["gravity"] * VMAX / 4
        for _ in range(SUBSTEPS):
            for axis in (0, 1):
                moved = pos.copy()
                moved[:, axis] = np.clip(
                    pos[:, axis] + v[:, axis] / SUBSTEPS, RADIUS, WORLD - RADIUS
                )
                hit = self._blocked(moved[:, 0], moved[:, 1])
                v[:, axis] = np.where(hit, 0.0, v[:, axis])
                pos = np.where(hit[:, None], pos, moved)
        return np.concatenate([pos, v], axis=1)

    def batch_goal_distance(self, states: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return np.hypot(states[:, 0] - goal[0], states[:, 1] - goal[1])

    def get_state(self) -> np.ndarray:
        return self._state.copy()

    def set_state(self, state: np.ndarray) -> None:
        state = np.asarray(state, np.float64)
        if state.shape != (4,) or not np.all(np.isfinite(state)):
            raise ValueError(f"tworoom state must be 4 finite numbers [x, y, vx, vy], got {state}")
        self._state = state.copy()

    def _sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([self._free_position(rng), [0.0, 0.0]])

    # --------------------------------------------------------------------- play (perturb, goals)
    def _point_position(self, x: float, y: float) -> np.ndarray:
        """A clicked image point in [0, 1]² → the world position it shows (camera shift in)."""
        cx, cy = self.factors["camera_x"], self.factors["camera_y"]
        pos = np.clip(np.array([x, y]) * WORLD + [cx, cy], RADIUS, WORLD - RADIUS)
        if self._blocked_xy(*pos):
            raise ValueError("that spot is inside the wall: pick another")
        return pos

    def goal_from_point(self, x: float, y: float) -> np.ndarray:
        return np.array([*self._point_position(x, y), 0.0, 0.0])

    @classmethod
    def perturbations(cls) -> tuple[str, ...]:
        return ("teleport", "gravity", "delete")

    def _perturb(
        self, kind: str, rng: np.random.Generator, target: tuple[float, float] | None
    ) -> tuple[str, bool | None]:
        if kind == "teleport":
            if target is not None:
                pos = self._point_position(*target)
            else:  # far enough that the jump is plainly not physics
                here = self._state[:2]
                for _ in range(200):
                    pos = self._free_position(rng)
                    if np.hypot(*(pos - here)) >= 80.0:
                        break
                else:
                    pos = self._free_position(rng)
            self._parked = False
            self.set_state(np.array([pos[0], pos[1], 0.0, 0.0]))
            return f"agent teleported to ({pos[0]:.0f}, {pos[1]:.0f})", False
        self._parked = True
        self.set_state(PARKED)
        return "agent deleted (parked outside the world until teleport or reset)", True

    def goal_distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        return float(np.hypot(state[0] - goal[0], state[1] - goal[1]))

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return self.goal_distance(state, goal) <= SUCCESS_RADIUS

    def success_margin(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return np.array([self.goal_distance(state, goal) / SUCCESS_RADIUS])

    def expert_action(self, rng: np.random.Generator) -> np.ndarray:
        """Head for the goal; through the door (via a waypoint each side of it) if rooms differ."""
        assert self.goal is not None
        x, y = self._state[:2]
        gx, gy = self.goal[:2]
        target = np.array([gx, gy])
        if self.room(x) != self.room(gx):
            side = -1.0 if x < WALL_X else 1.0
            aligned = abs(y - DOOR_Y) < DOOR_HALF - RADIUS - 3
            near = abs(x - WALL_X) < WALL_HALF + RADIUS + 22
            # Line up with the door first, then cross to a point beyond the wall.
            target = (
                np.array([WALL_X - side * 30, DOOR_Y])
                if aligned and near
                else np.array([WALL_X + side * 18, DOOR_Y])
            )
        delta = target - np.array([x, y])
        action = delta / max(VMAX * self.factors["gain"], 1e-6)
        norm = float(np.linalg.norm(action))
        if norm > 1.0:
            action /= norm
        action = action + rng.normal(0.0, 0.1, 2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    # ----------------------------------------------------------------------------- rendering
    def _colours(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        light = self.factors["lighting"]
        agent = np.array(colorsys.hsv_to_rgb(self.factors["agent_hue"], 0.85, 0.95)) * 255
        floor = np.array([235.0, 232.0, 222.0]) * (1 - self.factors["floor_tint"])
        floor = floor + np.array([150.0, 205.0, 150.0]) * self.factors["floor_tint"]
        wall = np.array([60.0, 66.0, 80.0])
        return floor * light, wall * light, agent * light

    def _static_layer(self) -> np.ndarray:
        if self._background is None:
            floor, wall, _ = self._colours()
            gx = self._gx + self.factors["camera_x"]
            gy = self._gy + self.factors["camera_y"]
            in_wall = (np.abs(gx - WALL_X) < WALL_HALF) & (np.abs(gy - DOOR_Y) > DOOR_HALF)
            outside = (gx < 0) | (gx > WORLD) | (gy < 0) | (gy > WORLD)
            img = np.where((in_wall | outside)[..., None], wall, floor)
            self._background = img.astype(np.float32)
        return self._background

    def _render(self) -> np.ndarray:
        background = self._static_layer()
        _, _, agent = self._colours()
        x = self._state[0] - self.factors["camera_x"]
        y = self._state[1] - self.factors["camera_y"]
        px = WORLD / self.size
        # Anti-aliased disc: coverage ramps over one pixel at the rim.
        img = background.copy()
        # Only the pixels near the disc can change: draw inside its bounding box.
        c0, c1 = (int(max(0, np.floor((v - RADIUS - px) / px))) for v in (x, y))
        c2, c3 = (int(min(self.size, np.ceil((v + RADIUS + px) / px))) for v in (x, y))
        if c2 > c0 and c3 > c1:
            gx, gy = self._gx[c1:c3, c0:c2], self._gy[c1:c3, c0:c2]
            dist = np.sqrt((gx - x) ** 2 + (gy - y) ** 2)
            cover = np.clip((RADIUS - dist) / px + 0.5, 0.0, 1.0)[..., None]
            patch = img[c1:c3, c0:c2]
            img[c1:c3, c0:c2] = patch * (1.0 - cover) + agent.astype(np.float32) * cover
        return np.clip(img, 0, 255).astype(np.uint8)
