"""Reacher: a two-link planar arm seen from above (MuJoCo), driven by joint torques.

Like Gymnasium's Reacher, but the target is not drawn in the scene: the goal is a joint
configuration, given to an agent as the image of the arm in that configuration.

    from reverie.envs import make
    env = make("reacher")                       # or gym.make("reverie/Reacher-v0")
    obs, info = env.reset(seed=0)               # obs uint8 (64, 64, 3); info["goal"] = [q0 q1 0 0]
    obs, reward, success, _, info = env.step(env.expert_action(env.np_random))

State: ``[q0, q1, dq0, dq1]`` float64 (rad, rad/s); ``q0`` (shoulder) is unlimited and may wind
past ±π, ``q1`` (elbow) is limited to ±2.8 rad. Action: ``Box(-1, 1, (2,))`` torques, times the
motor gear (0.5 N·m) times the ``actuator_gain`` factor. One control step = 5 × 0.01 s = 0.05 s.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from reverie.envs.base import Factor
from reverie.envs.mujoco_base import MujocoEnv, hsv_rgba, visual_xml

ELBOW_LIMIT = 2.8  # rad; the elbow cannot fold through itself
SUCCESS_TOL = 0.05  # rad, per joint


def wrap_angle(x: np.ndarray) -> np.ndarray:
    """Map angles to [-π, π)."""
    return (np.asarray(x) + np.pi) % (2 * np.pi) - np.pi


def joint_error(q: np.ndarray, q_goal: np.ndarray) -> np.ndarray:
    """Signed per-joint error ``q_goal - q``: wrapped for the unlimited shoulder, plain for the
    limited elbow (the elbow cannot cross ±π, so the plain difference is the way it must travel;
    within the success tolerance both readings agree)."""
    err = np.asarray(q_goal, np.float64) - np.asarray(q, np.float64)
    return np.stack([wrap_angle(err[..., 0]), err[..., 1]], axis=-1)  # (..., 2): batches too


class ReacherEnv(MujocoEnv):
    """Two-link arm; reach a goal joint configuration shown as an image."""

    short_name: ClassVar[str] = "reacher"
    # Actions are joint torques: left/right turn the shoulder, up/down bend the elbow.
    keymap: ClassVar[dict[str, tuple[float, ...]] | None] = {
        "up": (0.0, 1.0),
        "down": (0.0, -1.0),
        "left": (1.0, 0.0),
        "right": (-1.0, 0.0),
    }
    gym_id: ClassVar[str] = "reverie/Reacher-v0"
    success_rule: ClassVar[str] = (
        f"both joint angles within {SUCCESS_TOL} rad of the goal configuration (angles wrapped)"
    )
    max_episode_steps: ClassVar[int] = 100
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}
    frame_skip: ClassVar[int] = 5
    camera_name: ClassVar[str] = "top"
    physics_factors: ClassVar[dict[str, Factor]] = {
        "mass_scale": Factor(1.0, 0.5, 2.0, "multiplier on both links' mass and inertia"),
        "damping": Factor(1.0, 0.5, 2.0, "multiplier on joint viscous damping (0.1 N·m·s/rad)"),
        "friction": Factor(0.0, 0.0, 0.05, "joint dry friction (frictionloss, N·m)"),
        "gravity": Factor(
            0.0, -1.5, 1.5, "in-plane gravity along +y (m/s²): the arena tilted; 0 = flat"
        ),
        "actuator_gain": Factor(1.0, 0.5, 1.5, "multiplier on motor torque per unit action"),
    }
    visual_factors: ClassVar[dict[str, Factor]] = {
        "arm_hue": Factor(0.6, 0.0, 1.0, "hue of the upper arm (forearm is offset by 0.5)"),
        "floor_brightness": Factor(0.85, 0.4, 1.0, "grey level of the floor"),
        "light": Factor(1.0, 0.4, 1.3, "multiplier on the overhead light's diffuse colour"),
        "ambient": Factor(0.3, 0.0, 0.5, "headlight ambient level"),
        "camera_dx": Factor(0.0, -0.02, 0.02, "camera offset along x (m)"),
        "camera_dy": Factor(0.0, -0.02, 0.02, "camera offset along y (m)"),
        "camera_dz": Factor(0.0, -0.04, 0.04, "camera offset along z (m; height 0.6)"),
    }

    def _setup(self) -> None:
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        m = self.model
        assert m.nq == 2 and m.nv == 2 and m.na == 0, "reacher state layout changed"
        self._links = [self._body_id(n) for n in ("link0", "link1")]
        self._arm_geoms = [
            [self._geom_id("link0")],
            [self._geom_id(n) for n in ("link1", "tip")],
        ]
        self._floor = self._geom_id("floor")

    def _build_xml(self) -> str:
        # Heavy links over a light armature so mass matters; damping sets ~5 rad/s top speed.
        return f"""
