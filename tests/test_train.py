"""Training: alignment of the loss's pairs, learning on real Two-Room data, logs and checkpoints,
kill-and-resume equality, non-finite loss handling, and 2-process DDP.

    .venv/bin/python -m pytest tests/test_train.py -q
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.checkpoint import load_checkpoint
from reverie.data.dataset import SequenceDataset
from reverie.envs import make
from reverie.io import ReverieError
from reverie.models.sigreg import collapse_problems
from reverie.models.world_model import teacher_forcing_pairs
from reverie.train import PRESETS, TrainConfig, evaluate, lr_at, train


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The tiny preset gains nothing from a second thread on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(data: Path, out: Path, **kw) -> TrainConfig:
    return TrainConfig(data=data, out=out, preset="tiny", threads=1, progress=False, **kw)


@pytest.fixture(scope="module")
def trained(tworoom_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset trained on 30 Two-Room episodes (a few seconds), without the recipe's look
    augmentation: these tests check what 200 steps of the plain objective learn (with it, the
    held-out prediction error is 0.73x copying's instead of < 0.6x; tests/data/test_augment.py
    covers the augmented runs)."""
    return train(tiny(tworoom_data, tmp_path_factory.mktemp("run") / "run", augment="none"))


# ---------------------------------------------------------------------------- config & pairs
def test_config_validation_and_presets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="preset"):
        TrainConfig(data=tmp_path, out=tmp_path, preset="huge")
    with pytest.raises(ValueError, match="regularizer"):
        TrainConfig(data=tmp_path, out=tmp_path, regularizer="none")
    with pytest.raises(ValueError, match="--steps"):
        TrainConfig(data=tmp_path, out=tmp_path, steps=0)
    with pytest.raises(ValueError, match="--lr"):
        TrainConfig(data=tmp_path, out=tmp_path, lr=float("nan"))
    # λ: the env's own (Two-Room 0.003, Reacher 0.03), else the preset's; an explicit --lam wins.
    assert TrainConfig(data=tmp_path, out=tmp_path).resolved("tworoom").lam == 0.003
    assert TrainConfig(data=tmp_path, out=tmp_path).resolved("reacher").lam == 0.03
    assert TrainConfig(data=tmp_path, out=tmp_path).resolved("pusht").lam == 0.1
    assert TrainConfig(data=tmp_path, out=tmp_path).resolved().lam == 0.1
    assert TrainConfig(data=tmp_path, out=tmp_path, lam=0.05).resolved("tworoom").lam == 0.05
    # The preset too: the env's recipe (Two-Room: lite), else cpu; an explicit --preset wins.
    assert TrainConfig(data=tmp_path, out=tmp_path).resolved("tworoom").preset == "lite"
    assert TrainConfig(data=tmp_path, out=tmp_path).resolved("reacher").preset == "cpu"
    assert (
        TrainConfig(data=tmp_path, out=tmp_path, preset="cpu").resolved("tworoom").preset == "cpu"
    )
    # Steps and time budget: the env's recipe when neither --preset nor --steps is given, so
    # ``reverie train`` with no flags trains the headline row; --minutes still wins.
    tworoom = TrainConfig(data=tmp_path, out=tmp_path).resolved("tworoom")
    assert (tworoom.steps, tworoom.minutes) == (4000, 5.0)
    assert TrainConfig(data=tmp_path, out=tmp_path, minutes=9).resolved("tworoom").minutes == 9
    assert TrainConfig(data=tmp_path, out=tmp_path).resolved("pusht").steps == 20000
    named = TrainConfig(data=tmp_path, out=tmp_path, preset="lite").resolved("tworoom")
    assert named.steps == PRESETS["lite"]["steps"] and named.minutes is None
    cfg = TrainConfig(data=tmp_path, out=tmp_path, steps=7000).resolved()
    assert cfg.steps == 7000 and cfg.batch_size is not None and cfg.history == 3
    # Warmup then cosine decay to 10% of the peak.
    assert lr_at(1, cfg) < lr_at(cfg.warmup, cfg) == pytest.approx(cfg.lr)
    assert lr_at(cfg.steps, cfg) == pytest.approx(0.1 * cfg.lr)


def test_predictor_size_flags_override_the_preset(tmp_path: Path) -> None:
    base = TrainConfig(data=tmp_path, out=tmp_path, preset="lite").model_config(10, 64).predictor
    assert (base.hidden, base.depth) == (PRESETS["lite"]["predictor"]["hidden"], 2)
    cfg = TrainConfig(data=tmp_path, out=tmp_path, preset="lite", pred_hidden=96, pred_depth=0)
    wide = cfg.model_config(10, 64).predictor
    assert (wide.hidden, wide.depth, wide.cond_dim) == (96, 0, base.cond_dim)
    for flag, kw in (("--pred-hidden", {"pred_hidden": 0}), ("--pred-depth", {"pred_depth": -1})):
        with pytest.raises(ValueError, match=flag):
            TrainConfig(data=tmp_path, out=tmp_path, **kw)


