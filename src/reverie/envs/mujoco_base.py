"""Shared machinery of the MuJoCo environments (Reacher, Tabletop): GL setup, state, factors.

MuJoCo binds its OpenGL backend when it is first imported, so this module picks a headless default
before importing it (subclasses get ids through ``_body_id`` & co. and never import mujoco first).
With ``MUJOCO_GL`` unset we use ``egl`` when ``libEGL`` is installed (Mesa's llvmpipe renders
without a GPU), else ``osmesa`` when ``libOSMesa`` is; if ``mujoco`` was already imported headless,
its GL context class is rebound to ours. A failed backend cannot be swapped inside one process
(PyOpenGL fixes its platform at first import), so a renderer that cannot be created raises a
message naming the fix (``MUJOCO_GL=egl``, or ``MUJOCO_GL=osmesa`` after ``apt-get install
libosmesa6``). ``LP_NUM_THREADS`` defaults to 0: single-threaded llvmpipe is faster at 64×64.

A subclass writes its scene as an MJCF string (``_build_xml``), keeps its nominal model values in
``self.nominal`` (captured once, so factors always scale from the XML values and never compound),
and gets for free:

- ``get_state()`` / ``set_state(state)``: ``qpos ⊕ qvel ⊕ act`` as one float64 vector; ``set_state``
  calls ``mj_forward`` so the next render and step see exactly that state. Scenes disable the
  solver's warm start so the next step depends on nothing but this vector (exact replays).
- ``_render()``: one ``mujoco.Renderer`` per env, made on first use; ``close()`` frees it.
- ``_physics_step(ctrl)``: ``frame_skip`` MuJoCo steps under one control.
- factor helpers: ``_scale``, ``_set_lighting``, ``_offset_camera``, ``_refresh_constants`` and
  ``hsv_rgba``.
"""

from __future__ import annotations

import colorsys
import ctypes.util
import importlib
import os
import sys
from typing import Any, ClassVar


def _probe_gl_backend() -> str:
    """``egl`` when libEGL is installed, else ``osmesa`` when libOSMesa is, else ``egl``."""
    if ctypes.util.find_library("EGL") is None and ctypes.util.find_library("OSMesa"):
        return "osmesa"
    return "egl"


_USER_GL = os.environ.get("MUJOCO_GL")
_MUJOCO_PREIMPORTED = "mujoco" in sys.modules
GL_BACKEND = _USER_GL or _probe_gl_backend()
os.environ.setdefault("MUJOCO_GL", GL_BACKEND)
# Mesa's llvmpipe splits each frame over threads; for 64×64 frames that costs more than it saves
# (measured 1.5× faster single-threaded) and one thread leaves the other cores to other workers.
os.environ.setdefault("LP_NUM_THREADS", "0")

import mujoco  # noqa: E402  (must follow the backend choice above)
import numpy as np  # noqa: E402

if _USER_GL is None and _MUJOCO_PREIMPORTED and not os.environ.get("DISPLAY"):
    # Something imported mujoco before us with MUJOCO_GL unset, so it bound GLFW, which needs a
    # display. PyOpenGL is not loaded until a context is made, so we can still bind ours.
    from mujoco.rendering.classic import gl_context as _gl_context

    _gl_context.GLContext = importlib.import_module(f"mujoco.{GL_BACKEND}").GLContext

from reverie.envs.base import ReverieEnv  # noqa: E402

# Model fields that factors modify; their XML values are kept to scale from.
NOMINAL_FIELDS = (
    "body_mass",
    "body_inertia",
    "geom_friction",
    "geom_rgba",
    "geom_size",
    "geom_rbound",
    "geom_aabb",
    "dof_damping",
    "actuator_gear",
    "actuator_gainprm",
    "light_diffuse",
    "cam_pos",
)

VISUAL_XML = """
  <visual>
    <quality shadowsize="0" offsamples="0" numslices="12" numstacks="8" numquads="1"/>
    <global offwidth="{size}" offheight="{size}"/>
    <headlight ambient="{ambient} {ambient} {ambient}" diffuse="0.2 0.2 0.2" specular="0 0 0"/>
  </visual>"""


def visual_xml(size: int, ambient: float) -> str:
    """The ``<visual>`` block every scene uses, made for fast software GL: no shadows, no
    multisampling, and coarse tessellation of round shapes (invisible at 64×64, ~1.5× faster)."""
    return VISUAL_XML.format(size=size, ambient=ambient)


def hsv_rgba(hue: float, saturation: float = 0.8, value: float = 0.9) -> np.ndarray:
    """An opaque RGBA colour from a hue in [0, 1] (colour factors are hues: one float each)."""
    return np.array([*colorsys.hsv_to_rgb(hue % 1.0, saturation, value), 1.0])


