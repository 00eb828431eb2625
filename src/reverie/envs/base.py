"""The contract every Reverie environment keeps, and the machinery they share.

An environment is a Gymnasium env that renders ``uint8 (Hi, Wi, 3)`` pixels, exposes its full
physical state as a flat ``float64`` vector, can be put back into any state exactly, samples goals,
tests success on the true state, and has named *factors of variation* (physics and visuals) that can
be set or randomised at reset. Subclasses implement the handful of ``_``-prefixed hooks below.

    import gymnasium as gym, reverie.envs
    env = gym.make("reverie/TwoRoom-v0")
    obs, info = env.reset(seed=0)          # obs: uint8 (64, 64, 3); info["state"], info["goal"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

RANDOMIZE_CHOICES = ("none", "physics", "visual", "both")
#: Ways a person may change a world between two frames, against its physics (``reverie play``).
PERTURBATION_KINDS = ("teleport", "gravity", "delete")
#: Keys of ``ReverieEnv.keymap``.
KEY_NAMES = ("up", "down", "left", "right")
#: The keymap of a top-down world drawn with +y downward (Two-Room, Push-T).
KEYMAP_Y_DOWN = {"up": (0.0, -1.0), "down": (0.0, 1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0)}


@dataclass(frozen=True)
class Factor:
    """One factor of variation: its default value, the range randomisation draws from, and why.

    ``held_out`` (visual factors) are wider limits the renderer draws correctly but that neither
    randomisation nor a user's ``factors`` reach: only an env built with
    ``held_out_factors=True`` (the ``visual-unseen`` shift preset) accepts them, so a held-out
    look is never one a randomised model trained on.
    """

    default: float
    low: float
    high: float
    doc: str
    held_out: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not self.low <= self.default <= self.high:
            raise ValueError(f"factor default {self.default} outside [{self.low}, {self.high}]")
        if (
            self.held_out is not None
            and not self.held_out[0] <= self.low <= self.high <= (self.held_out[1])
        ):
            raise ValueError(
                f"held-out limits {self.held_out} must contain [{self.low}, {self.high}]"
            )

    def limits(self, held_out: bool = False) -> tuple[float, float]:
        """The range a value must lie in (the wider held-out one where allowed and defined)."""
        return self.held_out if held_out and self.held_out is not None else (self.low, self.high)


class ReverieEnv(gym.Env):
    """Base class of every Reverie environment (see the module docstring for the contract).

    Subclasses set the class attributes and implement the hooks:

    - ``_reset_world(rng)``: put the world in a random start state (after factors are applied).
    - ``_apply_factors()``: push ``self.factors`` into the simulator and renderer.
    - ``_step_world(action)``: advance the physics by one control step under a clipped action.
    - ``get_state() / set_state(state)``: the full physical state as a flat float64 vector.
    - ``_render()``: draw the current state as ``uint8 (size, size, 3)``.
    - ``_sample_goal(rng)``: a goal *state* (same layout as ``get_state()``) that is reachable.
    - ``goal_distance(state, goal)``: the env's progress measure (lower is closer; 0 at the goal).
    - ``is_success(state, goal)``: the documented success test on true states.
    - ``expert_action(rng)``: a scripted expert that makes progress toward ``self.goal``.

    For ``reverie play`` (which knows no env by name) an env may also set ``keymap`` and
    override ``perturbations()``, ``_perturb(kind, rng, target)`` and ``goal_from_point(x, y)``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    #: Short name used by the CLI (``tworoom``) and the Gymnasium id (``reverie/TwoRoom-v0``).
    short_name: ClassVar[str] = ""
    gym_id: ClassVar[str] = ""
    #: One-sentence success rule, shown by ``reverie envs`` and the README.
    success_rule: ClassVar[str] = ""
    #: Default episode length in control steps for collection.
    max_episode_steps: ClassVar[int] = 100
    #: Screen direction of each of ``KEY_NAMES`` as a raw action (measured by stepping the env);
    #: None: no keyboard play.
    keymap: ClassVar[dict[str, tuple[float, ...]] | None] = None
    physics_factors: ClassVar[dict[str, Factor]] = {}
    visual_factors: ClassVar[dict[str, Factor]] = {}
    #: What an agent senses of itself (proprioception), in ``proprio_indices`` order: the
    #: pusher's position and velocity. () where the whole state is the agent's own (Two-Room's
    #: disc, Reacher's joints): handing it to a model would hand it the answer.
    proprio_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        size: int = 64,
        factors: dict[str, float] | None = None,
        randomize: str = "none",
        render_mode: str = "rgb_array",
        held_out_factors: bool = False,
    ) -> None:
        if size < 16 or size > 512:
            raise ValueError(f"image size must be in [16, 512], got {size}")
        if randomize not in RANDOMIZE_CHOICES:
            raise ValueError(f"randomize must be one of {RANDOMIZE_CHOICES}, got {randomize!r}")
        self.size = size
        self.render_mode = render_mode
        self.randomize = randomize
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.held_out_factors = held_out_factors
        self._base_factors = self.validate_factors(factors or {}, held_out_factors)
        self.factors: dict[str, float] = dict(self._base_factors)
        self.goal: np.ndarray | None = None
        self._rng = np.random.default_rng()

    @classmethod
    def proprio_indices(cls, state_dim: int) -> tuple[int, ...]:
        """Where ``proprio_names`` sit in a state vector of ``state_dim`` entries (() if none)."""
        return ()

    # ----------------------------------------------------------------------------------- factors
    @classmethod
    def all_factors(cls) -> dict[str, Factor]:
        return {**cls.physics_factors, **cls.visual_factors}

    @classmethod
    def validate_factors(
        cls, factors: dict[str, float], held_out: bool = False
    ) -> dict[str, float]:
        """Defaults overridden by ``factors``; unknown names or out-of-range values raise
        (``held_out``: a factor's held-out limits, where it has them, replace its range)."""
        known = cls.all_factors()
        out = {k: f.default for k, f in known.items()}
        for name, value in factors.items():
            if name not in known:
                raise ValueError(
                    f"unknown factor {name!r} for {cls.short_name}; known: {', '.join(known)}"
                )
            low, high = known[name].limits(held_out)
            if not np.isfinite(value) or not low <= float(value) <= high:
                wide = known[name].held_out
                hint = (
                    f" (held-out looks up to {list(wide)} only through the visual-unseen shift)"
                    if wide is not None and not held_out and wide[0] <= value <= wide[1]
                    else ""
                )
                raise ValueError(f"factor {name}={value} outside its range [{low}, {high}]{hint}")
            out[name] = float(value)
        return out

    def _draw_factors(self, rng: np.random.Generator) -> dict[str, float]:
        factors = dict(self._base_factors)
        groups = {"physics": [self.physics_factors], "visual": [self.visual_factors]}
        groups["both"] = groups["physics"] + groups["visual"]
        for group in groups.get(self.randomize, []):
            for name, f in group.items():
                if f.high > f.low:  # a fixed factor (held-out looks only) draws nothing
                    factors[name] = float(rng.uniform(f.low, f.high))
        return factors

    def set_factors(self, factors: dict[str, float]) -> None:
        """Set factor values now (the physics-suite and sim-to-real code use this mid-episode)."""
        self.factors.update(
            self.validate_factors({**self.factors, **factors}, self.held_out_factors)
        )
        self._apply_factors()

    # ----------------------------------------------------------------------------- gym interface
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset; ``options`` may carry ``factors`` (dict), ``state`` and ``goal`` (vectors)."""
        super().reset(seed=seed)
        self._rng = self.np_random
        options = options or {}
        self.factors = self._draw_factors(self._rng)
        if "factors" in options:
            merged = {**self.factors, **options["factors"]}
            self.factors.update(self.validate_factors(merged, self.held_out_factors))
        self._apply_factors()
        self._reset_world(self._rng)
        if options.get("state") is not None:
            self.set_state(np.asarray(options["state"], np.float64))
        goal = options.get("goal")
        self.goal = (
            np.asarray(goal, np.float64) if goal is not None else self._sample_goal(self._rng)
        )
        return self._render(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, np.float64).reshape(self.action_space.shape)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains non-finite values: {action}")
        action = np.clip(action, self.action_space.low, self.action_space.high)
        self._step_world(action)
        info = self._info()
        return self._render(), -info["distance"], bool(info["success"]), False, info

    def render(self) -> np.ndarray:
        return self._render()

    def _info(self) -> dict[str, Any]:
        state = self.get_state()
        assert self.goal is not None, "call reset() before step()"
        return {
            "state": state,
            "goal": self.goal.copy(),
            "distance": float(self.goal_distance(state, self.goal)),
            "success": bool(self.is_success(state, self.goal)),
        }

    # ------------------------------------------------------------------------------ conveniences
    def set_goal(self, goal: np.ndarray) -> None:
        self.goal = np.asarray(goal, np.float64).copy()

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """Render ``state`` without disturbing the current one (goal images use this)."""
        saved = self.get_state()
        self.set_state(state)
        frame = self._render()
        self.set_state(saved)
        return frame

    def random_action(self, rng: np.random.Generator) -> np.ndarray:
        low, high = self.action_space.low, self.action_space.high
        return rng.uniform(low, high).astype(np.float32)

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        """A reachable goal state (same layout as ``get_state()``) from the env's own sampler."""
        return self._sample_goal(rng)

    def goal_from_point(self, x: float, y: float) -> np.ndarray | None:
        """The goal state a click at (x, y) in [0, 1]² of the image names; None: a point means
        nothing here (callers sample a goal instead). Raises ``ValueError`` for an impossible spot.
        """
        return None

    # ----------------------------------------------------------------------------- perturbations
    @classmethod
    def perturbations(cls) -> tuple[str, ...]:
        """The ``PERTURBATION_KINDS`` this env supports (gravity: any env with a gravity factor)."""
        return ("gravity",) if "gravity" in cls.all_factors() else ()

    def perturb(
        self, kind: str, rng: np.random.Generator, target: tuple[float, float] | None = None
    ) -> tuple[str, bool | None]:
        """Change the world now, against its physics; returns (description, hidden change).

        ``target`` is a clicked point in [0, 1]² (teleport there, where the env can). The second
        value is True when the env keeps something parked out of view after every step (until
        reset or teleport), False when such parking ends, None when unchanged. Raises
        ``ValueError`` (one line) for a kind the env does not support.
        """
        if kind not in PERTURBATION_KINDS:
            raise ValueError(
                f"unknown perturbation {kind!r}; known: {', '.join(PERTURBATION_KINDS)}"
            )
        if kind == "gravity":
            factor = self.all_factors().get("gravity")
            if factor is None:
                name = self.short_name
                raise ValueError(f"{name} is a top-down world: it has no gravity to flip")
            g = self.factors["gravity"]
            new = -g if g != 0 else min(1.0, factor.high)
            self.set_factors({"gravity": new})
            return f"gravity {g:+.2f} -> {new:+.2f}", None
        return self._perturb(kind, rng, target)

    def _perturb(
        self, kind: str, rng: np.random.Generator, target: tuple[float, float] | None
    ) -> tuple[str, bool | None]:
        """Hook: teleport or delete (``perturb`` handles gravity and unknown kinds)."""
        if kind == "delete":
            raise ValueError(f"{self.short_name} has no object to delete")
        raise ValueError(f"{self.short_name} has nothing to {kind}")

    # ------------------------------------------------------------------------ hooks to implement
    def _reset_world(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _apply_factors(self) -> None:
        raise NotImplementedError

    def _step_world(self, action: np.ndarray) -> None:
        raise NotImplementedError

    def get_state(self) -> np.ndarray:
        raise NotImplementedError

    def set_state(self, state: np.ndarray) -> None:
        raise NotImplementedError

    def _render(self) -> np.ndarray:
        raise NotImplementedError

    def _sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def goal_distance(self, state: np.ndarray, goal: np.ndarray) -> float:
        raise NotImplementedError

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> bool:
        raise NotImplementedError

    def success_margin(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Each error the success test bounds, over its tolerance (float64, one per condition):
        ``is_success`` holds when every entry is <= 1. The oracle's ``tolerance`` and ``margin``
        costs are built from it, so no error is drowned by another's units."""
        raise NotImplementedError

    def expert_action(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError
