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
  plan     {"goal": {"x": 0..1, "y": 0..1}} or {"goal_image": "random"}, "planner"?: "cem" |
           "policy": CEM in latent space or the trained policy (no search), the imagined
           trajectory (decoded), then its execution in the simulator, streamed
  reset    {"seed"?: int}
  world    {"prompt": "two bouncy balls on an icy table"}: rebuild the simulator as that world
           (envs that build from a scene spec); replies ``world`` (the parsed spec, ignored
           words, clamping warnings) then a frame of the new world
  ping     {"t"?: any} → {"type": "pong", "t": ...}
Replies: ``hello``, ``frame`` (images, surprise, true state, server_ms), ``plan``, ``plan_done``,
``world``, ``pong``, ``error``. The last reply to each message carries ``"final": true`` (the page
keeps one request in flight). The wire format (parsing, images, JSON safety) is in ``protocol.py``.

Surprise is the latent prediction error of the step just taken: the mean over D of
(predict(last k real embeddings, action) − encode(new real frame))². Perturbations change the world
between two frames in ways its physics cannot, so the error spikes. Which perturbations, keys and
clicked goals mean what is the env's business (``ReverieEnv.perturb``, ``keymap``,
``goal_from_point``); nothing here knows an env by name.

Planning runs the one receding-horizon loop, ``reverie.planning.episode_steps``: it plans, steps
the env and tests success after every env step; the session draws its events (the decoded imagined
trajectory per replan, a frame with surprise at every block boundary).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from einops import rearrange, repeat

from reverie.io import ReverieError
from reverie.planning.options import PlannerOptions
from reverie.viewer.play_model import PlayModel, load_play_model
from reverie.viewer.protocol import action_from, encode_image, parse_message, point_from

__all__ = ["MODES", "PlayModel", "PlaySession", "SessionConfig", "load_play_model"]

log = logging.getLogger("reverie.viewer")

MODES = ("live", "dream")


