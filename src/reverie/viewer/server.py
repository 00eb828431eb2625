"""The ``reverie play`` server: FastAPI, one static page at ``/``, one WebSocket at ``/ws``.

    reverie play --checkpoint runs/tworoom [--env tworoom] [--host 127.0.0.1] [--port 8000]
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
import json
import logging
import math
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

from reverie.viewer.session import PlaySession, SessionConfig, load_play_model

log = logging.getLogger("reverie.viewer")
_DONE = object()


@dataclass(frozen=True)
class PlayConfig:
    """``reverie play``: serve the explorable-imagination page for one checkpoint."""

    checkpoint: Path
    """Run directory with the world-model checkpoint and its decoder (``reverie train-decoder``)."""
    env: str | None = None
    """Environment to play in; None: the one the checkpoint was trained on."""
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
    plan_samples: int = 100
    """CEM candidates per iteration (evaluation uses 300; fewer keep planning interactive)."""
    plan_iterations: int = 10
    """CEM refits per replan."""
    plan_horizon: int = 5
    """Planned model steps per replan (the imagined trajectory shown)."""
    plan_max_steps: int = 40
    """Model steps one plan request may execute."""
    seed: int = 0
    """Seed of every session's first reset and random choices."""

    def __post_init__(self) -> None:
        if self.checkpoint is None:
            raise ValueError("--checkpoint RUN is required")
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
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

    def session_config(self) -> SessionConfig:
        """The per-connection settings these options make."""
        return SessionConfig(
            pred_horizon=self.pred_horizon,
            plan_samples=self.plan_samples,
            plan_iterations=self.plan_iterations,
            plan_elites=max(2, min(10, self.plan_samples // 10)),
            plan_horizon=self.plan_horizon,
            plan_execute=min(2, self.plan_horizon),
            plan_max_steps=self.plan_max_steps,
            seed=self.seed,
        )


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
) -> FastAPI:
    """The play app for ``checkpoint`` (loads the model now; ``ReverieError`` if it cannot)."""
    shared = load_play_model(checkpoint, env)
    session_config = session_config or SessionConfig()
    static = static_dir()
    index_html = (static / "index.html").read_text()
    app = FastAPI(title="reverie play", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.shared = shared
    app.state.sessions = set()
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
        if len(app.state.sessions) >= max_sessions:
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
            if session is not None:
                app.state.sessions.discard(session)
                if replies is not None:
                    await loop.run_in_executor(pool, replies.close)
                await loop.run_in_executor(pool, session.close)
            pool.shutdown(wait=False)

    return app


async def _send(ws: WebSocket, msg: dict[str, Any]) -> None:
    # JSON has no NaN/inf (the page's JSON.parse would fail): a diverged number becomes null.
    clean = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in msg.items()
    }
    await ws.send_text(json.dumps(clean, allow_nan=False, separators=(",", ":")))


def serve(cfg: PlayConfig) -> None:
    """Run the server until Ctrl-C (what ``reverie play`` calls)."""
    import torch
    import uvicorn

    torch.set_num_threads(cfg.threads)
    app = create_app(cfg.checkpoint, cfg.env, cfg.session_config(), cfg.max_sessions, cfg.plan_fps)
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(
        f"reverie play: open http://{host}:{cfg.port}  (env {app.state.shared.env_name}; "
        "Ctrl-C stops)",
        flush=True,
    )
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


if __name__ == "__main__":
    import tyro

    serve(tyro.cli(PlayConfig))
