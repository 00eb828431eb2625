"""Decoder: trained on frozen embeddings (no gradient reaches the JEPA), beats the mean-frame
baseline on held-out episodes, saves its own run (RUN/decoder), refuses corrupt or stale files,
and still loads the layout written before (decoder.json beside the world model).

    .venv/bin/python -m pytest tests/models/test_decoder.py -q
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from reverie.checkpoint import save_checkpoint
from reverie.data.dataset import SequenceDataset
from reverie.io import ReverieError
from reverie.models.decoder import (
    DECODER_DIR,
    Decoder,
    DecoderConfig,
    DecoderTrainConfig,
    frozen_embeddings,
    load_decoder,
    psnr,
    reconstruction_loss,
    train_decoder,
)
from reverie.models.encoder import EncoderConfig
from reverie.models.predictor import PredictorConfig
from reverie.models.world_model import WorldModel, WorldModelConfig

CFG = WorldModelConfig(
    EncoderConfig(channels=(8, 16, 32, 32), embed_dim=32),
    PredictorConfig(embed_dim=32, action_dim=2, history=2, hidden=32, depth=1, cond_dim=16),
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Small convs gain nothing from a second thread on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_model(run: Path, data: Path, seed: int = 0, val: list[int] | None = None) -> WorldModel:
    torch.manual_seed(seed)
    model = WorldModel(CFG).eval()
    save_checkpoint(
        run,
        model,
        step=seed,
        env_name="tworoom",
        extra={"data": {"path": str(data), "val_episodes": val if val is not None else [28, 29]}},
    )
    return model


@pytest.fixture(scope="module")
def trained_run(tworoom_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("decoder-run")
    _save_model(run, tworoom_data)
    report = train_decoder(DecoderTrainConfig(checkpoint=run, steps=100, progress=False))
    return run, report


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="power of two"):
        DecoderConfig(embed_dim=8, image_size=48)
    with pytest.raises(ValueError, match="4 positive ints"):
        DecoderConfig(embed_dim=8, image_size=64, channels=(8, 8, 8))
    with pytest.raises(ValueError, match="--steps"):
        DecoderTrainConfig(checkpoint=Path("x"), steps=0)
    with pytest.raises(ValueError, match="--loss"):
        DecoderTrainConfig(checkpoint=Path("x"), loss="huber")
    assert DecoderConfig.from_dict(DecoderConfig(8).to_dict()) == DecoderConfig(8)


def test_decode_shapes() -> None:
    dec = Decoder(DecoderConfig(embed_dim=8, image_size=32, channels=(8, 8, 8))).eval()
    frames = dec.decode_uint8(torch.randn(2, 5, 8))
    assert frames.shape == (2, 5, 32, 32, 3) and frames.dtype.name == "uint8"
    x = dec(torch.randn(3, 8))
    assert (
        x.shape == (3, 3, 32, 32) and float(x.detach().min()) >= 0 and float(x.detach().max()) <= 1
    )


def test_no_gradient_reaches_the_world_model(tworoom_data: Path) -> None:
    torch.manual_seed(0)
    model = WorldModel(CFG).train()  # trainable on purpose: only the code path may freeze it
    obs = SequenceDataset(tworoom_data, 1, 0, episodes=[0]).obs[:16]  # (16, 3, 64, 64)
    stats = [b.clone() for b in model.buffers()]
    z = frozen_embeddings(model, obs)
    assert model.training, "frozen_embeddings must restore the model's mode"
    dec = Decoder(DecoderConfig(CFG.encoder.embed_dim))
    loss = reconstruction_loss(dec, z, obs, "l1", obs.float().mean(0) / 255, 20.0)
    loss.backward()
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is not None for p in dec.parameters())
    # Eval mode while encoding: BatchNorm running statistics did not move either.
    assert all(torch.equal(a, b) for a, b in zip(stats, model.buffers()))
    # The control: the same loss through an encoding *with* autograd does reach the encoder.
    loss = reconstruction_loss(dec, model.encode(obs), obs)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_train_decoder_learns_and_saves(trained_run: tuple[Path, dict], tworoom_data: Path) -> None:
    run, report = trained_run
    assert report["val_source"] == "episodes the world model held out"
    assert report["val_episodes"] == [28, 29] and report["val_frames"] == 2 * 61
    info = json.loads((run / DECODER_DIR / "config.json").read_text())
    assert info["kind"] == "reverie-decoder" and report["path"] == str(run / DECODER_DIR)
    assert info["metrics"]["psnr_val"] == pytest.approx(report["psnr_val"])
    decoder, loaded_info = load_decoder(run)
    assert loaded_info["world_model_step"] == 0 and not decoder.training
    # The report's PSNR is the loaded decoder's on the held-out frames, and far above its start.
    model = WorldModel(CFG)
    model.load_state_dict(_reload_weights(run))
    obs = SequenceDataset(tworoom_data, 1, 0, episodes=[28, 29]).obs
    z = frozen_embeddings(model, obs)
    assert psnr(decoder, z, obs) == pytest.approx(report["psnr_val"], abs=1e-3)
    torch.manual_seed(0)
    untrained = Decoder(decoder.config).eval()
    assert report["psnr_val"] > psnr(untrained, z, obs) + 5.0, report
    # Loading twice gives identical outputs (weights, BatchNorm statistics and all).
    zr = torch.randn(4, CFG.encoder.embed_dim)
    assert torch.equal(decoder(zr), load_decoder(run)[0](zr))


def _reload_weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "model.safetensors")


@pytest.mark.slow
def test_decoder_on_a_trained_jepa_beats_the_mean_frame(tworoom_data: Path, tmp_path: Path) -> None:
    """On a (briefly) trained encoder the decoder draws the agent, not just the background."""
    from reverie.train import TrainConfig, train

    run = train(
        TrainConfig(
            data=tworoom_data,
            out=tmp_path / "run",
            preset="tiny",
            steps=50,
            tensorboard=False,
            progress=False,
        )
    )
    report = train_decoder(DecoderTrainConfig(checkpoint=run, steps=400, progress=False))
    # Measured: 32.9 dB against the mean frame's 27.8 (the agent covers 0.5% of the pixels).
    assert report["psnr_val"] > report["psnr_mean_frame"] + 3.0, report


def test_training_leaves_the_checkpoint_untouched(tworoom_data: Path, tmp_path: Path) -> None:
    _save_model(tmp_path, tworoom_data, val=[])
    before = _sha(tmp_path / "model.safetensors")
    report = train_decoder(DecoderTrainConfig(checkpoint=tmp_path, steps=2, progress=False))
    assert _sha(tmp_path / "model.safetensors") == before
    assert report["val_source"] == "last 10% of episodes" and report["val_episodes"] == [27, 28, 29]


def _one_line_error(run: Path, needle: str) -> None:
    with pytest.raises(ReverieError) as e:
        load_decoder(run)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_load_refuses_bad_files(trained_run: tuple[Path, dict], tmp_path: Path) -> None:
    run, _ = trained_run
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    load_decoder(bad)  # the copy is fine
    weights_file = bad / DECODER_DIR / "model.safetensors"
    weights = bytearray(weights_file.read_bytes())
    weights[-10] ^= 0xFF
    weights_file.write_bytes(bytes(weights))
    _one_line_error(bad, "checksum")
    weights_file.write_bytes((run / DECODER_DIR / "model.safetensors").read_bytes())
    (bad / DECODER_DIR / "config.json").write_text("{not json")
    _one_line_error(bad, "train-decoder")  # not a decoder run any more: none found
    shutil.rmtree(bad / DECODER_DIR)
    _one_line_error(bad, "train-decoder")


def test_existing_decoder_is_kept_unless_asked(trained_run: tuple[Path, dict]) -> None:
    run, _ = trained_run
    before = _sha(run / DECODER_DIR / "model.safetensors")
    with pytest.raises(ReverieError, match="--resume"):
        train_decoder(DecoderTrainConfig(checkpoint=run, steps=3, progress=False))
    assert _sha(run / DECODER_DIR / "model.safetensors") == before
    with pytest.raises(ValueError, match="exclude"):
        DecoderTrainConfig(checkpoint=run, resume=True, overwrite=True)


def test_legacy_decoder_beside_the_checkpoint_still_loads() -> None:
    """A run written by the code before the shared layout (tests/fixtures, commit 47a1bcc)."""
    from safetensors.torch import load_file

    fixtures = Path(__file__).parents[1] / "fixtures"
    decoder, info = load_decoder(fixtures / "legacy_run")
    ref = load_file(fixtures / "legacy_outputs.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(decoder(ref["z_in"]), ref["decode"])
    assert info["metrics"]["psnr_val"] == 20.0


def test_stale_decoder_is_refused(
    trained_run: tuple[Path, dict], tworoom_data: Path, tmp_path: Path
) -> None:
    run, _ = trained_run
    _save_model(tmp_path, tworoom_data, seed=1)  # other weights, same architecture
    shutil.copytree(run / DECODER_DIR, tmp_path / DECODER_DIR)
    _one_line_error(tmp_path, "other world-model weights")


def test_missing_dataset_is_one_line(tmp_path: Path) -> None:
    _save_model(tmp_path, tmp_path / "gone")
    with pytest.raises(ReverieError, match="dataset of .* not found"):
        train_decoder(DecoderTrainConfig(checkpoint=tmp_path, steps=1, progress=False))
