"""The ``reverie play`` server: FastAPI, one static page at ``/``, one WebSocket at ``/ws``.

    reverie play --checkpoint runs/tworoom [--env tworoom] [--host 127.0.0.1] [--port 8000]
    reverie play --checkpoint runs/tabletop --prompt "two bouncy balls on an icy table"
        (or --scene spec.json, --image frame.png: the world every session starts in; the page's
        prompt box rebuilds it)
        [--samples 100 --iterations 10 --elites 10 --horizon 5]      # the planner's budget
    python -m reverie.viewer.server --checkpoint runs/tworoom      # same, without the CLI

    from reverie.viewer.server import create_app
    app = create_app("runs/tworoom")      # tests serve it with uvicorn or Starlette's TestClient

The world model and decoder are loaded once, when the app is made (a missing or incompatible
checkpoint fails there, with a one-line ``ReverieError``), and shared read-only by every
connection under ``torch.inference_mode``. Each WebSocket gets its own ``PlaySession`` (its own
simulator) and its own worker thread: the session's simulator and torch calls all run on that one
thread (MuJoCo's GL context belongs to the thread that made it), so the event loop stays free and
sessions never share mutable state. Every incoming text message is answered (errors included) and
the connection stays up; messages over the protocol limit of uvicorn (16 MiB) are closed by it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from reverie.io import ReverieError
from reverie.planning.options import PlannerOptions
from reverie.viewer.play_model import load_play_model
from reverie.viewer.protocol import dumps_reply
from reverie.viewer.session import PlaySession, SessionConfig

log = logging.getLogger("reverie.viewer")
_DONE = object()


@dataclass(frozen=True)
class PlayConfig:
    """``reverie play``: serve the explorable-imagination page for one checkpoint."""

    checkpoint: Path
    """Run directory with the world-model checkpoint and its decoder (``reverie train-decoder``)."""
    env: str | None = None
    """Environment to play in; None: the one the checkpoint was trained on."""
    policy_run: Path | None = None
    """Policy run for the page's "policy" planner (None: CHECKPOINT/policy when it has one)."""
    host: str = "127.0.0.1"
    """Interface to bind. The default is reachable from this machine only; 0.0.0.0 exposes it."""
    port: int = 8000
    """TCP port."""
    max_sessions: int = 8
    """Concurrent connections (each has its own simulator and thread); more are refused."""
    plan_fps: float = 15.0
    """Pace of the streamed plan execution, frames/s (so a person can follow it)."""
    threads: int = 1
    """torch CPU threads. Batch-1 steps gain nothing from more; on a busy 2-core machine two
    threads made a step ~5x slower (44 ms vs 8.5 ms). Sessions run in parallel threads anyway."""
    pred_horizon: int = 3
    """Future frames predicted (and decoded) at every step, assuming the action is held."""
    planning: PlannerOptions = PlannerOptions(samples=100, iterations=10, elites=10, horizon=5)
    """CEM budget and horizon (``--samples --iterations --elites --horizon``; evaluation searches
    300 candidates, fewer keep planning interactive); the horizon is the imagined trajectory."""
    plan_max_steps: int = 40
    """Model steps one plan request may execute."""
    seed: int = 0
    """Seed of every session's first reset and random choices."""
    prompt: str | None = None
    """Start in the world this text describes (tabletop; see ``reverie world save``)."""
    scene: Path | None = None
    """Start in the world of this scene spec JSON."""
    image: Path | None = None
    """Start in the world recovered from this frame (PNG from the tabletop camera)."""

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.prompt, self.scene, self.image)) > 1:
            raise ValueError("give at most one of --prompt, --scene, --image")
        if self.checkpoint is None:
            raise ValueError("--checkpoint RUN is required")
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        if self.policy_run is not None:
            object.__setattr__(self, "policy_run", Path(self.policy_run))
        if not 1 <= self.port <= 65535:
            raise ValueError(f"--port must be in [1, 65535], got {self.port}")
        if not self.host:
            raise ValueError("--host must not be empty")
        if self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")
        if self.max_sessions < 1:
            raise ValueError(f"--max-sessions must be >= 1, got {self.max_sessions}")
        if not (math.isfinite(self.plan_fps) and self.plan_fps > 0):
            raise ValueError(f"--plan-fps must be > 0, got {self.plan_fps}")
        self.session_config()  # validates the session knobs (ValueError naming the field)

    def world(self) -> Any:
        """The start world (``reverie.scenes.world.World``), or None for the env's own scene."""
        if self.prompt is None and self.scene is None and self.image is None:
            return None
        from reverie.scenes.world import world_from

        return world_from(prompt=self.prompt, scene=self.scene, image=self.image, seed=self.seed)

    def session_config(self, world: Any = None) -> SessionConfig:
        """The per-connection settings these options make."""
        return SessionConfig(
            world=world,
            pred_horizon=self.pred_horizon,
            planning=self.planning,
            plan_execute=min(2, self.planning.horizon),
            plan_max_steps=self.plan_max_steps,
            seed=self.seed,
        )


