"""Encoder behaviour: pixel handling, both backbones, and the collapse detector.

.venv/bin/python -m pytest tests/models/test_encoder.py -q
"""

from __future__ import annotations

import pytest
import torch

from reverie.models.encoder import EncoderConfig, build_encoder
from reverie.models.sigreg import collapse_problems, embedding_health


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors gain nothing from a second thread, and on a shared 2-core machine the
    # spinning of two OpenMP threads made these tests ~9x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY_CNN = EncoderConfig(channels=(8, 16, 16, 16), embed_dim=16)
TINY_VIT = EncoderConfig(kind="vit", embed_dim=16, patch_size=16, width=32, depth=1, heads=2)


@pytest.mark.parametrize("cfg", [TINY_CNN, TINY_VIT], ids=["cnn", "vit"])
def test_uint8_and_float_pixels_give_the_same_embedding(cfg: EncoderConfig) -> None:
    torch.manual_seed(0)
    enc = build_encoder(cfg).eval()
    frames = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8)
    z = enc(frames)
    assert z.shape == (5, 16)
    torch.testing.assert_close(z, enc(frames.float()))
    assert torch.isfinite(z).all()


def test_embedding_depends_on_the_image() -> None:
    torch.manual_seed(0)
    enc = build_encoder(TINY_CNN).eval()
    frames = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    frames[1, :, 20:30, 20:30] = 255  # one square differs
    z = enc(frames)
    assert (z[0] - z[1]).abs().max() > 1e-3


def test_wrong_image_size_is_refused() -> None:
    enc = build_encoder(TINY_CNN)
    with pytest.raises(ValueError, match="64, 64"):
        enc(torch.zeros(1, 3, 32, 32))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        EncoderConfig(kind="resnet")
    with pytest.raises(ValueError, match="patch_size"):
        EncoderConfig(kind="vit", patch_size=7)
    # JSON round trips give lists: they normalise to the same (hashable) config.
    assert EncoderConfig(channels=[8, 16]) == EncoderConfig(channels=(8, 16))


def test_collapse_detector_flags_a_collapsed_encoder_and_passes_a_healthy_embedding() -> None:
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (64, 3, 64, 64), dtype=torch.uint8)
    enc = build_encoder(TINY_CNN)
    for m in enc.modules():  # running statistics = this batch's, so eval mode matches train mode
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    enc(frames)
    enc.eval()
    with torch.no_grad():
        healthy = embedding_health(enc(frames))
        assert collapse_problems(healthy, 16) == []
        # Collapse it deliberately: the projection ignores its input.
        linear, norm = enc.net.proj[0], enc.net.proj[1]
        linear.weight.zero_()
        norm.running_var.fill_(1.0)
        collapsed = embedding_health(enc(frames))
    assert collapsed["std_mean"] < 1e-6 and collapsed["eff_rank"] == 0.0
    assert any("std" in p for p in collapse_problems(collapsed, 16))


def test_health_metrics_on_known_distributions() -> None:
    torch.manual_seed(0)
    iso = embedding_health(torch.randn(2000, 16))
    assert 0.95 < iso["std_mean"] < 1.05 and iso["eff_rank"] > 15
    line = torch.randn(2000, 1) * torch.ones(1, 16)  # every dimension the same number: rank 1
    rank1 = embedding_health(line)
    assert rank1["std_mean"] > 0.9 and rank1["eff_rank"] < 1.01
    assert any("rank" in p for p in collapse_problems(rank1, 16))