class MujocoEnv(ReverieEnv):
    """A ``ReverieEnv`` backed by one MuJoCo model and data; see the module docstring."""

    #: MuJoCo steps per control step.
    frame_skip: ClassVar[int] = 1
    #: Name of the camera ``_render`` draws from.
    camera_name: ClassVar[str] = "main"

    def __init__(
        self,
        size: int = 64,
        factors: dict[str, float] | None = None,
        randomize: str = "none",
        render_mode: str = "rgb_array",
    ) -> None:
        super().__init__(size=size, factors=factors, randomize=randomize, render_mode=render_mode)
        self.model = mujoco.MjModel.from_xml_string(self._build_xml())
        self.data = mujoco.MjData(self.model)
        self.nominal: dict[str, np.ndarray] = {
            f: getattr(self.model, f).copy() for f in NOMINAL_FIELDS
        }
        self.nominal["gravity"] = self.model.opt.gravity.copy()
        self._renderer: mujoco.Renderer | None = None
        self._setup()
        mujoco.mj_forward(self.model, self.data)
        self._apply_factors()

    # ------------------------------------------------------------------------------- subclass
    def _build_xml(self) -> str:
        """The MJCF scene as a string (uses ``self.size`` for the offscreen buffer)."""
        raise NotImplementedError

    def _setup(self) -> None:
        """Look up ids and set the action space (runs once, before the first ``_apply_factors``)."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- names
    def _id(self, kind: mujoco.mjtObj, name: str) -> int:
        """Model id of a named element; unknown names raise ValueError."""
        i = mujoco.mj_name2id(self.model, kind, name)
        if i < 0:
            raise ValueError(f"{self.short_name}: no {kind.name} named {name!r} in the scene")
        return i

    # Subclasses look names up through these, so they never import mujoco themselves (an
    # ``import mujoco`` above ours would bind the GL backend before it is chosen).
    def _body_id(self, name: str) -> int:
        return self._id(mujoco.mjtObj.mjOBJ_BODY, name)

    def _geom_id(self, name: str) -> int:
        return self._id(mujoco.mjtObj.mjOBJ_GEOM, name)

    def _joint_id(self, name: str) -> int:
        return self._id(mujoco.mjtObj.mjOBJ_JOINT, name)

    # ---------------------------------------------------------------------------------- state
    @property
    def state_dim(self) -> int:
        return self.model.nq + self.model.nv + self.model.na

    def get_state(self) -> np.ndarray:
        d = self.data
        return np.concatenate([d.qpos, d.qvel, d.act]).astype(np.float64)

    def set_state(self, state: np.ndarray) -> None:
        state = np.asarray(state, np.float64).reshape(-1)
        if state.shape[0] != self.state_dim or not np.all(np.isfinite(state)):
            raise ValueError(
                f"{self.short_name} state must be {self.state_dim} finite floats "
                f"(qpos {self.model.nq} + qvel {self.model.nv} + act {self.model.na}), "
                f"got shape {state.shape}"
            )
        m, d = self.model, self.data
        d.qpos[:] = state[: m.nq]
        d.qvel[:] = state[m.nq : m.nq + m.nv]
        d.act[:] = state[m.nq + m.nv :]
        mujoco.mj_forward(m, d)

    def _physics_step(self, ctrl: np.ndarray) -> None:
        self.data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        # mj_step leaves positions, contacts and cameras from *before* its last integration; a
        # forward pass makes the frame show the state we report (and match ``set_state``).
        mujoco.mj_forward(self.model, self.data)

    # ------------------------------------------------------------------------------ rendering
    def _render(self) -> np.ndarray:
        if self._renderer is None:
            try:
                self._renderer = mujoco.Renderer(self.model, self.size, self.size)
            except Exception as err:  # the GL failure types differ per backend
                raise RuntimeError(
                    f"cannot create a MuJoCo renderer with MUJOCO_GL={GL_BACKEND!r} ({err}); "
                    "set MUJOCO_GL=egl, or MUJOCO_GL=osmesa after `apt-get install libosmesa6`, "
                    "before importing reverie"
                ) from err
        self._renderer.update_scene(self.data, camera=self.camera_name)
        # uint8 (Hi, Wi, 3): Renderer returns a fresh contiguous array each call.
        return np.ascontiguousarray(self._renderer.render())

    def close(self) -> None:
        """Free the renderer's GL context (the env still steps; rendering makes a new one)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # -------------------------------------------------------------------------- factor helpers
    def _scale(self, field: str, index: Any, scale: float) -> None:
        """``model.<field>[index] = nominal[index] * scale`` (never compounds across calls)."""
        getattr(self.model, field)[index] = self.nominal[field][index] * scale

    def _set_lighting(self, diffuse_scale: float, ambient: float) -> None:
        """Scale every light's diffuse colour and set the headlight's ambient level."""
        self.model.light_diffuse[:] = np.clip(self.nominal["light_diffuse"] * diffuse_scale, 0, 1)
        self.model.vis.headlight.ambient[:] = ambient

    def _offset_camera(self, offset: np.ndarray) -> None:
        """Move the render camera by ``offset`` (m) from its XML position (camera jitter)."""
        cam = self._id(mujoco.mjtObj.mjOBJ_CAMERA, self.camera_name)
        self.model.cam_pos[cam] = self.nominal["cam_pos"][cam] + offset

    def _refresh_constants(self) -> None:
        """Recompute model constants after mass/inertia edits, keeping the current state.

        ``mj_setConst`` recomputes the solver's inverse weights from the new masses but uses
        ``data`` as scratch at ``qpos0``, so the state is saved and put back.
        """
        state = self.get_state()
        mujoco.mj_setConst(self.model, self.data)
        self.set_state(state)
