"""Viewer fixtures: one tiny trained checkpoint with a decoder, shared by every viewer test.

Collect 20 Two-Room episodes, train the ``tiny`` preset 50 steps and a decoder 60 steps (~15 s on
one core); the model is poor, which is fine: the tests check the plumbing, not the imagination.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Batch-1 inference gains nothing from a second thread; on a shared 2-core machine the
    # spinning of two OpenMP threads made each step ~5x slower (the server defaults to 1 too).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def play_run(tmp_path_factory: pytest.TempPathFactory, make_play_run) -> Path:
    root = tmp_path_factory.mktemp("play")
    return make_play_run(
        root, "tworoom", 20, 40, 50, shard_episodes=10, val_windows=32, decoder_steps=60
    )


@pytest.fixture(scope="session")
def serve():
    """``live_server`` for the test modules (conftests are not importable)."""
    return live_server


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < end and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def shared(play_run: Path):
    from reverie.viewer.play_model import load_play_model

    return load_play_model(play_run)
