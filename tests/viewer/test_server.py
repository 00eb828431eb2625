"""The play server over a real ASGI WebSocket (Starlette's TestClient): page, protocol, errors,
isolation, refusal of cross-site pages, and 50 connect/disconnect cycles without a leak.

    .venv/bin/python -m pytest tests/viewer/test_server.py -q
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import resource
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from reverie.cliargs import parse_config
from reverie.io import ReverieError
from reverie.planning.options import PlannerOptions
from reverie.viewer.server import PlayConfig, SessionSlots, _send, create_app


@pytest.fixture(scope="module")
def app(play_run: Path):
    return create_app(play_run)


@pytest.fixture(scope="module")
def client(app) -> TestClient:
    with TestClient(app) as c:
        yield c


def open_session(ws) -> tuple[dict, dict]:
    hello, first = ws.receive_json(), ws.receive_json()
    assert hello["type"] == "hello" and first["type"] == "frame" and "final" not in first
    return hello, first


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/info").json()["env"] == "tworoom"


def test_websocket_round_trip(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        hello, first = open_session(ws)
        ws.send_text(json.dumps({"type": "action", "keys": ["right"]}))
        reply = ws.receive_json()
        assert reply["type"] == "frame" and reply["final"]
        assert reply["state"][0] > first["state"][0]
        ws.send_text('{"type": "ping", "t": 7}')
        pong = ws.receive_json()
        assert pong["type"] == "pong" and pong["t"] == 7 and pong["final"]


def test_errors_keep_the_connection_up(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        open_session(ws)
        for bad in ("{oops", '{"type": "teleport"}', "x" * 100_000, '"just a string"'):
            ws.send_text(bad)
            reply = ws.receive_json()
            assert reply["type"] == "error" and reply["final"], reply
        ws.send_bytes(b"\x89PNG")
        assert "binary" in ws.receive_json()["message"]
        ws.send_text('{"type": "action", "keys": ["down"]}')
        assert ws.receive_json()["type"] == "frame"


def test_concurrent_sessions_are_isolated(app, client: TestClient) -> None:
    with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
        _, first_a = open_session(a)
        _, first_b = open_session(b)
        assert len(app.state.sessions) == 2
        for _ in range(3):
            a.send_text('{"type": "action", "keys": ["right"]}')
            last_a = a.receive_json()
        a.send_text('{"type": "perturb", "kind": "gravity"}')
        assert a.receive_json()["factors"]["gravity"] == 1.0
        b.send_text('{"type": "action", "keys": []}')
        reply_b = b.receive_json()
        assert reply_b["state"][:2] == first_b["state"][:2] and reply_b["factors"]["gravity"] == 0
        assert last_a["state"][0] > first_a["state"][0]
    _wait_until(lambda: not app.state.sessions)


def _wait_until(cond, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def _cycle(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        open_session(ws)
        # Leave mid-step: the reply to this action is never read.
        ws.send_text('{"type": "action", "keys": ["left"]}')


def test_connect_disconnect_cycles_leak_nothing(app, client: TestClient) -> None:
    for _ in range(5):  # warm-up: first-use caches (allocator pools, torch kernels)
        _cycle(client)
    _wait_until(lambda: not app.state.sessions)
    gc.collect()
    threads = threading.active_count()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(50):
        _cycle(client)
    _wait_until(lambda: not app.state.sessions)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 1_000_000, f"Python heap grew {grown} bytes over 50 sessions"
    _wait_until(lambda: threading.active_count() <= threads + 1)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 50_000  # < 50 MB peak


def test_cross_site_pages_are_refused(client: TestClient) -> None:
    evil = {"origin": "http://evil.example"}
    with pytest.raises(WebSocketDisconnect) as e, client.websocket_connect("/ws", headers=evil):
        pass
    assert e.value.code == 1008
    with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:
        open_session(ws)


def test_sessions_beyond_the_limit_are_refused(play_run: Path) -> None:
    with TestClient(create_app(play_run, max_sessions=1)) as c, c.websocket_connect("/ws") as ws:
        open_session(ws)
        with c.websocket_connect("/ws") as second:
            assert "busy" in second.receive_json()["message"]


def test_concurrent_connects_never_exceed_the_limit(play_run: Path) -> None:
    app = create_app(play_run, max_sessions=1)
    n = 4
    start, hold = threading.Barrier(n), threading.Barrier(n, timeout=60)
    first: list[dict] = []

    def connect(c: TestClient) -> None:
        start.wait()
        with c.websocket_connect("/ws") as ws:
            first.append(ws.receive_json())
            hold.wait()  # every connection is open (or refused) at once

    with TestClient(app) as c:
        threads = [threading.Thread(target=connect, args=(c,)) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert len(first) == n
        kinds = sorted(m["type"] for m in first)
        assert kinds == ["error"] * (n - 1) + ["hello"], kinds
        _wait_until(lambda: not app.state.sessions and app.state.slots.taken == 0)
        with c.websocket_connect("/ws") as ws:  # slots come back when sessions end
            open_session(ws)


def test_session_slots_admit_exactly_the_limit_under_threads() -> None:
    slots, n = SessionSlots(3), 32
    start = threading.Barrier(n)
    got: list[bool] = []

    def take() -> None:
        start.wait()
        got.append(slots.acquire())

    threads = [threading.Thread(target=take) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got.count(True) == 3 and slots.taken == 3
    slots.release()
    assert slots.acquire() and not slots.acquire()


def test_nan_anywhere_in_a_reply_is_sent_as_null() -> None:
    class Socket:
        text = ""

        async def send_text(self, text: str) -> None:
            Socket.text = text

    msg = {
        "type": "frame",
        "surprise": math.nan,
        "state": [1.0, math.nan, -math.inf],
        "factors": {"gravity": math.inf, "mass": 1.0},
        "plan": [{"cost": math.nan}],
    }
    asyncio.run(_send(Socket(), msg))
    sent = json.loads(Socket.text)
    assert sent["surprise"] is None and sent["state"] == [1.0, None, None]
    assert sent["factors"] == {"gravity": None, "mass": 1.0} and sent["plan"] == [{"cost": None}]


def test_play_planner_flags_are_the_shared_ones() -> None:
    argv = ["--checkpoint", "runs/x", "--samples", "50", "--iterations", "3", "--elites", "5"]
    cfg = parse_config(PlayConfig, [*argv, "--horizon", "4"], "reverie play")
    assert cfg.planning == PlannerOptions(samples=50, iterations=3, elites=5, horizon=4)
    session = cfg.session_config()
    assert session.planning == cfg.planning and session.plan_execute == 2
    default = parse_config(PlayConfig, ["--checkpoint", "runs/x"], "reverie play").planning
    assert default == PlannerOptions(samples=100, iterations=10, elites=10, horizon=5)
    with pytest.raises(SystemExit):
        parse_config(PlayConfig, ["--checkpoint", "x", "--plan-samples", "50"], "reverie play")


def test_startup_fails_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ReverieError) as e:
        create_app(tmp_path / "missing")
    assert "not found" in str(e.value) and "\n" not in str(e.value)


def test_play_config_binds_localhost_by_default() -> None:
    cfg = PlayConfig(checkpoint=Path("runs/x"))
    assert cfg.host == "127.0.0.1" and cfg.port == 8000 and cfg.env is None
    with pytest.raises(ValueError, match="--port"):
        PlayConfig(checkpoint=Path("x"), port=0)
