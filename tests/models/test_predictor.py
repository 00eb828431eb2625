"""Predictor behaviour: starts as copy-last, learns action-dependent dynamics through AdaLN-zero.

.venv/bin/python -m pytest tests/models/test_predictor.py -q
"""

from __future__ import annotations

import pytest
import torch

from reverie.models.predictor import Predictor, PredictorConfig


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors gain nothing from a second thread, and on a shared 2-core machine the
    # spinning of two OpenMP threads made these tests ~9x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


CFG = PredictorConfig(embed_dim=8, action_dim=2, history=3, hidden=64, depth=2, cond_dim=32)


def test_initial_prediction_is_the_last_embedding() -> None:
    torch.manual_seed(0)
    pred = Predictor(CFG)
    z_hist, a = torch.randn(4, 3, 8), torch.randn(4, 2)
    torch.testing.assert_close(pred(z_hist, a), z_hist[:, -1])


def test_shape_errors_name_the_expected_shapes() -> None:
    pred = Predictor(CFG)
    with pytest.raises(ValueError, match=r"\(B, 3, 8\)"):
        pred(torch.randn(4, 2, 8), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        pred(torch.randn(4, 3, 8), torch.randn(4, 3))


def test_learns_action_conditioned_dynamics() -> None:
    """z_{t+1} = z_t + W a_t (+ a history-dependent drift): the predictor must use the action."""
    torch.manual_seed(0)
    W = torch.randn(2, 8)
    pred = Predictor(CFG)
    opt = torch.optim.Adam(pred.parameters(), lr=3e-3)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z_hist, a = torch.randn(n, 3, 8), torch.rand(n, 2) * 2 - 1
        target = z_hist[:, -1] + a @ W + 0.5 * (z_hist[:, -1] - z_hist[:, -2])
        return z_hist, a, target

    for _ in range(300):
        z_hist, a, target = batch(128)
        loss = ((pred(z_hist, a) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    z_hist, a, target = batch(512)
    with torch.no_grad():
        mse = ((pred(z_hist, a) - target) ** 2).mean()
        copy_mse = ((z_hist[:, -1] - target) ** 2).mean()
        moved = (pred(z_hist, a) - pred(z_hist, -a)).norm(dim=1).mean()
        expected = (2 * a @ W).norm(dim=1).mean()
    assert mse < 0.1 * copy_mse
    assert moved > 0.7 * expected  # flipping the action flips the displacement


def test_condition_is_every_blocks_own_modulation() -> None:
    # condition() fuses the per-block modulation layers into one matmul; it must stay exactly the
    # blocks' own Sequential(SiLU, Linear) outputs, in order, or step() reads the wrong slices.
    torch.manual_seed(0)
    pred = Predictor(PredictorConfig(embed_dim=8, action_dim=3, history=2, hidden=16, depth=3))
    for layer in [b.modulation[1] for b in pred.blocks] + [pred.final_modulation[1]]:
        torch.nn.init.normal_(layer.weight)
        torch.nn.init.normal_(layer.bias)
    action = torch.randn(5, 4, 3)
    c = pred.embed_action(action)
    expected = torch.cat([b.modulation(c) for b in pred.blocks] + [pred.final_modulation(c)], -1)
    torch.testing.assert_close(pred.condition(action), expected)
