"""Look augmentation: identity when off, a new look per frame, seeded draws, resume equality.

.venv/bin/python -m pytest tests/data/test_augment.py -q
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from reverie.checkpoint import load_checkpoint, read_meta
from reverie.data.augment import AUGMENTS, LookAugment, augment_frames
from reverie.data.dataset import SequenceDataset
from reverie.models.jepa import JEPALoss
from reverie.models.sigreg import build_regularizer
from reverie.models.world_model import WorldModel
from reverie.train import TrainConfig, train


class Killed(Exception):
    pass


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(tworoom_data: Path) -> dict[str, torch.Tensor]:
    ds = SequenceDataset(tworoom_data, history=2, horizon=2, verify=False)
    return ds.get_batch(torch.arange(0, 40, 5))


def _loss(tworoom_data: Path, **kw) -> tuple[JEPALoss, list[torch.Tensor]]:
    """A tiny world model's loss, with a hook recording what the encoder is given."""
    cfg = TrainConfig(data=tworoom_data, out=tworoom_data, preset="tiny").resolved()
    torch.manual_seed(0)
    model = WorldModel(cfg.model_config(action_dim=2, image_size=64))
    seen: list[torch.Tensor] = []
    model.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    reg = build_regularizer("sigreg", 16, 0)
    return JEPALoss(model, reg, 0.1, 1.0, 2, **kw), seen


def test_augmentation_off_is_exactly_the_identity(tworoom_data: Path) -> None:
    batch = _batch(tworoom_data)
    plain, seen_plain = _loss(tworoom_data)
    off, seen_off = _loss(tworoom_data, augment=AUGMENTS["none"])
    on, seen_on = _loss(tworoom_data, augment=AUGMENTS["look"])
    a, b, c = plain(batch, 1), off(batch, 1), on(batch, 1)
    # Off: the encoder gets the batch's own uint8 frames, bit for bit, and every term is equal.
    frames = batch["obs"].flatten(0, 1)
    assert seen_off[0].dtype == torch.uint8 and torch.equal(seen_off[0], frames)
    assert torch.equal(seen_plain[0], seen_off[0])
    for name in ("pred", "rollout", "reg", "loss"):
        assert torch.equal(a[name], b[name]), name
    # On: the encoder sees other pixels, and the loss changes.
    assert not torch.equal(seen_on[0].float(), frames.float())
    assert not torch.equal(a["loss"], c["loss"])


def test_every_frame_gets_its_own_look_and_draws_are_seeded() -> None:
    # One frame repeated over a window: after augmentation no two frames of it are alike.
    frame = torch.zeros(3, 32, 32, dtype=torch.uint8)
    frame[0, 8:16, 8:16] = 230  # a red square on black
    frame[1:, 20:28, 4:12] = 180
    obs = frame.expand(2, 4, 3, 32, 32)  # (B, T, 3, Hi, Wi)
    out = augment_frames(obs, AUGMENTS["look"], seed=0, step=5)
    assert out.shape == obs.shape and out.dtype == torch.float32
    # In [0, 255] up to float rounding (the dark padding adds the fill colour back).
    assert float(out.min()) >= -1e-3 and float(out.max()) <= 255.0 + 1e-3
    flat = out.flatten(0, 1)
    for i in range(len(flat)):
        for j in range(i):
            assert not torch.allclose(flat[i], flat[j]), (i, j)  # context ≠ target looks
    assert torch.equal(out, augment_frames(obs, AUGMENTS["look"], seed=0, step=5))
    assert not torch.equal(out, augment_frames(obs, AUGMENTS["look"], seed=0, step=6))
    assert not torch.equal(out, augment_frames(obs, AUGMENTS["look"], seed=1, step=5))
    assert not torch.equal(out, augment_frames(obs, AUGMENTS["look"], seed=0, step=5, salt=1))