class SessionSlots:
    """At most ``limit`` sessions at once: taking a slot checks and counts in one locked step.

    Checking the count and registering the session later (after an ``await``) let concurrent
    connects all pass the check and exceed the cap; a slot is taken before anything else happens.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.taken = limit, 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        """Take a slot if one is free (never blocks)."""
        with self._lock:
            if self.taken >= self.limit:
                return False
            self.taken += 1
            return True

    def release(self) -> None:
        with self._lock:
            if self.taken <= 0:
                raise RuntimeError("SessionSlots.release without acquire")
            self.taken -= 1


def static_dir() -> Path:
    """Where index.html, app.js and style.css live (inside the installed package)."""
    return Path(str(resources.files("reverie.viewer") / "static"))


def _same_origin(ws: WebSocket) -> bool:
    """Refuse cross-site pages: a browser sends Origin, and it must name this server."""
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser (benchmark, tests): nothing to protect against
        return True
    return urlparse(origin).netloc == ws.headers.get("host")


def create_app(
    checkpoint: str | Path,
    env: str | None = None,
    session_config: SessionConfig | None = None,
    max_sessions: int = 8,
    plan_fps: float = 15.0,
    policy: str | Path | None = None,
) -> FastAPI:
    """The play app for ``checkpoint`` (loads the model now; ``ReverieError`` if it cannot)."""
    shared = load_play_model(checkpoint, env, policy)
    session_config = session_config or SessionConfig()
    if session_config.world is not None:
        from reverie.envs import env_class

        if not hasattr(env_class(shared.env_name), "set_scene"):
            raise ReverieError(
                f"worlds from a prompt, spec or image need the tabletop env; this checkpoint "
                f"plays {shared.env_name}"
            )
    static = static_dir()
    index_html = (static / "index.html").read_text()
    app = FastAPI(title="reverie play", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.shared = shared
    app.state.sessions = set()
    app.state.slots = SessionSlots(max_sessions)
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(index_html)

    @app.get("/info")
    def info() -> JSONResponse:
        return JSONResponse(
            {
                "env": shared.env_name,
                "checkpoint": str(shared.checkpoint),
                "step": shared.meta.get("step"),
                "decoder_psnr": (shared.decoder_info.get("metrics") or {}).get("psnr_val"),
                "sessions": len(app.state.sessions),
            }
        )

    @app.websocket("/ws")
    async def play(ws: WebSocket) -> None:
        if not _same_origin(ws):
            await ws.close(code=1008)
            return
        await ws.accept()
        if not app.state.slots.acquire():
            await _send(
                ws, {"type": "error", "message": "server busy: too many sessions", "final": True}
            )
            await ws.close(code=1013)
            return
        loop = asyncio.get_running_loop()
        # One thread per session: its env and torch calls never hop threads (see module doc).
        pool = ThreadPoolExecutor(1, thread_name_prefix="reverie-play")
        session: PlaySession | None = None
        replies: Iterator[dict[str, Any]] | None = None
        try:
            session = await loop.run_in_executor(pool, PlaySession, shared, session_config)
            app.state.sessions.add(session)
            await _send(ws, session.hello())
            await _send(ws, await loop.run_in_executor(pool, session.initial_view))
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                replies = session.handle(text if text is not None else message.get("bytes"))
                while True:
                    reply = await loop.run_in_executor(pool, next, replies, _DONE)
                    if reply is _DONE:
                        break
                    await _send(ws, reply)
                    if reply.get("source") == "plan" and not reply.get("final"):
                        await asyncio.sleep(1.0 / plan_fps)
                replies = None
        except (WebSocketDisconnect, ConnectionError):
            pass  # closed mid-step: the cleanup below is all there is to do
        except RuntimeError as e:  # starlette raises this when sending on a closed socket
            log.debug("play connection ended: %s", e)
        finally:
            try:
                if session is not None:
                    app.state.sessions.discard(session)
                    if replies is not None:
                        await loop.run_in_executor(pool, replies.close)
                    await loop.run_in_executor(pool, session.close)
            finally:
                pool.shutdown(wait=False)
                app.state.slots.release()

    return app


async def _send(ws: WebSocket, msg: dict[str, Any]) -> None:
    # The one send path: a NaN/inf anywhere in a reply becomes null (JSON has neither).
    await ws.send_text(dumps_reply(msg))


def serve(cfg: PlayConfig) -> None:
    """Run the server until Ctrl-C (what ``reverie play`` calls)."""
    import torch
    import uvicorn

    torch.set_num_threads(cfg.threads)
    world = cfg.world()
    app = create_app(
        cfg.checkpoint,
        cfg.env,
        cfg.session_config(world),
        cfg.max_sessions,
        cfg.plan_fps,
        cfg.policy_run,
    )
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(
        f"reverie play: open http://{host}:{cfg.port}  (env {app.state.shared.env_name}; "
        "Ctrl-C stops)",
        flush=True,
    )
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


if __name__ == "__main__":
    from reverie.cliargs import parse_config

    serve(parse_config(PlayConfig, sys.argv[1:], "reverie play"))