@pytest.mark.parametrize("frameskip", [1, 2])
def test_loss_pairs_frame_t_and_action_t_with_frame_t_plus_1(
    tworoom_data: Path, frameskip: int
) -> None:
    """Use the true states as 'embeddings': every (history, action, target) triple the loss trains
    on must be reproduced by the simulator (set state t, apply action t -> state t+1)."""
    ds = SequenceDataset(tworoom_data, history=2, horizon=2, frameskip=frameskip)
    batch = ds.get_batch(torch.from_numpy(np.random.default_rng(0).integers(len(ds), size=8)))
    z_hist, actions, target = teacher_forcing_pairs(batch["states"], batch["actions"].double(), 2)
    env = make("tworoom")
    env.reset(seed=0)
    for hist, a, nxt in zip(z_hist, actions, target):
        env.set_state(hist[-1].numpy())
        for raw in a.view(frameskip, 2):  # the model action is frameskip raw actions in order
            env.step(raw.numpy())
        np.testing.assert_allclose(env.get_state(), nxt.numpy(), atol=1e-5)


# ------------------------------------------------------------------------ behaviour after training
def _val(trained: Path) -> tuple[torch.nn.Module, SequenceDataset]:
    model, meta = load_checkpoint(trained)
    ds = SequenceDataset(
        meta["data"]["path"], model.history, 2, episodes=meta["data"]["val_episodes"]
    )
    return model, ds


def test_predictor_beats_copy_last_on_held_out_episodes(trained: Path) -> None:
    model, val = _val(trained)
    scores = evaluate(model, val, windows=400, rollout=2)
    assert scores["val/pred_mse"] < 0.6 * scores["val/copy_mse"], scores


def test_changing_actions_changes_the_prediction(trained: Path) -> None:
    model, val = _val(trained)
    batch = val.get_batch(torch.arange(0, len(val), 2))
    k = model.history
    with torch.no_grad():
        z = model.encode(batch["obs"])  # (B, T, D)
        a = batch["actions"][:, k - 1]
        truth, step = z[:, k], (z[:, k] - z[:, k - 1]).norm(dim=1).mean()
        right, flipped = model.predict(z[:, :k], a), model.predict(z[:, :k], -a)
    assert (right - flipped).norm(dim=1).mean() > 0.5 * step  # the action moves the prediction
    # ... the right way: the true action predicts the next frame better than the flipped one.
    assert (right - truth).norm(dim=1).mean() < 0.7 * (flipped - truth).norm(dim=1).mean()


def test_embeddings_have_not_collapsed(trained: Path) -> None:
    model, val = _val(trained)
    scores = evaluate(model, val, windows=400, rollout=2)
    health = {k[4:]: v for k, v in scores.items() if k.startswith("val/")}
    assert collapse_problems(health, model.embed_dim) == [], health
    # Two-Room's visible state is 2-D and its light λ lets the embedding keep about that shape:
    # it must still span both dimensions (a collapsed run scores ~0-1 here).
    assert health["eff_rank"] >= 2.0 and health["std_mean"] > 0.5, health


def test_run_writes_checkpoint_metrics_and_tensorboard(trained: Path, tworoom_data: Path) -> None:
    meta = json.loads((trained / "config.json").read_text())
    assert meta["step"] == 200 and meta["env"] == "tworoom"
    assert meta["manifest_hash"] == SequenceDataset(tworoom_data, 1, 0).manifest_hash
    assert {"val/pred_mse", "val/copy_mse", "val/eff_rank", "pred", "reg"} <= set(meta["metrics"])
    lines = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    train_lines = [m for m in lines if "loss" in m]
    assert [m["step"] for m in train_lines] == list(range(10, 201, 10))
    assert all(m["frames_per_s"] > 0 and "health/eff_rank" in m for m in train_lines)
    assert train_lines[-1]["pred"] < train_lines[0]["pred"]
    assert any(p.name.startswith("events.out.tfevents") for p in (trained / "tb").iterdir())


def test_existing_run_is_not_overwritten_without_resume(trained: Path, tworoom_data: Path) -> None:
    with pytest.raises(ReverieError, match="--resume"):
        train(tiny(tworoom_data, trained))


# ---------------------------------------------------------------------------- resume & failures
class Killed(Exception):
    pass


@pytest.mark.parametrize(
    "extra",
    [{"regularizer": "sigreg"}, {"regularizer": "ema"}, {"state_aux": 1.0}, {"recon": 1.0}],
)
def test_kill_and_resume_equals_uninterrupted(
    tworoom_data: Path, tmp_path: Path, extra: dict
) -> None:
    kw = dict(steps=16, ckpt_every=5, log_every=4, **extra)
    whole = load_checkpoint(train(tiny(tworoom_data, tmp_path / "whole", **kw)))[0]

    def kill(step: int, model: object, losses: dict) -> None:
        if step == 13:  # after the step-10 checkpoint, with 3 steps of work lost
            raise Killed

    with pytest.raises(Killed):
        train(tiny(tworoom_data, tmp_path / "split", **kw), on_step=kill)
    assert json.loads((tmp_path / "split" / "config.json").read_text())["step"] == 10
    resumed = load_checkpoint(train(tiny(tworoom_data, tmp_path / "split", resume=True, **kw)))[0]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)
    # The log has each step once: lines the killed run wrote after step 10 were dropped.
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
        if "loss" in json.loads(line)
    ]
    assert steps == [4, 8, 12, 16]