def test_each_op_does_what_it_says() -> None:
    frame = torch.zeros(1, 3, 16, 16)
    frame[0, 0, 6:10, 6:10] = 200.0  # a red square
    hue = augment_frames(frame, LookAugment(hue=0.5), 0, 1)
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    # A hue rotation keeps the square where it is (only its colour turns).
    assert torch.equal(hue[0].sum(0) > 1, frame[0].sum(0) > 1)
    assert not torch.allclose(hue, frame)
    bright = augment_frames(frame, LookAugment(brightness=0.5), 0, 1)
    ratio = bright[0, 0, 7, 7] / frame[0, 0, 7, 7]
    assert 0.5 <= float(ratio) <= 1.5 and float(ratio) != 1.0
    assert torch.allclose(bright, frame * ratio)
    shifted = augment_frames(frame, LookAugment(shift=3.0), 0, 1)
    assert not torch.allclose(shifted, frame)  # moved ...
    # ... but only moved: the square's mass is (nearly) kept.
    assert abs(float((shifted * luma).sum() - (frame * luma).sum())) < 0.05 * float(
        (frame * luma).sum()
    )
    # What a shift uncovers: the frame's darkest colour ("dark", as a camera offset shows the
    # dark world outside) or the repeated border ("edge").
    floor = torch.full((1, 3, 16, 16), 200.0)
    floor[0, :, 8, 8] = torch.tensor([10.0, 20.0, 30.0])  # the darkest pixel
    big = LookAugment(shift=4.0)
    dark = augment_frames(floor, big, 0, 2)
    edge = augment_frames(floor, dataclasses.replace(big, pad="edge"), 0, 2)
    corners = dark[0, :, [0, 0, -1, -1], [0, -1, 0, -1]]  # (3, 4): one corner is uncovered
    assert any(torch.allclose(corners[:, i], torch.tensor([10.0, 20.0, 30.0])) for i in range(4))
    assert float(edge[0, :, [0, 0, -1, -1], [0, -1, 0, -1]].min()) == 200.0
    with pytest.raises(ValueError, match="pad"):
        LookAugment(pad="mirror")
    with pytest.raises(ValueError, match="brightness"):
        LookAugment(brightness=1.0)
    with pytest.raises(ValueError, match="shift"):
        LookAugment(shift=-1.0)
    assert not AUGMENTS["none"].active and AUGMENTS["look"].active


def test_train_option_is_validated_and_recorded(tworoom_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--augment"):
        TrainConfig(data=tmp_path, out=tmp_path, augment="sepia")
    with pytest.raises(ValueError, match="--invariance needs"):
        TrainConfig(data=tmp_path, out=tmp_path, augment="none", invariance=1.0)
    with pytest.raises(ValueError, match="--invariance needs"):  # Push-T's recipe: no augment
        TrainConfig(data=tmp_path, out=tmp_path, invariance=1.0).resolved("pusht")
    with pytest.raises(ValueError, match="--invariance"):
        TrainConfig(data=tmp_path, out=tmp_path, augment="look", invariance=-1.0)
    run = train(
        TrainConfig(
            data=tworoom_data,
            out=tmp_path / "run",
            preset="tiny",
            steps=6,
            augment="look",
            invariance=0.5,
            threads=1,
            progress=False,
            tensorboard=False,
        )
    )
    meta = read_meta(run)
    assert meta["train"]["augment"] == "look" and meta["train"]["invariance"] == 0.5
    assert meta["augment"]["hue"] == AUGMENTS["look"].hue
    assert "invariance" in meta["metrics"]


def test_augmented_run_resumes_bit_for_bit(tworoom_data: Path, tmp_path: Path) -> None:
    kw = dict(
        preset="tiny",
        steps=12,
        ckpt_every=5,
        log_every=4,
        augment="look",
        threads=1,
        progress=False,
        tensorboard=False,
    )
    whole = load_checkpoint(train(TrainConfig(data=tworoom_data, out=tmp_path / "whole", **kw)))

    def kill(step: int, model: object, losses: dict) -> None:
        if step == 7:
            raise Killed

    with pytest.raises(Killed):
        train(TrainConfig(data=tworoom_data, out=tmp_path / "split", **kw), on_step=kill)
    cfg = TrainConfig(data=tworoom_data, out=tmp_path / "split", resume=True, **kw)
    resumed = load_checkpoint(train(cfg))
    for (name, a), b in zip(whole[0].state_dict().items(), resumed[0].state_dict().values()):
        assert torch.equal(a, b), name


def test_the_recipe_default_and_a_resumed_run_keep_their_augmentation(
    tworoom_data: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig(data=tworoom_data, out=tmp_path / "run", preset="tiny")
    assert cfg.resolved("tworoom").augment == "look"  # Two-Room's recipe
    assert cfg.resolved("pusht").augment == "none"
    assert dataclasses.replace(cfg, augment="none").resolved("tworoom").augment == "none"
    # A run trained without augmentation resumes without it, whatever the recipe says now.
    short = dict(steps=4, threads=1, progress=False, tensorboard=False)
    train(dataclasses.replace(cfg, augment="none", **short))
    resumed = dataclasses.replace(cfg, resume=True, **short)
    assert resumed.resolved("tworoom").augment == "none"
    train(resumed)  # a changed setting would be refused
    assert read_meta(tmp_path / "run")["train"]["augment"] == "none"
