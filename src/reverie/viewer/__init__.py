"""``reverie play``: drive a simulator in the browser and watch the world model imagine it.

    reverie play --checkpoint runs/tworoom            # then open http://127.0.0.1:8000
    python -m reverie.viewer.server --checkpoint runs/tworoom      # same, without the CLI

    from reverie.viewer import PlayConfig, create_app, serve
    serve(PlayConfig(checkpoint=Path("runs/tworoom")))  # blocks; Ctrl-C stops

``session.py`` holds the per-connection logic (plain Python, testable without a network),
``protocol.py`` the wire format (message parsing, images, NaN-safe JSON), ``play_model.py`` the
shared model and its checks, ``server.py`` the FastAPI app (static page at ``/``, WebSocket at
``/ws``), ``static/`` the page.
Names are imported lazily so ``python -m reverie.viewer.server`` runs without a double import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PlayConfig": "server",
    "create_app": "server",
    "serve": "server",
    "PlayModel": "play_model",
    "PlaySession": "session",
    "SessionConfig": "session",
    "load_play_model": "play_model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'reverie.viewer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"reverie.viewer.{_EXPORTS[name]}"), name)
