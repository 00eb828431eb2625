"""The one trainer: a wall-clock budget, resume that refuses changed settings, a torn log line,
and the kinds of trained thing it saves in one layout.

    .venv/bin/python -m pytest tests/test_trainer.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reverie.checkpoint import read_meta
from reverie.io import ReverieError
from reverie.train import TrainConfig, train
from reverie.trainer import LoopConfig, TensorBatches, TrainTask, fit, learning_rate, runtime


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(data: Path, out: Path, **kw) -> TrainConfig:
    kw = {"threads": 1, "progress": False, "tensorboard": False, **kw}
    return TrainConfig(data=data, out=out, preset="tiny", **kw)


class Killed(Exception):
    pass


def test_minutes_budget_stops_on_time_and_resumes(tworoom_data: Path, tmp_path: Path) -> None:
    budget = 0.15  # minutes: 9 s of training, far fewer than the 100k steps allowed
    run = train(tiny(tworoom_data, tmp_path / "run", steps=100_000, minutes=budget))
    meta = read_meta(run)
    assert 0.95 * 60 * budget <= meta["train_seconds"] <= 1.05 * 60 * budget, meta["train_seconds"]
    assert 10 < meta["step"] < 100_000
    # The schedule followed the budget: the last logged rate is the cosine floor (10% of peak).
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    lr_last = [x["lr"] for x in lines if "lr" in x][-1]
    assert lr_last == pytest.approx(0.1 * 3e-3, rel=0.05)
    # A finished budget is finished: resuming it trains nothing.
    train(tiny(tworoom_data, run, steps=100_000, minutes=budget, resume=True))
    assert read_meta(run)["step"] == meta["step"]

    # Killed part-way, then resumed: the run continues from the time already spent. The kill
    # comes at ~40% of the steps the first run managed, so a loaded machine still reaches it.
    every = max(2, meta["step"] // 6)
    kill_at = 2 * every + max(1, every // 2)

    def kill(step: int, model: object, losses: dict) -> None:
        if step == kill_at:
            raise Killed

    split = tiny(tworoom_data, tmp_path / "split", steps=100_000, minutes=budget, ckpt_every=every)
    with pytest.raises(Killed):
        train(split, on_step=kill)
    assert read_meta(tmp_path / "split")["step"] == 2 * every
    train(TrainConfig(**{**split.__dict__, "resume": True}))
    meta = read_meta(tmp_path / "split")
    assert meta["step"] > kill_at
    assert 0.95 * 60 * budget <= meta["train_seconds"] <= 1.05 * 60 * budget


def test_time_schedule_reaches_the_floor_at_the_budget() -> None:
    loop = LoopConfig(steps=1000, lr=1.0, minutes=1.0)
    assert learning_rate(500, loop, elapsed=60.0) == pytest.approx(0.1)
    assert learning_rate(500, loop, elapsed=0.0) == pytest.approx(0.55)  # steps' half-way point
    with pytest.raises(ValueError, match="--minutes"):
        LoopConfig(steps=1, lr=1.0, minutes=0.0)


@pytest.mark.parametrize(
    "change", [{"lam": 0.5}, {"lr": 1e-4}, {"steps": 30}, {"regularizer": "vicreg"}]
)
def test_resume_refuses_changed_settings(tworoom_data: Path, tmp_path: Path, change: dict) -> None:
    run = train(tiny(tworoom_data, tmp_path / "run", steps=10))
    name = next(iter(change))
    with pytest.raises(ReverieError, match=f"settings differ.*{name}"):
        train(tiny(tworoom_data, run, resume=True, **{"steps": 10, **change}))
    # Runtime choices may change: threads, progress, logging cadence.
    train(tiny(tworoom_data, run, steps=10, resume=True, threads=2, log_every=3))


def test_resume_survives_a_torn_last_line_in_the_metrics_log(
    tworoom_data: Path, tmp_path: Path
) -> None:
    def kill(step: int, model: object, losses: dict) -> None:
        if step == 13:
            raise Killed

    cfg = tiny(tworoom_data, tmp_path / "run", steps=20, ckpt_every=10)
    with pytest.raises(Killed):
        train(cfg, on_step=kill)
    run = tmp_path / "run"
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 11, "loss": 0.')  # the crash hit mid-write
    train(TrainConfig(**{**cfg.__dict__, "resume": True}))
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == [10, 20]


def test_a_run_of_another_kind_is_never_trained_into(tworoom_data: Path, tmp_path: Path) -> None:
    run = train(tiny(tworoom_data, tmp_path / "run", steps=3))
    net = _Net()
    task = TrainTask(kind="reverie-decoder", module=net, loss=_Loss(net), data=_data())
    loop = LoopConfig(steps=2, lr=1e-2, batch_size=4, progress=False, tensorboard=False)
    with runtime(loop) as rt, pytest.raises(ReverieError, match="holds a reverie-world-model"):
        fit(task, loop, run, rt, overwrite=True)


def test_overwrite_replaces_and_no_flag_refuses(tmp_path: Path) -> None:
    loop = LoopConfig(steps=3, lr=1e-2, batch_size=4, progress=False, tensorboard=False)
    net = _Net()
    task = TrainTask(kind="reverie-decoder", module=net, loss=_Loss(net), data=_data())
    with runtime(loop) as rt:
        assert fit(task, loop, tmp_path / "r", rt).step == 3
        with pytest.raises(ReverieError, match="--resume"):
            fit(task, loop, tmp_path / "r", rt)
        assert fit(task, loop, tmp_path / "r", rt, overwrite=True).step == 3


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from reverie.models.decoder import DecoderConfig

        self.config = DecoderConfig(8)
        self.lin = torch.nn.Linear(8, 1)


class _Loss(torch.nn.Module):
    def __init__(self, net: _Net) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: dict, step: int) -> dict:
        return {"loss": (self.net.lin(batch["x"]) - batch["y"]).pow(2).mean()}


def _data() -> TensorBatches:
    g = torch.Generator().manual_seed(0)
    return TensorBatches(x=torch.randn(32, 8, generator=g), y=torch.randn(32, 1, generator=g))
