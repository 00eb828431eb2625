"""One person's play session: their own simulator, the shared (read-only) model, JSON in and out.

Plain Python, no networking: ``server.py`` feeds each WebSocket text message to
``PlaySession.handle`` and sends back every reply it yields, so tests drive the whole protocol
without a socket:

    shared = load_play_model("runs/tworoom")             # world model + decoder, loaded once
    session = PlaySession(shared)
    session.hello()                                      # {"type": "hello", ...}
    for reply in session.handle('{"type": "action", "keys": ["right"]}'):
        ...                                              # {"type": "frame", "real": ..., ...}

Messages in (JSON objects with a "type"):
  action   {"action": [a0, a1]} (raw env action) or {"keys": ["up", "left"]} → one model step
  mode     {"mode": "live" | "dream"}: dream switches the simulator off; the model rolls on alone
  resync   the dream restarts from the last real embeddings
  perturb  {"kind": "teleport" | "gravity" | "delete", "x"?: 0..1, "y"?: 0..1}, then one step
  plan     {"goal": {"x": 0..1, "y": 0..1}} or {"goal_image": "random"}: CEM in latent space,
           the imagined trajectory (decoded), then its execution in the simulator, streamed
  reset    {"seed"?: int}
  ping     {"t"?: any} → {"type": "pong", "t": ...}
Replies: ``hello``, ``frame`` (images, surprise, true state, server_ms), ``plan``, ``plan_done``,
``pong``, ``error``. The last reply to each message carries ``"final": true`` (the page keeps one
request in flight). Images are base64 of raw RGB bytes (``image_size``² × 3): at 64 px that is
~25 µs to encode against ~0.3 ms for PNG, and the page draws it with one ``putImageData``.

Surprise is the latent prediction error of the step just taken: the mean over D of
(predict(last k real embeddings, action) − encode(new real frame))². Perturbations change the world
between two frames in ways its physics cannot, so the error spikes.

Perturbations per env (``PERTURBATIONS``):
  tworoom   teleport the agent (to the clicked spot, else a random free spot ≥ 80 units away);
            gravity (0 → 1, else flip the sign); delete: the simulator cannot remove the agent, so
            it is parked outside the world after every step (approximation) until teleport/reset
  tabletop  teleport the first visible object above a random table spot; gravity flip; delete:
            ``hide_object`` (parked on the floor out of view)
  pusht     teleport the T; delete: park the T outside the walls; no gravity (top-down table)
  reacher   teleport: a random joint configuration; gravity toggle/flip (the arena tilts)
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange, repeat

from reverie.io import ReverieError

log = logging.getLogger("reverie.viewer")

MODES = ("live", "dream")
PERTURBATIONS = ("teleport", "gravity", "delete")
KEY_NAMES = ("up", "down", "left", "right")
# Screen direction of each key as a raw 2-D action, per env (measured by stepping each env:
# Two-Room and Push-T draw +y downward; the Tabletop camera looks along +y, so +y is up on screen).
_SCREEN_DOWN_Y = {"up": (0.0, -1.0), "down": (0.0, 1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0)}
KEYMAPS: dict[str, dict[str, tuple[float, float]]] = {
    "tworoom": _SCREEN_DOWN_Y,
    "pusht": _SCREEN_DOWN_Y,
    "tabletop": {"up": (0.0, 1.0), "down": (0.0, -1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0)},
    # Reacher's actions are joint torques: left/right turn the shoulder, up/down bend the elbow.
    "reacher": {"up": (0.0, 1.0), "down": (0.0, -1.0), "left": (1.0, 0.0), "right": (-1.0, 0.0)},
}


@dataclass(frozen=True)
class SessionConfig:
    """Per-session knobs (shared by every connection of one server)."""

    pred_horizon: int = 3
    """Future frames predicted (and decoded) at every step, assuming the action is held."""
    plan_samples: int = 100
    """CEM candidates per iteration (smaller than evaluation's 300, for interactivity)."""
    plan_iterations: int = 10
    """CEM refits per replan."""
    plan_elites: int = 10
    """CEM elites."""
    plan_horizon: int = 5
    """Planned model steps per replan (the imagined trajectory's length)."""
    plan_execute: int = 2
    """Planned model steps executed before replanning."""
    plan_max_steps: int = 40
    """Model steps a plan request may execute before giving up."""
    max_message_bytes: int = 65536
    """Larger incoming messages get an error reply (and are not parsed)."""
    seed: int = 0
    """Seed of the first reset and of the session's random choices."""

    def __post_init__(self) -> None:
        for name in (
            "plan_samples",
            "plan_iterations",
            "plan_horizon",
            "plan_execute",
            "plan_max_steps",
            "max_message_bytes",
        ):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be >= 1, got {getattr(self, name)}")
        if self.pred_horizon < 0:
            raise ValueError(f"--pred-horizon must be >= 0, got {self.pred_horizon}")
        if not 2 <= self.plan_elites <= self.plan_samples:
            raise ValueError(
                f"--plan-elites must be in [2, plan_samples={self.plan_samples}], got "
                f"{self.plan_elites}"
            )
        if self.plan_execute > self.plan_horizon:
            raise ValueError("--plan-execute must be <= --plan-horizon")


# ------------------------------------------------------------------------------ shared model
@dataclass
class PlayModel:
    """What every session shares, read-only: the world model, its decoder, and their metadata."""

    model: Any  # WorldModel, eval mode
    decoder: Any  # Decoder, eval mode
    meta: dict[str, Any]  # the checkpoint's config.json
    decoder_info: dict[str, Any]  # decoder.json
    env_name: str  # the env sessions play in
    checkpoint: Path


def load_play_model(checkpoint: str | Path, env: str | None = None) -> PlayModel:
    """Load and check a checkpoint, its decoder and the env to play in (one-line errors)."""
    from reverie.checkpoint import load_checkpoint
    from reverie.envs import env_class, resolve
    from reverie.models.decoder import load_decoder

    checkpoint = Path(checkpoint)
    model, meta = load_checkpoint(checkpoint)
    model.requires_grad_(False)
    decoder, decoder_info = load_decoder(checkpoint)
    if decoder.config.embed_dim != model.embed_dim:
        raise ReverieError(
            f"decoder in {checkpoint} decodes {decoder.config.embed_dim}-d embeddings, the model "
            f"makes {model.embed_dim}-d ones: re-run train-decoder"
        )
    name = env or meta.get("env")
    if not name:
        raise ReverieError(f"checkpoint {checkpoint} records no env: pass --env NAME")
    try:
        name = resolve(name)
        cls = env_class(name)
    except (ValueError, ImportError) as e:
        raise ReverieError(f"cannot play in env {name!r}: {e}") from None
    probe = cls(size=model.image_size)
    try:
        raw_dim = int(np.prod(probe.action_space.shape))
    finally:
        probe.close()
    if raw_dim * model.frameskip != model.action_dim:
        raise ReverieError(
            f"env {name} takes {raw_dim}-d actions ({raw_dim * model.frameskip}-d per model step "
            f"at frameskip {model.frameskip}), but the model in {checkpoint} takes "
            f"{model.action_dim}-d ones: play in the env it was trained on"
        )
    if name not in KEYMAPS or raw_dim != 2:
        raise ReverieError(f"env {name} has no keyboard mapping for play")
    return PlayModel(model, decoder, meta, decoder_info, name, checkpoint)


def encode_image(frame: np.ndarray) -> str:
    """uint8 (Hi, Wi, 3) → base64 of its raw RGB bytes (what the page draws)."""
    return base64.b64encode(np.ascontiguousarray(frame, np.uint8).tobytes()).decode("ascii")


def decode_image(data: str, size: int) -> np.ndarray:
    """Inverse of ``encode_image`` (tests and the benchmark use it)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"not a base64 image: {e}") from None
    return np.frombuffer(raw, np.uint8).reshape(size, size, 3)


# ----------------------------------------------------------------------------- perturbations
def _far_free_position(env: Any, rng: np.random.Generator, away_from: np.ndarray) -> np.ndarray:
    for _ in range(200):
        p = env._free_position(rng)
        if np.hypot(*(p - away_from)) >= 80.0:
            return p
    return env._free_position(rng)


def perturb_env(
    env: Any, kind: str, rng: np.random.Generator, target: tuple[float, float] | None = None
) -> tuple[str, bool | None]:
    """Apply perturbation ``kind`` to ``env`` now; returns (description, hidden-state change).

    The second value is True when the env's agent must stay parked out of the world after every
    step (Two-Room's delete), False when a previous parking ends, None when unchanged.
    """
    name = env.short_name
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(PERTURBATIONS)}")
    if kind == "gravity":
        if "gravity" not in env.all_factors():
            raise ValueError(f"{name} is a top-down world: it has no gravity to flip")
        g = env.factors["gravity"]
        factor = env.all_factors()["gravity"]
        new = -g if g != 0 else min(1.0, factor.high)
        env.set_factors({"gravity": new})
        return f"gravity {g:+.2f} -> {new:+.2f}", None
    state = env.get_state()
    if name == "tworoom":
        from reverie.envs.tworoom import RADIUS, WORLD

        if kind == "teleport":
            if target is not None:
                cx, cy = env.factors["camera_x"], env.factors["camera_y"]
                pos = np.clip(np.array(target) * WORLD + [cx, cy], RADIUS, WORLD - RADIUS)
                if env._blocked_xy(*pos):
                    raise ValueError("that spot is inside the wall: pick another")
            else:
                pos = _far_free_position(env, rng, state[:2])
            env.set_state(np.array([pos[0], pos[1], 0.0, 0.0]))
            return f"agent teleported to ({pos[0]:.0f}, {pos[1]:.0f})", False
        env.set_state(np.array([-10 * WORLD, -10 * WORLD, 0.0, 0.0]))
        return "agent deleted (parked outside the world until teleport or reset)", True
    if name == "tabletop":
        from reverie.envs.tabletop import HIDDEN_AT, TABLE_HALF, TABLE_TOP

        pos = env.object_positions()  # (K, 3)
        visible = [i for i in range(len(pos)) if np.linalg.norm(pos[i, :2] - HIDDEN_AT) > 2.0]
        if not visible:
            raise ValueError("every object is already deleted: reset to bring them back")
        i = visible[0]
        if kind == "teleport":
            xy = rng.uniform(-0.6 * TABLE_HALF, 0.6 * TABLE_HALF, size=2)
            env.set_object_pose(i, [xy[0], xy[1], TABLE_TOP + 0.15])
            env.launch(i, np.zeros(3), angular=np.zeros(3))
            return f"{env.object_names[i]} teleported above ({xy[0]:.2f}, {xy[1]:.2f})", None
        env.hide_object(i)
        return f"{env.object_names[i]} deleted", None
    if name == "pusht":
        from reverie.envs.pusht import WORLD as PT_WORLD

        if kind == "teleport":
            pose = env._random_pose(rng, 100.0)
            state[4:7], state[7:10] = pose[4:7], 0.0
            env.set_state(state)
            return "T teleported", None
        state[4:6], state[7:10] = -10 * PT_WORLD, 0.0
        env.set_state(state)
        return "T deleted (parked outside the walls)", None
    if name == "reacher":
        if kind == "teleport":
            env.set_state(env._random_configuration(rng))
            return "arm teleported to a random configuration", None
        raise ValueError("reacher has no object to delete")
    raise ValueError(f"no perturbations defined for env {name}")


# --------------------------------------------------------------------------------- session
class PlaySession:
    """A connection's world: its own env, real and dream embedding histories, its mode."""

    def __init__(self, shared: PlayModel, config: SessionConfig = SessionConfig()) -> None:
        from reverie.envs import make

        self.shared, self.config = shared, config
        self.model, self.decoder = shared.model, shared.decoder
        self.env = make(shared.env_name, size=self.model.image_size)
        self.raw_dim = int(np.prod(self.env.action_space.shape))
        self.keymap = KEYMAPS[shared.env_name]
        self.rng = np.random.default_rng(config.seed)
        self.mode = "live"
        self.hidden = False  # Two-Room "delete": park the agent after every step
        self.steps = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], Iterator[dict[str, Any]]]] = {
            "action": self._on_action,
            "mode": self._on_mode,
            "resync": self._on_resync,
            "perturb": self._on_perturb,
            "plan": self._on_plan,
            "reset": self._on_reset,
            "ping": self._on_ping,
        }
        self._reset(config.seed)

    # ------------------------------------------------------------------------------- public
    def hello(self) -> dict[str, Any]:
        """The first message of a connection: what the page needs to lay itself out."""
        metrics = self.shared.decoder_info.get("metrics") or {}
        return {
            "type": "hello",
            "env": self.shared.env_name,
            "checkpoint_env": self.shared.meta.get("env"),
            "checkpoint_step": self.shared.meta.get("step"),
            "image_size": self.model.image_size,
            "action_dim": self.raw_dim,
            "frameskip": self.model.frameskip,
            "pred_horizon": self.config.pred_horizon,
            "plan_horizon": self.config.plan_horizon,
            "keys": list(KEY_NAMES),
            "perturbations": list(PERTURBATIONS),
            "modes": list(MODES),
            "decoder_psnr": metrics.get("psnr_val"),
            "max_message_bytes": self.config.max_message_bytes,
        }

    def initial_view(self) -> dict[str, Any]:
        """The picture sent after ``hello``, unasked (so it is not marked final)."""
        return self._view("start")

    def handle(self, raw: str | bytes | None) -> Iterator[dict[str, Any]]:
        """Replies to one incoming message; the last carries ``final: True``. Never raises."""
        t0 = time.perf_counter()
        try:
            msg = self._parse(raw)
            handler = self._handlers.get(msg["type"])
            if handler is None:
                raise ValueError(
                    f"unknown message type {msg['type']!r}; known: {', '.join(self._handlers)}"
                )
            replies = handler(msg)
            previous = next(replies, None)
            for reply in replies:  # one behind, so the last one can be marked final
                yield previous
                previous = reply
            if previous is None:
                previous = {"type": "ack"}
            previous["final"] = True
            previous.setdefault("server_ms", (time.perf_counter() - t0) * 1000)
            yield previous
        except (ValueError, ReverieError) as e:
            yield self._error(str(e))
        except Exception as e:  # a bug must not take the connection down with it
            log.exception("play session error")
            yield self._error(f"internal error: {type(e).__name__}: {e}")

    def close(self) -> None:
        self.env.close()
        self.window = self.dream = None  # type: ignore[assignment]

    # ---------------------------------------------------------------------------- parsing
    def _parse(self, raw: str | bytes | None) -> dict[str, Any]:
        if isinstance(raw, (bytes, bytearray)):
            raise ValueError("binary messages are not accepted: send JSON text")
        if not isinstance(raw, str):
            raise ValueError("empty message")
        limit = self.config.max_message_bytes
        if len(raw) > limit:  # chars ≥ bytes/4; cheap first check before encoding
            raise ValueError(f"message of {len(raw)} characters exceeds the {limit}-byte limit")
        if len(raw.encode("utf-8", "replace")) > limit:
            raise ValueError(f"message exceeds the {limit}-byte limit")
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"malformed JSON: {e}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise ValueError('a message must be a JSON object with a string "type"')
        return msg

    def _action_from(self, msg: dict[str, Any]) -> np.ndarray:
        if "action" in msg:
            a = msg["action"]
            if (
                not isinstance(a, list)
                or len(a) != self.raw_dim
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in a)
                or not all(math.isfinite(v) for v in a)
            ):
                raise ValueError(f'"action" must be a list of {self.raw_dim} finite numbers')
            return np.clip(np.asarray(a, np.float64), -1.0, 1.0)
        keys = msg.get("keys", [])
        if not isinstance(keys, list) or not all(k in self.keymap for k in keys):
            raise ValueError(f'"keys" must be a list drawn from {list(KEY_NAMES)}')
        a = np.zeros(self.raw_dim)
        for k in set(keys):
            a += self.keymap[k]
        return np.clip(a, -1.0, 1.0)

    @staticmethod
    def _point(msg: dict[str, Any], where: str) -> tuple[float, float] | None:
        p = msg.get(where, msg) if where else msg
        if not isinstance(p, dict) or "x" not in p:
            return None
        x, y = p.get("x"), p.get("y")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)):
            raise ValueError(f"{where or 'point'} x and y must be numbers in [0, 1]")
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"{where or 'point'} x and y must be in [0, 1], got ({x}, {y})")
        return float(x), float(y)

    # ---------------------------------------------------------------------------- handlers
    def _on_action(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        action = self._action_from(msg)
        self.last_action = action
        if self.mode == "dream":
            yield self._dream_step(action)
        else:
            yield self._live_step(action, "action")

    def _on_mode(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        mode = msg.get("mode")
        if mode not in MODES:
            raise ValueError(f'"mode" must be one of {list(MODES)}, got {mode!r}')
        if mode == "dream" and self.mode != "dream":
            self.dream = self.window.clone()  # the dream starts from the last real embeddings
        self.mode = mode
        yield self._view("mode")

    def _on_resync(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.dream = self.window.clone()
        yield self._view("resync")

    def _on_perturb(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kind = msg.get("kind")
        if not isinstance(kind, str):
            raise ValueError(f'"kind" must be one of {list(PERTURBATIONS)}')
        target = self._point(msg, "")
        if self.mode == "dream":  # perturbations act on the real simulator
            self.mode = "live"
        description, hidden = perturb_env(self.env, kind, self.rng, target)
        if hidden is not None:
            self.hidden = hidden
        # The world changed between two frames: step once so the surprise of it shows.
        reply = self._live_step(np.zeros(self.raw_dim), "perturb")
        reply["event"] = description
        yield reply

    def _on_reset(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        seed = msg.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ValueError('"seed" must be a non-negative integer')
        self._reset(seed if seed is not None else int(self.rng.integers(1 << 31)))
        yield self._view("reset")

    def _on_ping(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        t = msg.get("t")
        yield {"type": "pong", "t": t if isinstance(t, (int, float, str)) else None}

    def _on_plan(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        from reverie.planning import CEM, CEMConfig, LatentGoalObjective, shift_plan

        cfg, model, env = self.config, self.model, self.env
        goal_state = self._goal_from(msg)
        goal_frame = env.render_state(goal_state)
        env.set_goal(goal_state)
        self.mode = "live"
        z_goal = self._encode(goal_frame)  # (1, D)
        planner = CEM(
            CEMConfig(
                samples=cfg.plan_samples,
                iterations=cfg.plan_iterations,
                elites=cfg.plan_elites,
                horizon=cfg.plan_horizon,
                seed=int(self.rng.integers(1 << 31)),
            ),
            model.action_dim,
        )
        previous: torch.Tensor | None = None
        executed, replans = 0, 0
        success = bool(env.is_success(env.get_state(), goal_state))
        goal_images = {
            "goal": encode_image(goal_frame),
            "goal_view": encode_image(self.decoder.decode_uint8(z_goal)[0]),
        }
        while not success and executed < cfg.plan_max_steps:
            # Step 1. Search action blocks whose imagined rollout stays nearest the goal.
            t0 = time.perf_counter()
            objective = LatentGoalObjective(model, self.window, z_goal)
            init = None if previous is None else shift_plan(previous, cfg.plan_execute)
            plan, info = planner.plan(objective, init_mean=init)  # (1, H, A')
            previous = plan
            with torch.inference_mode():
                imagined = model.rollout(self.window, plan)  # (1, H, D)
            plan_ms = (time.perf_counter() - t0) * 1000
            replans += 1
            yield {
                "type": "plan",
                "replan": replans,
                "imagined": [encode_image(f) for f in self.decoder.decode_uint8(imagined[0])],
                "plan_ms": plan_ms,
                "cost": float(info["best_cost"][-1]) if info.get("best_cost") else None,
                **(goal_images if replans == 1 else {}),
            }
            # Step 2. Execute the first blocks in the simulator, streaming every frame.
            for block in plan[0, : cfg.plan_execute].numpy():
                reply = self._live_step(block, "plan", model_action=True)
                executed += 1
                success = bool(env.is_success(env.get_state(), goal_state))
                yield reply
                if success or executed >= cfg.plan_max_steps:
                    break
        yield {
            "type": "plan_done",
            "success": success,
            "steps": executed,
            "replans": replans,
            "distance": float(env.goal_distance(env.get_state(), goal_state)),
        }

    def _goal_from(self, msg: dict[str, Any]) -> np.ndarray:
        point = self._point(msg, "goal")
        if point is not None and self.shared.env_name == "tworoom":
            from reverie.envs.tworoom import RADIUS, WORLD

            cx, cy = self.env.factors["camera_x"], self.env.factors["camera_y"]
            pos = np.clip(np.array(point) * WORLD + [cx, cy], RADIUS, WORLD - RADIUS)
            if self.env._blocked_xy(*pos):
                raise ValueError("that goal is inside the wall: pick another spot")
            return np.array([pos[0], pos[1], 0.0, 0.0])
        if point is None and msg.get("goal_image") not in ("random", None):
            raise ValueError('"goal_image" must be "random"')
        if point is None and "goal_image" not in msg:
            raise ValueError('plan needs "goal": {"x": .., "y": ..} or "goal_image": "random"')
        # Other envs (or an explicit request): a reachable goal from the env's own sampler.
        return self.env._sample_goal(self.rng)

    # ---------------------------------------------------------------------------- stepping
    def _reset(self, seed: int) -> None:
        self.obs, _ = self.env.reset(seed=seed)
        self.hidden = False
        self.steps = 0
        self.last_action = np.zeros(self.raw_dim)
        z = self._encode(self.obs)  # (1, D)
        # The history starts as k copies of the first embedding (as training pads it).
        self.window = repeat(z, "b d -> b k d", k=self.model.history).clone()  # (1, k, D)
        self.dream = self.window.clone()
        self.last_surprise: float | None = None

    def _encode(self, frame: np.ndarray) -> torch.Tensor:
        """uint8 (Hi, Wi, 3) → (1, D)."""
        obs = torch.from_numpy(rearrange(frame, "h w c -> 1 c h w").copy())
        with torch.inference_mode():
            return self.model.encode(obs).float()

    def _model_action(self, raw: np.ndarray) -> torch.Tensor:
        """One raw action held for ``frameskip`` env steps → the model's (1, A') action."""
        return torch.from_numpy(np.tile(raw, self.model.frameskip)).float()[None]

    def _predict_future(self, window: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(1, k, D), (1, A') → (1, P, D): the next P embeddings if the action is held."""
        P = self.config.pred_horizon
        if P == 0:
            return window[:, :0]
        return self.model.rollout(window, repeat(action, "b a -> b p a", p=P))

    def _live_step(
        self, action: np.ndarray, source: str, model_action: bool = False
    ) -> dict[str, Any]:
        """Step the simulator one model step; surprise, decoded view and predictions."""
        t0 = time.perf_counter()
        a = torch.from_numpy(np.asarray(action, np.float32))[None] if model_action else None
        a = self._model_action(action) if a is None else a  # (1, A')
        raws = rearrange(a[0].double().numpy(), "(f r) -> f r", f=self.model.frameskip)
        with torch.inference_mode():
            z_pred = self.model.predict(self.window, a)  # (1, D)
            for raw in raws:
                self.obs, *_ = self.env.step(raw)
                if self.hidden:
                    self._park()
            z_new = self._encode(self.obs)  # (1, D)
            self.last_surprise = float((z_pred - z_new).pow(2).mean())
            self.window = torch.cat([self.window[:, 1:], z_new[:, None]], dim=1)  # (1, k, D)
            if self.mode == "dream":
                self.dream = self.window.clone()
            future = self._predict_future(self.window, a)  # (1, P, D)
            frames = self.decoder.decode_uint8(torch.cat([z_new, future[0]]))  # (1+P, Hi, Wi, 3)
        self.steps += 1
        return self._frame_message(source, real=self.obs, recon=frames[0], pred=frames[1:], t0=t0)

    def _dream_step(self, action: np.ndarray) -> dict[str, Any]:
        """The simulator is off: the model alone moves the dream one step under the action."""
        t0 = time.perf_counter()
        a = self._model_action(action)
        with torch.inference_mode():
            z_next = self.model.predict(self.dream, a)  # (1, D)
            self.dream = torch.cat([self.dream[:, 1:], z_next[:, None]], dim=1)
            future = self._predict_future(self.dream, a)  # (1, P, D)
            frames = self.decoder.decode_uint8(torch.cat([z_next, future[0]]))
        self.steps += 1
        return self._frame_message("action", dream=frames[0], pred=frames[1:], t0=t0)

    def _park(self) -> None:
        from reverie.envs.tworoom import WORLD

        self.env.set_state(np.array([-10 * WORLD, -10 * WORLD, 0.0, 0.0]))
        self.obs = self.env.render()

    def _view(self, source: str) -> dict[str, Any]:
        """The current picture without stepping (after reset, mode switch, resync)."""
        t0 = time.perf_counter()
        a = self._model_action(self.last_action)
        with torch.inference_mode():
            base = self.dream if self.mode == "dream" else self.window
            future = self._predict_future(base, a)
            z = torch.cat([self.window[:, -1], self.dream[:, -1], future[0]])  # (2+P, D)
            frames = self.decoder.decode_uint8(z)
        msg = self._frame_message(
            source, real=self.obs, recon=frames[0], dream=frames[1], pred=frames[2:], t0=t0
        )
        msg["surprise"] = None
        return msg

    def _frame_message(
        self,
        source: str,
        t0: float,
        real: np.ndarray | None = None,
        recon: np.ndarray | None = None,
        dream: np.ndarray | None = None,
        pred: np.ndarray | None = None,
    ) -> dict[str, Any]:
        state = self.env.get_state()
        goal = self.env.goal
        return {
            "type": "frame",
            "source": source,
            "mode": self.mode,
            "step": self.steps,
            "real": encode_image(real) if real is not None else None,
            "recon": encode_image(recon) if recon is not None else None,
            "dream": encode_image(dream) if dream is not None else None,
            "pred": [encode_image(p) for p in pred] if pred is not None else [],
            "surprise": self.last_surprise
            if source in ("action", "perturb", "plan") and self.mode == "live"
            else None,
            "state": [round(float(v), 4) for v in state],
            "success": bool(self.env.is_success(state, goal)) if goal is not None else False,
            "hidden": self.hidden,
            "factors": {k: round(v, 4) for k, v in self.env.factors.items()},
            "server_ms": (time.perf_counter() - t0) * 1000,
        }

    def _error(self, message: str) -> dict[str, Any]:
        return {
            "type": "error",
            "message": message.splitlines()[0] if message else "error",
            "final": True,
        }
