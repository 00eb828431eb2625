"""WorldModel API: encode over any leading dims, predict, rollout semantics, config round trip,
and the teacher-forcing pairs the loss trains on (frame t + action t -> frame t+1).

    .venv/bin/python -m pytest tests/models/test_world_model.py -q
"""

from __future__ import annotations

import pytest
import torch

from reverie.models.encoder import EncoderConfig
from reverie.models.predictor import PredictorConfig
from reverie.models.world_model import WorldModel, WorldModelConfig, teacher_forcing_pairs


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors gain nothing from a second thread, and on a shared 2-core machine the
    # spinning of two OpenMP threads made these tests ~9x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


CFG = WorldModelConfig(
    EncoderConfig(channels=(8, 8, 16, 16), embed_dim=16),
    PredictorConfig(embed_dim=16, action_dim=4, history=3, hidden=32, depth=1, cond_dim=16),
    frameskip=2,
)


@pytest.fixture(scope="module")
def model() -> WorldModel:
    torch.manual_seed(0)
    wm = WorldModel(CFG)
    # Random (non-zero) modulation so predictions depend on history and action.
    with torch.no_grad():
        for p in wm.predictor.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return wm.eval()


def test_attributes(model: WorldModel) -> None:
    assert (model.history, model.action_dim, model.embed_dim, model.frameskip) == (3, 4, 16, 2)


def test_encode_accepts_any_leading_dims(model: WorldModel) -> None:
    obs = torch.randint(0, 256, (2, 5, 3, 64, 64), dtype=torch.uint8)
    z = model.encode(obs)
    assert z.shape == (2, 5, 16)
    torch.testing.assert_close(z[1, 3], model.encode(obs[1, 3]))
    assert model.encode(obs[0, 0]).shape == (16,)


def test_rollout_is_predict_fed_back(model: WorldModel) -> None:
    torch.manual_seed(1)
    ctx, actions = torch.randn(2, 5, 16), torch.randn(2, 4, 4)
    out = model.rollout(ctx, actions)
    assert out.shape == (2, 4, 16)
    window = ctx[:, -3:]  # only the last k of a longer context matter
    for h in range(4):
        z = model.predict(window, actions[:, h])
        torch.testing.assert_close(out[:, h], z)
        window = torch.cat([window[:, 1:], z[:, None]], 1)
    # A short context is left-padded by repeating its first embedding.
    short = ctx[:, :1]
    torch.testing.assert_close(
        model.rollout(short, actions), model.rollout(short.repeat(1, 3, 1), actions)
    )


def test_rollout_depends_on_actions(model: WorldModel) -> None:
    ctx, actions = torch.randn(2, 3, 16), torch.randn(2, 3, 4)
    assert (model.rollout(ctx, actions) - model.rollout(ctx, -actions)).abs().max() > 1e-3


def test_teacher_forcing_pairs_align_frame_action_and_next_frame() -> None:
    B, T, k = 2, 6, 3
    t = torch.arange(T, dtype=torch.float32)
    z = t[None, :, None].repeat(B, 1, 4) + 100 * torch.arange(B)[:, None, None]  # z[b, t] = t+100b
    actions = z[:, :-1, :2] + 0.5  # action t carries t + 0.5
    z_hist, act, target = teacher_forcing_pairs(z, actions, k)
    assert z_hist.shape == (B * (T - 1), k, 4) and act.shape == (B * (T - 1), 2)
    last = z_hist[:, -1, 0]
    torch.testing.assert_close(act[:, 0], last + 0.5)  # action t goes with history ending at t
    torch.testing.assert_close(target[:, 0], last + 1)  # ... and predicts frame t + 1
    torch.testing.assert_close(z_hist[:, -2, 0], torch.maximum(last - 1, last - last % 100))
    # The first window is left-padded with frame 0, as rollout pads a short context.
    torch.testing.assert_close(z_hist[0, :, 0], torch.zeros(3))


def test_config_round_trip_and_validation() -> None:
    d = CFG.to_dict()
    assert WorldModelConfig.from_dict(d) == CFG
    with pytest.raises(ValueError, match="unknown keys"):
        WorldModelConfig.from_dict({**d, "depth": 3})
    with pytest.raises(ValueError, match="embed_dim"):
        WorldModelConfig(EncoderConfig(embed_dim=8), PredictorConfig(embed_dim=16))
    with pytest.raises(ValueError, match="multiple of frameskip"):
        WorldModelConfig(EncoderConfig(), PredictorConfig(action_dim=3), frameskip=2)