<mujoco model="reacher">
  <compiler angle="radian"/>
  <option timestep="0.01" integrator="implicitfast">
    <flag warmstart="disable"/>
  </option>
  {visual_xml(self.size, 0.3)}
  <default>
    <joint type="hinge" axis="0 0 1" damping="0.1" armature="0.02"/>
    <geom contype="0" conaffinity="0"/>
  </default>
  <worldbody>
    <light name="sun" pos="0 0 2" dir="0 0 -1" directional="true" diffuse="0.6 0.6 0.6"
           specular="0 0 0"/>
    <camera name="top" pos="0 0 0.6" fovy="45"/>
    <geom name="floor" type="plane" size="0.3 0.3 0.01" rgba="0.85 0.85 0.85 1"/>
    <geom name="base" type="cylinder" size="0.025 0.01" pos="0 0 0.01" rgba="0.2 0.2 0.2 1"/>
    <body name="link0" pos="0 0 0.03">
      <joint name="shoulder"/>
      <geom name="link0" type="capsule" fromto="0 0 0 0.1 0 0" size="0.014" mass="0.6"/>
      <body name="link1" pos="0.1 0 0">
        <joint name="elbow" range="-{ELBOW_LIMIT} {ELBOW_LIMIT}"/>
        <geom name="link1" type="capsule" fromto="0 0 0 0.1 0 0" size="0.011" mass="0.3"/>
        <geom name="tip" type="sphere" pos="0.11 0 0" size="0.018" mass="0.1"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="shoulder" joint="shoulder" gear="0.5" ctrlrange="-1 1"/>
    <motor name="elbow" joint="elbow" gear="0.5" ctrlrange="-1 1"/>
  </actuator>
</mujoco>"""

    # ------------------------------------------------------------------------------- factors
    def _apply_factors(self) -> None:
        f = self.factors
        for body in self._links:
            self._scale("body_mass", body, f["mass_scale"])
            self._scale("body_inertia", body, f["mass_scale"])
        self._scale("dof_damping", slice(None), f["damping"])
        self.model.dof_frictionloss[:] = f["friction"]
        self.model.opt.gravity[:] = [0.0, f["gravity"], self.nominal["gravity"][2]]
        self._scale("actuator_gear", slice(None), f["actuator_gain"])
        # Visuals: the forearm's hue is opposite the upper arm's so the two links stay apart.
        for k, geoms in enumerate(self._arm_geoms):
            for g in geoms:
                self.model.geom_rgba[g] = hsv_rgba(f["arm_hue"] + 0.5 * k)
        self.model.geom_rgba[self._floor, :3] = f["floor_brightness"]
        self._set_lighting(f["light"], f["ambient"])
        self._offset_camera(np.array([f["camera_dx"], f["camera_dy"], f["camera_dz"]]))
        self._refresh_constants()  # also runs mj_forward: camera and lights move now

    # ----------------------------------------------------------------------------------- world
    def _random_configuration(self, rng: np.random.Generator) -> np.ndarray:
        q = [rng.uniform(-np.pi, np.pi), rng.uniform(-ELBOW_LIMIT, ELBOW_LIMIT)]
        return np.array([*q, 0.0, 0.0])

    def _reset_world(self, rng: np.random.Generator) -> None:
        self.set_state(self._random_configuration(rng))

    def _step_world(self, action: np.ndarray) -> None:
        self._physics_step(action)

    def _perturb(
        self, kind: str, rng: np.random.Generator, target: tuple[float, float] | None
    ) -> tuple[str, bool | None]:
        if kind == "teleport":
            self.set_state(self._random_configuration(rng))
            return "arm teleported to a random configuration", None
        return super()._perturb(kind, rng, target)  # nothing to delete

    @classmethod
    def perturbations(cls) -> tuple[str, ...]:
        return ("teleport", *super().perturbations())

    def _sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        # Every configuration within the elbow limits is reachable: a random one, at rest.
        return self._random_configuration(rng)

    def goal_distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        """Norm of the per-joint angle error (rad); see ``joint_error``."""
        return float(np.linalg.norm(joint_error(state[:2], goal[:2])))

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        return bool(np.all(np.abs(joint_error(state[:2], goal[:2])) <= SUCCESS_TOL))

    def success_margin(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return np.abs(joint_error(state[:2], goal[:2])) / SUCCESS_TOL  # (2,) per joint

    def expert_action(self, rng: np.random.Generator) -> np.ndarray:
        """A joint-space PD controller toward ``self.goal`` (``rng`` unused: deterministic)."""
        assert self.goal is not None, "call reset() before expert_action()"
        err = joint_error(self.data.qpos, self.goal[:2])
        # Gains in units of the [-1, 1] action; kd damps the approach so it settles, not rings.
        action = 4.0 * err - 0.6 * self.data.qvel
        return np.clip(action, -1.0, 1.0).astype(np.float32)