def test_non_finite_loss_stops_with_the_step_and_term(tworoom_data: Path, tmp_path: Path) -> None:
    def poison(step: int, model: torch.nn.Module, losses: dict) -> None:
        if step == 3:
            with torch.no_grad():
                model.predictor.out.weight.fill_(float("nan"))

    with pytest.raises(ReverieError, match=r"step 4: term 'pred'"):
        train(tiny(tworoom_data, tmp_path / "nan", steps=10), on_step=poison)


def test_auxiliary_terms_train_heads_the_checkpoint_leaves_out(
    tworoom_data: Path, tmp_path: Path
) -> None:
    from reverie.models.jepa import StateHead

    plain = train(tiny(tworoom_data, tmp_path / "plain", steps=4, tensorboard=False))
    keys = load_checkpoint(plain)[0].state_dict().keys()
    for name, kw in (("state", {"state_aux": 1.0}), ("recon", {"recon": 1.0})):
        out = train(tiny(tworoom_data, tmp_path / name, steps=4, tensorboard=False, **kw))
        metrics = json.loads((out / "config.json").read_text())["metrics"]
        assert np.isfinite(metrics[name])  # the term is trained and logged
        # The checkpoint is an ordinary world model: the head is training-only.
        assert load_checkpoint(out)[0].state_dict().keys() == keys
    # Push-T's targets: what one frame shows (no velocities), the angle as sin and cos.
    head = StateHead(torch.randn(50, 10, dtype=torch.float64), "pusht", 8)
    assert head.names == ["agent_x", "agent_y", "block_x", "block_y"] + [
        "block_angle_sin",
        "block_angle_cos",
    ]
    t = head.targets(torch.randn(50, 10, dtype=torch.float64))
    assert t.shape == (50, 6) and torch.isfinite(t).all()
    with pytest.raises(ValueError, match="--state-aux"):
        TrainConfig(data=tworoom_data, out=tmp_path, state_aux=-1)
    with pytest.raises(ValueError, match="--recon"):
        TrainConfig(data=tworoom_data, out=tmp_path, recon=float("nan"))
    with pytest.raises(ValueError, match="--recon does not combine"):
        TrainConfig(data=tworoom_data, out=tmp_path, recon=1.0, regularizer="ema")


def test_vicreg_trains(tworoom_data: Path, tmp_path: Path) -> None:
    out = train(
        tiny(tworoom_data, tmp_path / "vic", steps=5, regularizer="vicreg", tensorboard=False)
    )
    metrics = json.loads((out / "config.json").read_text())["metrics"]
    assert np.isfinite(metrics["reg"]) and np.isfinite(metrics["val/pred_mse"])


# ----------------------------------------------------------------------------------- DDP (gloo)
DDP_WORKER = r"""
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
from reverie.train import TrainConfig, train
out, data, rank = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
def grab(step, model, losses):
    if step == 6:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  str(out.parent / f"rank{rank}.safetensors"))
train(TrainConfig(data=data, out=out, preset="tiny", steps=6, ckpt_every=3, threads=1,
                  progress=False, tensorboard=False), on_step=grab)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_training_keeps_ranks_in_sync(tworoom_data: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    (tmp_path / "worker.py").write_text(DDP_WORKER)
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
        "OMP_NUM_THREADS": "1",
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "worker.py"),
                str(tmp_path / "run"),
                str(tworoom_data),
                str(r),
            ],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    saved, meta = load_checkpoint(tmp_path / "run")
    assert meta["step"] == 6
    for name, value in saved.state_dict().items():
        if "running" in name or "num_batches" in name:
            continue  # BatchNorm statistics are per rank (rank 0's are broadcast and saved)
        torch.testing.assert_close(ranks[0][name], ranks[1][name], msg=name)
        torch.testing.assert_close(ranks[0][name], value, msg=name)


def test_readme_torchrun_command_trains_on_two_gloo_processes(
    tworoom_data: Path, tmp_path: Path
) -> None:
    """The README's ``torchrun ... -m reverie.train`` line, with 2 CPU processes and tiny sizes."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "torchrun --standalone --nproc_per_node=8 -m reverie.train" in readme
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "reverie.train"]
    cmd += ["--data", str(tworoom_data), "--out", str(tmp_path / "ddp"), "--preset", "tiny"]
    cmd += ["--steps", "4", "--threads", "1", "--no-progress", "--no-tensorboard"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    _, meta = load_checkpoint(tmp_path / "ddp")
    assert meta["step"] == 4 and meta["train"]["preset"] == "tiny"