@dataclass(frozen=True)
class SessionConfig:
    """Per-session knobs (shared by every connection of one server)."""

    pred_horizon: int = 3
    """Future frames predicted (and decoded) at every step, assuming the action is held."""
    planning: PlannerOptions = PlannerOptions(samples=100, iterations=10, elites=10, horizon=5)
    """CEM budget and horizon (fewer candidates than evaluation's 300, for interactivity); the
    horizon is the imagined trajectory's length."""
    plan_execute: int = 2
    """Planned model steps executed before replanning."""
    plan_max_steps: int = 40
    """Model steps a plan request may execute before giving up."""
    max_message_bytes: int = 65536
    """Larger incoming messages get an error reply (and are not parsed)."""
    seed: int = 0
    """Seed of the first reset and of the session's random choices."""
    world: Any = None
    """The ``reverie.scenes.world.World`` every session starts in; None: the env's own scene."""

    def __post_init__(self) -> None:
        for name in ("plan_execute", "plan_max_steps", "max_message_bytes"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be >= 1, got {getattr(self, name)}")
        if self.pred_horizon < 0:
            raise ValueError(f"--pred-horizon must be >= 0, got {self.pred_horizon}")
        if self.planning.elites < 2:  # CEM refits a std to its elites
            raise ValueError(f"--elites must be >= 2 for CEM, got {self.planning.elites}")
        if self.plan_execute > self.planning.horizon:
            raise ValueError("--plan-execute must be <= --horizon")


class PlaySession:
    """A connection's world: its own env, real and dream embedding histories, its mode."""

    def __init__(self, shared: PlayModel, config: SessionConfig = SessionConfig()) -> None:
        from reverie.envs import make

        self.shared, self.config = shared, config
        self.model, self.decoder = shared.model, shared.decoder
        self.world = config.world
        if self.world is not None:
            self.env = make(shared.env_name, size=self.model.image_size, scene=self.world.spec)
        else:
            self.env = make(shared.env_name, size=self.model.image_size)
        self.raw_dim = int(np.prod(self.env.action_space.shape))
        self.keymap = self.env.keymap
        self.rng = np.random.default_rng(config.seed)
        self.mode = "live"
        self.hidden = False  # the env keeps a deleted thing parked out of view (shown on the page)
        self.steps = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], Iterator[dict[str, Any]]]] = {
            "action": self._on_action,
            "mode": self._on_mode,
            "resync": self._on_resync,
            "perturb": self._on_perturb,
            "plan": self._on_plan,
            "reset": self._on_reset,
            "world": self._on_world,
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
            "plan_horizon": self.config.planning.horizon,
            "keys": list(self.keymap),
            "perturbations": list(self.env.perturbations()),
            "planners": ["cem", "policy"] if self.shared.policy is not None else ["cem"],
            "modes": list(MODES),
            "decoder_psnr": metrics.get("psnr_val"),
            "max_message_bytes": self.config.max_message_bytes,
            "worlds": hasattr(self.env, "set_scene"),
            "world": self.world.to_dict() if self.world is not None else None,
        }

    def initial_view(self) -> dict[str, Any]:
        """The picture sent after ``hello``, unasked (so it is not marked final)."""
        return self._view("start")

    def handle(self, raw: str | bytes | None) -> Iterator[dict[str, Any]]:
        """Replies to one incoming message; the last carries ``final: True``. Never raises."""
        t0 = time.perf_counter()
        try:
            msg = parse_message(raw, self.config.max_message_bytes)
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

    # ---------------------------------------------------------------------------- handlers
    def _on_action(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        action = action_from(msg, self.raw_dim, self.keymap)
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
            raise ValueError(f'"kind" must be one of {list(self.env.perturbations())}')
        target = point_from(msg, "")
        if self.mode == "dream":  # perturbations act on the real simulator
            self.mode = "live"
        description, hidden = self.env.perturb(kind, self.rng, target)
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

    def _on_world(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        from reverie.scenes.world import world_from

        if not hasattr(self.env, "set_scene"):
            raise ValueError(f"{self.shared.env_name} is not built from scene specs: no prompts")
        prompt = msg.get("prompt")
        if not isinstance(prompt, str):
            raise ValueError('world needs "prompt": "a red cube left of a blue ball"')
        world = world_from(prompt=prompt)  # ReverieError: one line back to the page
        self.env.set_scene(world.spec)
        self.world = world
        self.mode = "live"
        self._reset(self.config.seed)
        yield {"type": "world", **world.to_dict()}
        yield self._view("world")

    def _on_ping(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        t = msg.get("t")
        yield {"type": "pong", "t": t if isinstance(t, (int, float, str)) else None}

    def _on_plan(self, msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
        from reverie.planning import (
            CEM,
            CEMConfig,
            LatentGoalObjective,
            MPCConfig,
            ReplanEvent,
            episode_steps,
        )

        cfg, model, env = self.config, self.model, self.env
        which = msg.get("planner", "cem")
        if which not in ("cem", "policy"):
            raise ValueError(f'"planner" must be "cem" or "policy", got {which!r}')
        if which == "policy" and self.shared.policy is None:
            raise ValueError(
                "no policy loaded: train one with `reverie policy train --checkpoint RUN`"
            )
        goal_state = self._goal_from(msg)
        goal_frame = env.render_state(goal_state)
        self.mode = "live"
        z_goal = self._encode(goal_frame)  # (1, D)
        opts = cfg.planning
        planner: Any = CEM(
            CEMConfig(
                samples=opts.samples,
                iterations=opts.iterations,
                elites=opts.elites,
                horizon=opts.horizon,
                seed=int(self.rng.integers(1 << 31)),
            ),
            model.action_dim,
        )
        if which == "policy":  # no search: the policy acts, its imagined rollout is drawn
            from reverie.policies import PolicyPlanner

            planner = PolicyPlanner(self.shared.policy, model, opts.horizon, imagine=True)
        mpc = MPCConfig(
            budget=cfg.plan_max_steps * model.frameskip,  # env steps
            frameskip=model.frameskip,
            execute_blocks=cfg.plan_execute,
        )

        def objective(ctx: Any) -> LatentGoalObjective:
            # Rollouts start from the session's own window (keyboard history included), which
            # the frames below bring up to date at every block boundary before the next replan.
            return LatentGoalObjective(model, self.window, z_goal)

        goal_images = {
            "goal": encode_image(goal_frame),
            "goal_view": encode_image(self.decoder.decode_uint8(z_goal)[0]),
        }
        plan: torch.Tensor | None = None
        blocks, replans, boundary = 0, 0, 0  # model steps drawn, plans, env step of last boundary
        for event in episode_steps(env, planner, objective, goal_state, mpc, goal_frame):
            if isinstance(event, ReplanEvent):
                plan, replans, boundary = event.plan, event.replan, event.step
                with torch.inference_mode():
                    imagined = model.rollout(self.window, plan)  # (1, H, D)
                yield {
                    "type": "plan",
                    "replan": replans,
                    "imagined": [encode_image(f) for f in self.decoder.decode_uint8(imagined[0])],
                    "plan_ms": event.plan_ms,
                    "planner": which,
                    "cost": event.cost,
                    **(goal_images if replans == 1 else {}),
                }
            elif event.block_end:
                assert plan is not None
                t0 = time.perf_counter()
                # A block cut short by success was not the one the model predicted: no surprise.
                full = event.step - boundary == model.frameskip
                boundary = event.step
                self.obs = event.obs
                blocks += 1
                yield self._observe(plan[:, event.block], "plan", t0, measured=full)
        yield {
            "type": "plan_done",
            "success": bool(env.is_success(env.get_state(), goal_state)),
            "steps": blocks,
            "replans": replans,
            "distance": float(env.goal_distance(env.get_state(), goal_state)),
        }

    def _goal_from(self, msg: dict[str, Any]) -> np.ndarray:
        point = point_from(msg, "goal")
        if point is not None:
            goal = self.env.goal_from_point(*point)
            if goal is not None:
                return goal
        elif msg.get("goal_image") not in ("random", None):
            raise ValueError('"goal_image" must be "random"')
        elif "goal_image" not in msg:
            raise ValueError('plan needs "goal": {"x": .., "y": ..} or "goal_image": "random"')
        # A point the env gives no meaning (or an explicit request): a goal from its own sampler.
        return self.env.sample_goal(self.rng)

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

    def _live_step(self, action: np.ndarray, source: str) -> dict[str, Any]:
        """Step the simulator one model step under a held raw action; then ``_observe`` it."""
        t0 = time.perf_counter()
        a = self._model_action(action)  # (1, A')
        raws = rearrange(a[0].double().numpy(), "(f r) -> f r", f=self.model.frameskip)
        for raw in raws:
            self.obs, *_ = self.env.step(raw)
        return self._observe(a, source, t0)

    def _observe(
        self, a: torch.Tensor, source: str, t0: float, measured: bool = True
    ) -> dict[str, Any]:
        """After a model step under ``a`` (1, A') ended at ``self.obs``: surprise, window, view."""
        with torch.inference_mode():
            z_pred = self.model.predict(self.window, a)  # (1, D), from the window before the step
            z_new = self._encode(self.obs)  # (1, D)
            self.last_surprise = float((z_pred - z_new).pow(2).mean()) if measured else None
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
