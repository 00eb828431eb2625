"""ONNX export: per-graph parity with torch, end-to-end parity, refusals, the missing extra."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.export import ExportConfig, export
from reverie.io import ReverieError

ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")


@pytest.fixture(scope="module")
def world(tworoom_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reverie.train import TrainConfig, train

    out = tmp_path_factory.mktemp("export-world") / "run"
    return train(TrainConfig(data=tworoom_data, out=out, preset="tiny", threads=1, progress=False))


@pytest.fixture(scope="module")
def policy_run(world: Path) -> Path:
    from reverie.policies.train import PolicyTrainConfig, train_policy

    cfg = PolicyTrainConfig(
        checkpoint=world, steps=5, batch_size=16, hidden=32, depth=1, threads=1, progress=False
    )
    return Path(train_policy(cfg)["path"])


@pytest.fixture(scope="module")
def bundle(world: Path, policy_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "bundle"
    export(ExportConfig(checkpoint=world, out=out, policy_run=policy_run, horizon=3))
    return out


def session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_every_graph_matches_torch_at_a_new_batch_size(world: Path, bundle: Path) -> None:
    from reverie.checkpoint import load_checkpoint

    model, _ = load_checkpoint(world)
    model.eval()
    info = json.loads((bundle / "export.json").read_text())
    assert set(info["files"]) == {"encoder.onnx", "predictor.onnx", "rollout.onnx", "policy.onnx"}
    assert all(err < 1e-4 for err in info["max_abs_error"].values())
    k, D, A = model.history, model.embed_dim, model.action_dim
    assert (info["history"], info["embed_dim"], info["action_dim"]) == (k, D, A)
    gen = torch.Generator().manual_seed(1)
    obs = torch.randint(0, 256, (7, 3, model.image_size, model.image_size), generator=gen)
    obs = obs.to(torch.uint8)
    z_hist, act = torch.randn(7, k, D, generator=gen), torch.rand(7, A, generator=gen) * 2 - 1
    acts = torch.rand(7, 3, A, generator=gen) * 2 - 1
    with torch.no_grad():
        want = {
            "encoder.onnx": (model.encode(obs), {"obs": obs}),
            "predictor.onnx": (model.predict(z_hist, act), {"z_hist": z_hist, "action": act}),
            "rollout.onnx": (model.rollout(z_hist, acts), {"z_context": z_hist, "actions": acts}),
        }
    for name, (ref, feeds) in want.items():
        got = session(bundle / name).run(None, {n: v.numpy() for n, v in feeds.items()})[0]
        np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, err_msg=name)


def test_observation_and_goal_give_the_same_action_through_onnx(
    world: Path, policy_run: Path, bundle: Path
) -> None:
    from reverie.checkpoint import load_checkpoint, read_meta
    from reverie.envs import make
    from reverie.policies import load_policy

    model, _ = load_checkpoint(world)
    model.eval()
    policy, _ = load_policy(policy_run, read_meta(world))
    env = make("tworoom", size=model.image_size)
    frames = []
    for seed in (3, 4):
        env.reset(seed=seed)
        frames.append(env.render())
    obs = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()  # now, goal
    with torch.no_grad():
        z = model.encode(obs)
        want = policy(z[None, :1].repeat(1, model.history, 1), z[None, 1])
    z_onnx = session(bundle / "encoder.onnx").run(None, {"obs": obs.numpy()})[0]
    hist = np.repeat(z_onnx[None, :1], model.history, axis=1)
    got = session(bundle / "policy.onnx").run(None, {"z_hist": hist, "z_goal": z_onnx[None, 1]})
    np.testing.assert_allclose(got[0], want.numpy(), atol=1e-4)


def test_missing_decoder_is_skipped_and_said(bundle: Path) -> None:
    info = json.loads((bundle / "export.json").read_text())
    assert not (bundle / "decoder.onnx").exists()
    assert "no decoder" in info["skipped"]["decoder.onnx"]


def test_existing_out_is_refused_and_replaced_only_when_asked(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(ReverieError, match="exists: pass --overwrite"):
        export(ExportConfig(checkpoint=world, out=out))
    assert (out / "mine.txt").read_text() == "keep"
    export(ExportConfig(checkpoint=world, out=out, overwrite=True, check=False))
    assert (out / "encoder.onnx").is_file() and not (out / "mine.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # no temporary left behind


def test_missing_extra_is_one_line(world: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    import builtins

    from reverie.cli import main

    real = builtins.__import__

    def no_onnx(name, *args, **kw):
        if name.startswith("onnx"):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    assert main(["export", "--checkpoint", str(world), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "pip install 'reverie[export]'" in err and err.count("\n") == 1
