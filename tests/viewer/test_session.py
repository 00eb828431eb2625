"""Play-session logic without a network: messages in, replies out, on a tiny trained checkpoint.

.venv/bin/python -m pytest tests/viewer/test_session.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.checkpoint import load_checkpoint, save_checkpoint
from reverie.io import ReverieError
from reverie.planning.options import PlannerOptions
from reverie.viewer.play_model import PlayModel, load_play_model
from reverie.viewer.protocol import decode_image
from reverie.viewer.session import PlaySession, SessionConfig


def send(session: PlaySession, msg: dict | str) -> list[dict]:
    replies = list(session.handle(msg if isinstance(msg, str) else json.dumps(msg)))
    assert replies and replies[-1]["final"] is True
    assert all("final" not in r for r in replies[:-1])
    json.dumps(replies, allow_nan=False)  # every reply is valid JSON for the page
    return replies


def step(session: PlaySession, **msg) -> dict:
    (reply,) = send(session, {"type": "action", **msg})
    assert reply["type"] == "frame", reply
    return reply


def test_hello_and_initial_view(shared) -> None:
    s = PlaySession(shared)
    hello = s.hello()
    assert hello["env"] == "tworoom" and hello["image_size"] == 64 and hello["action_dim"] == 2
    assert hello["decoder_psnr"] > 0
    view = s.initial_view()
    assert "final" not in view and view["surprise"] is None
    for key in ("real", "recon", "dream"):
        assert decode_image(view[key], 64).shape == (64, 64, 3)
    assert len(view["pred"]) == hello["pred_horizon"] == 3
    assert np.array_equal(decode_image(view["real"], 64), s.env.render())


def test_keys_move_the_agent_with_surprise_and_predictions(shared) -> None:
    s = PlaySession(shared)
    x0, y0 = s.env.get_state()[:2]
    for _ in range(4):
        reply = step(s, keys=["right"])
        assert reply["mode"] == "live" and reply["surprise"] >= 0 and len(reply["pred"]) == 3
    x1, y1 = reply["state"][:2]
    assert x1 > x0 + 10 and abs(y1 - y0) < 1e-3  # states are rounded to 4 decimals
    for _ in range(3):
        reply = step(s, keys=["up"])
    assert reply["state"][1] < y1 - 10  # up on screen is -y in Two-Room
    reply = step(s, action=[0.0, 1.0])
    assert reply["state"][3] > 0
    assert np.array_equal(decode_image(reply["real"], 64), s.env.render())


def test_dream_mode_runs_with_the_simulator_off(shared) -> None:
    s = PlaySession(shared)
    step(s, keys=["right"])
    state = s.env.get_state()
    (reply,) = send(s, {"type": "mode", "mode": "dream"})
    assert reply["mode"] == "dream" and torch.equal(s.dream, s.window)
    dreams = []
    for _ in range(5):
        reply = step(s, keys=["left"])
        assert reply["mode"] == "dream" and reply["real"] is None and reply["surprise"] is None
        dreams.append(decode_image(reply["dream"], 64))
    assert np.array_equal(s.env.get_state(), state)  # the simulator never moved
    assert not torch.equal(s.dream, s.window)  # the dream did
    assert any(not np.array_equal(dreams[0], d) for d in dreams[1:])
    (reply,) = send(s, {"type": "resync"})
    assert torch.equal(s.dream, s.window) and reply["dream"] is not None
    send(s, {"type": "mode", "mode": "live"})
    assert step(s, keys=["left"])["state"][0] < state[0]


def test_perturbations_raise_surprise(shared) -> None:
    s = PlaySession(shared)
    calm = [step(s, keys=[])["surprise"] for _ in range(6)]
    x, y = s.env.get_state()[:2]
    (reply,) = send(s, {"type": "perturb", "kind": "teleport"})
    assert "teleported" in reply["event"]
    assert np.hypot(reply["state"][0] - x, reply["state"][1] - y) >= 80
    assert reply["surprise"] > 3 * max(calm), (reply["surprise"], calm)
    (reply,) = send(s, {"type": "perturb", "kind": "gravity"})
    assert reply["factors"]["gravity"] == 1.0
    (reply,) = send(s, {"type": "perturb", "kind": "gravity"})
    assert reply["factors"]["gravity"] == -1.0
    (reply,) = send(s, {"type": "perturb", "kind": "delete"})
    assert reply["hidden"] and reply["state"][0] < 0
    frame = decode_image(step(s, keys=["right"])["real"], 64)
    assert not np.any((frame[..., 0] > 180) & (frame[..., 1] < 100))  # no red agent drawn
    (reply,) = send(s, {"type": "perturb", "kind": "teleport", "x": 0.25, "y": 0.5})
    # Gravity is still flipped: the step after the teleport drifts the agent 2 units up.
    assert not reply["hidden"] and reply["state"][:2] == pytest.approx([56.0, 110.0])
    (reply,) = send(s, {"type": "reset", "seed": 1})
    assert reply["factors"]["gravity"] == 0.0


@pytest.mark.parametrize(
    "raw, needle",
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", 'string "type"'),
        ('{"type": "fly"}', "unknown message type 'fly'"),
        ("x" * 70_000, "limit"),
        (b"\x00\x01", "binary"),
        ('{"type": "action", "action": [1]}', "2 finite numbers"),
        ('{"type": "action", "action": [NaN, 0]}', "finite"),
        ('{"type": "action", "keys": ["jump"]}', '"keys"'),
        ('{"type": "mode", "mode": "sleep"}', '"mode"'),
        ('{"type": "perturb", "kind": "explode"}', "unknown perturbation"),
        ('{"type": "plan", "goal": {"x": 0.5, "y": 0.1}}', "inside the wall"),
        ('{"type": "plan", "goal": {"x": 3, "y": 0.1}}', "in [0, 1]"),
        ('{"type": "plan"}', "plan needs"),
        ('{"type": "reset", "seed": -1}', "seed"),
    ],
)
def test_bad_messages_get_one_error_and_the_session_goes_on(shared, raw, needle) -> None:
    s = PlaySession(shared)
    before = s.env.get_state()
    (reply,) = list(s.handle(raw))
    assert reply["type"] == "error" and reply["final"], reply
    assert needle in reply["message"] and "\n" not in reply["message"]
    assert np.array_equal(s.env.get_state(), before)
    assert step(s, keys=["right"])["state"][0] > before[0]


def test_plan_streams_imagination_then_execution(shared) -> None:
    cfg = SessionConfig(
        planning=PlannerOptions(samples=16, iterations=2, elites=4, horizon=3),
        plan_execute=2,
        plan_max_steps=4,
    )
    s = PlaySession(shared, cfg)
    replies = send(s, {"type": "plan", "goal": {"x": 0.8, "y": 0.2}})
    kinds = [r["type"] for r in replies]
    assert kinds == ["plan", "frame", "frame", "plan", "frame", "frame", "plan_done"], kinds
    first = replies[0]
    assert decode_image(first["goal"], 64).shape == (64, 64, 3) and "goal_view" in first
    assert len(first["imagined"]) == 3 and first["plan_ms"] > 0
    assert all(r["source"] == "plan" for r in replies if r["type"] == "frame")
    assert replies[-1]["steps"] == 4 and np.array_equal(s.env.goal[:2], [0.8 * 224, 0.2 * 224])
    replies = send(s, {"type": "plan", "goal_image": "random"})
    assert replies[0]["type"] == "plan" and replies[-1]["type"] == "plan_done"


class StubModel:
    """Stands in for a world model with frameskip 2 (the tiny fixture's is 1): the plumbing only."""

    image_size, frameskip, history, embed_dim, action_dim = 64, 2, 2, 8, 4

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.float().mean((1, 2, 3))[:, None].expand(-1, self.embed_dim)  # (B, D)

    def predict(self, window: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return window[:, -1]  # (B, D)

    def rollout(self, window: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return window[:, -1:].expand(-1, actions.shape[1], -1)  # (B, H, D)


class StubDecoder:
    def decode_uint8(self, z: torch.Tensor) -> np.ndarray:
        return np.zeros((len(z), 64, 64, 3), np.uint8)


def test_plan_tests_success_after_every_env_step(monkeypatch) -> None:
    class FullSpeedRight:  # stands in for CEM: the plan is known, so success is too
        def __init__(self, config, action_dim: int) -> None:
            self.horizon, self.action_dim = config.horizon, action_dim

        def plan(self, objective, init_mean=None):
            return torch.tensor([1.0, 0.0] * (self.action_dim // 2)).expand(1, 3, -1), {}

    import reverie.planning

    monkeypatch.setattr(reverie.planning, "CEM", FullSpeedRight)
    cfg = SessionConfig(planning=PlannerOptions(samples=16, iterations=2, elites=4, horizon=3))
    stub = PlayModel(StubModel(), StubDecoder(), {}, {}, "tworoom", Path("stub"))
    s = PlaySession(stub, cfg)
    s.env.set_state(np.array([40.0, 112.0, 0.0, 0.0]))
    # One env step at full speed moves 8 units: 12 from the goal, inside the 16-unit radius, in
    # the middle of the first 2-step model step (a whole one would end at x = 56).
    replies = send(s, {"type": "plan", "goal": {"x": 60 / 224, "y": 0.5}})
    assert [r["type"] for r in replies] == ["plan", "frame", "plan_done"]
    frame, done = replies[1], replies[2]
    assert frame["state"][0] == pytest.approx(48.0) and frame["success"]
    assert frame["surprise"] is None  # the block was cut short: not what the model predicted
    assert done["success"] and done["steps"] == 1 and done["replans"] == 1
    assert done["distance"] == pytest.approx(12.0) and replies[0]["cost"] is None
    assert np.array_equal(decode_image(frame["real"], 64), s.env.render())


def test_sessions_are_isolated(shared) -> None:
    a, b = PlaySession(shared), PlaySession(shared)
    state_b = b.env.get_state()
    for _ in range(3):
        step(a, keys=["down"])
    send(a, {"type": "perturb", "kind": "gravity"})
    send(a, {"type": "mode", "mode": "dream"})
    assert np.array_equal(b.env.get_state(), state_b)
    assert b.env.factors["gravity"] == 0.0 and b.mode == "live"
    assert a.env is not b.env


def test_startup_errors_are_one_line(play_run: Path, tmp_path: Path) -> None:
    def one_line(fn, needle: str) -> None:
        with pytest.raises(ReverieError) as e:
            fn()
        assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)

    one_line(lambda: load_play_model(tmp_path / "nope"), "not found")
    one_line(lambda: load_play_model(play_run, env="mars"), "unknown environment")
    model, _ = load_checkpoint(play_run)
    save_checkpoint(tmp_path / "bare", model, step=1, env_name="tworoom")
    one_line(lambda: load_play_model(tmp_path / "bare"), "train-decoder")
