"""Checkpoints: save -> load gives identical outputs; corrupt, truncated or incompatible files are
refused with one-line errors; old formats are patched forward; training state round-trips.

    .venv/bin/python -m pytest tests/test_checkpoint.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import reverie
from reverie import checkpoint
from reverie.checkpoint import (
    flatten_state,
    load_checkpoint,
    load_train_state,
    save_checkpoint,
    unflatten_state,
)
from reverie.io import ReverieError
from reverie.models.encoder import EncoderConfig
from reverie.models.predictor import PredictorConfig
from reverie.models.world_model import WorldModel, WorldModelConfig

CFG = WorldModelConfig(
    EncoderConfig(channels=(8, 8, 16, 16), embed_dim=16),
    PredictorConfig(embed_dim=16, action_dim=2, history=2, hidden=32, depth=1, cond_dim=16),
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Small tensors gain nothing from a second thread on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _trained_ish_model() -> WorldModel:
    """A model with non-trivial weights and BatchNorm statistics (as after training)."""
    torch.manual_seed(0)
    wm = WorldModel(CFG)
    with torch.no_grad():
        for p in wm.predictor.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    wm.encode(torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8))  # updates BN statistics
    return wm.eval()


@pytest.fixture()
def run(tmp_path: Path) -> tuple[Path, WorldModel]:
    wm = _trained_ish_model()
    save_checkpoint(
        tmp_path / "run",
        wm,
        step=42,
        metrics={"val/pred_mse": 0.5},
        env_name="tworoom",
        manifest_hash="abc123",
        train_state={"step": 42, "rng": torch.get_rng_state()},
    )
    return tmp_path / "run", wm


def test_save_then_load_gives_identical_outputs(run: tuple[Path, WorldModel]) -> None:
    path, wm = run
    loaded, meta = load_checkpoint(path)
    assert not loaded.training and loaded.config == wm.config
    torch.manual_seed(1)
    obs = torch.randint(0, 256, (3, 4, 3, 64, 64), dtype=torch.uint8)
    actions = torch.randn(3, 5, 2)
    with torch.no_grad():
        z, z2 = wm.encode(obs), loaded.encode(obs)
        assert torch.equal(z, z2)
        assert torch.equal(
            wm.predict(z[:, -2:], actions[:, 0]), loaded.predict(z2[:, -2:], actions[:, 0])
        )
        assert torch.equal(wm.rollout(z, actions), loaded.rollout(z2, actions))
    assert meta["step"] == 42 and meta["env"] == "tworoom" and meta["manifest_hash"] == "abc123"
    assert meta["format_version"] == checkpoint.FORMAT_VERSION
    assert meta["reverie_version"] == reverie.__version__
    assert meta["metrics"] == {"val/pred_mse": 0.5}
    # A path to a file inside the run works too.
    assert load_checkpoint(path / "config.json")[1]["step"] == 42


def _one_line_error(path: Path, match: str) -> None:
    with pytest.raises(ReverieError, match=match) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_missing_checkpoint_is_refused(tmp_path: Path) -> None:
    _one_line_error(tmp_path / "nope", "not found")
    (tmp_path / "empty").mkdir()
    _one_line_error(tmp_path / "empty", "not found")


def test_truncated_weights_are_refused(run: tuple[Path, WorldModel]) -> None:
    path, _ = run
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    _one_line_error(path, "checksum")


def test_corrupt_weights_are_refused(run: tuple[Path, WorldModel]) -> None:
    path, _ = run
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the last tensor
    (path / "model.safetensors").write_bytes(bytes(data))
    _one_line_error(path, "checksum")


def test_corrupt_or_incompatible_config_is_refused(run: tuple[Path, WorldModel]) -> None:
    path, _ = run
    cfg_file = path / "config.json"
    good = json.loads(cfg_file.read_text())

    cfg_file.write_text("{not json")
    _one_line_error(path, "not valid JSON")

    cfg_file.write_text(json.dumps({**good, "format_version": checkpoint.FORMAT_VERSION + 1}))
    _one_line_error(path, "newer")

    cfg_file.write_text(json.dumps({**good, "format_version": 0}))
    _one_line_error(path, "cannot upgrade")

    bad_model = json.loads(json.dumps(good))
    bad_model["model"]["predictor"]["hidden"] = 64  # weights no longer fit
    cfg_file.write_text(json.dumps(bad_model))
    _one_line_error(path, "do not fit")

    bad_model["model"]["predictor"]["wings"] = 2
    cfg_file.write_text(json.dumps(bad_model))
    _one_line_error(path, "incompatible model config")

    cfg_file.write_text(json.dumps({**good, "kind": "something-else"}))
    _one_line_error(path, "not a reverie")


def test_old_format_is_patched_forward(run: tuple[Path, WorldModel], monkeypatch) -> None:
    path, wm = run
    cfg_file = path / "config.json"
    meta = json.loads(cfg_file.read_text())
    # Pretend version 0 called the model config "architecture".
    meta["format_version"] = 0
    meta["architecture"] = meta.pop("model")
    cfg_file.write_text(json.dumps(meta))

    def upgrade(old: dict) -> dict:
        new = dict(old)
        new["model"] = new.pop("architecture")
        return new

    monkeypatch.setitem(checkpoint.UPGRADES, 0, upgrade)
    loaded, meta = load_checkpoint(path)
    assert meta["format_version"] == checkpoint.FORMAT_VERSION
    assert loaded.config == wm.config


def test_train_state_round_trip_restores_an_optimizer_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, betas=(0.8, 0.99))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    gen = torch.Generator().manual_seed(5)
    state = {"optimizer": opt.state_dict(), "sampler": gen.get_state(), "note": None}
    tensors, skeleton = flatten_state(state)
    restored = unflatten_state(tensors, json.loads(json.dumps(skeleton)))  # through JSON
    assert restored["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.99)

    net2 = torch.nn.Linear(4, 3)
    net2.load_state_dict(net.state_dict())
    opt2 = torch.optim.AdamW(net2.parameters(), lr=1e-2)
    opt2.load_state_dict(restored["optimizer"])
    gen2 = torch.Generator()
    gen2.set_state(restored["sampler"])
    x = torch.randn(5, 4)
    for o, n in ((opt, net), (opt2, net2)):
        o.zero_grad()
        n(x).pow(2).sum().backward()
        o.step()
    assert torch.equal(net.weight, net2.weight)
    assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=gen2))

    save_checkpoint(tmp_path, _trained_ish_model(), step=3, train_state=state)
    loaded, meta = load_train_state(tmp_path)
    assert meta["step"] == 3 and loaded["note"] is None
    assert torch.equal(loaded["sampler"], state["sampler"])


def test_mismatched_train_state_is_refused(run: tuple[Path, WorldModel]) -> None:
    path, _ = run
    (path / "train_state.safetensors").write_bytes(b"garbage")
    with pytest.raises(ReverieError, match="checksum"):
        load_train_state(path)


# ------------------------------------------------------------------------ crash-safe save, layout
@pytest.mark.parametrize("crash_at", range(6))
def test_a_crash_at_any_point_of_a_save_leaves_a_loadable_checkpoint(
    run: tuple[Path, WorldModel], monkeypatch, crash_at: int
) -> None:
    """Kill the save at each of its renames (and the removal of .previous): the run still loads,
    as the old checkpoint or the new one, never a mix; the next save cleans up."""
    import os
    import shutil

    path, old = run
    torch.manual_seed(1)
    new = WorldModel(CFG).eval()
    calls = {"n": 0}
    real_replace, real_rmtree = os.replace, shutil.rmtree

    def crashing_replace(src, dst):
        if calls["n"] == crash_at:
            raise KeyboardInterrupt("power cut")
        calls["n"] += 1
        real_replace(src, dst)

    def crashing_rmtree(p, *a, **kw):
        if Path(p).name == checkpoint.PREVIOUS and calls["n"] == crash_at:
            raise KeyboardInterrupt("power cut")
        real_rmtree(p, *a, **kw)

    monkeypatch.setattr(os, "replace", crashing_replace)
    monkeypatch.setattr(shutil, "rmtree", crashing_rmtree)
    state = {"step": 43, "rng": torch.get_rng_state()}
    crashed = True
    try:
        save_checkpoint(path, new, step=43, env_name="tworoom", train_state=state)
        crashed = False
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    loaded, meta = load_checkpoint(path)
    want = new if meta["step"] == 43 else old
    assert meta["step"] in (42, 43)
    for a, b in zip(loaded.state_dict().values(), want.state_dict().values()):
        assert torch.equal(a, b)
    assert load_train_state(path)[1]["step"] == meta["step"]  # the train state agrees
    assert crashed or meta["step"] == 43
    save_checkpoint(path, new, step=44, train_state={"step": 44})
    assert load_checkpoint(path)[1]["step"] == 44
    assert not (path / checkpoint.PREVIOUS).exists()
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]


def test_every_crash_point_was_reached(run: tuple[Path, WorldModel], monkeypatch) -> None:
    """The parametrization above covers the save: 4 renames (.previous, train state, model,
    config.json) and the removals of .previous around them, so crash points 0..4 each stop a
    real step and 5 lets the save finish."""
    import os

    path, _ = run
    seen = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda s, d: (seen.append(Path(d).name), real(s, d)))
    save_checkpoint(path, _trained_ish_model(), step=43, train_state={"step": 43})
    assert seen == [".previous", "train_state.safetensors", "model.safetensors", "config.json"]


def test_a_checkpoint_of_another_kind_is_refused_in_one_line(tmp_path: Path) -> None:
    from reverie.models.decoder import Decoder, DecoderConfig

    save_checkpoint(tmp_path, Decoder(DecoderConfig(16)), step=1, kind="reverie-decoder")
    with pytest.raises(ReverieError, match="not a reverie world-model checkpoint.*decoder"):
        load_checkpoint(tmp_path)
    decoder, meta = checkpoint.load_module(tmp_path, "reverie-decoder")
    assert meta["kind"] == "reverie-decoder" and decoder.config == DecoderConfig(16)


def test_run_directories_written_before_the_shared_layout_still_load() -> None:
    """tests/fixtures holds runs written by commit 47a1bcc (before one layout for every trained
    thing): the world model, its decoder beside it, and a pixel baseline load with the same
    outputs they had then."""
    from safetensors.torch import load_file

    from reverie.models.decoder import load_decoder
    from reverie.physics.pixel_baseline import is_pixel_checkpoint, load_pixel_model

    fixtures = Path(__file__).parent / "fixtures"
    ref = load_file(fixtures / "legacy_outputs.safetensors")
    model, meta = load_checkpoint(fixtures / "legacy_run")
    decoder, _ = load_decoder(fixtures / "legacy_run")
    assert is_pixel_checkpoint(fixtures / "legacy_pixel")
    pixel, _ = load_pixel_model(fixtures / "legacy_pixel")
    with torch.no_grad():
        torch.testing.assert_close(model.encode(ref["obs"]), ref["encode"])
        torch.testing.assert_close(decoder(ref["z_in"]), ref["decode"])
        torch.testing.assert_close(pixel(ref["frames"], ref["action"]), ref["pixel"])
    assert meta["step"] == 7 and meta["env"] == "tworoom"
