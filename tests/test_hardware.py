"""Hardware: every figure names its machine, and precision is a runtime choice (a checkpoint
trained under bf16 plans the same under fp32).

    .venv/bin/python -m pytest tests/test_hardware.py -q
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from reverie import hardware

ROOT = Path(__file__).parents[1]


def test_cpu_classes_follow_the_flags() -> None:
    assert hardware.cpu_class({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}) == "AMX-BF16"
    assert hardware.cpu_class({"avx2", "avx512f", "avx512_bf16"}) == "AVX512-BF16 (no AMX)"
    assert hardware.cpu_class({"avx2"}) == "AVX2"
    line = hardware.machine_line()
    assert line.startswith("machine: ") and " cores, class " in line and "bf16 " in line


def test_a_capped_onednn_isa_turns_native_bf16_off(monkeypatch) -> None:
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    hardware.bf16_native.cache_clear()
    try:
        assert hardware.bf16_native(torch.device("cpu")) is False
        assert "ISA emulation" in hardware.machine_line()
    finally:
        monkeypatch.undo()
        hardware.bf16_native.cache_clear()


def test_a_benchmark_prints_the_machine_line_first() -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--preset", "tiny"]
    cmd += ["--steps", "1", "--repeats", "1", "--candidates", "8", "--variants", "fp32"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[0] == hardware.machine_line(), lines[:2]
    assert any("training frames/s" in x for x in lines)


def test_every_benchmark_prints_the_machine_line() -> None:
    for path in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        assert "print(machine_line()" in path.read_text(), path.name


def test_a_bf16_trained_checkpoint_plans_the_same_under_fp32(
    tworoom_data: Path, tmp_path: Path
) -> None:
    """Weights are saved in fp32 whatever the training precision, and the planner's costs of the
    same candidates rank alike under fp32 and bf16 arithmetic."""

    from reverie.checkpoint import load_checkpoint
    from reverie.planning import LatentGoalObjective
    from reverie.train import TrainConfig, train

    cfg = TrainConfig(data=tworoom_data, out=tmp_path / "run", preset="tiny", steps=60)
    run = train(
        cfg.__class__(
            **{
                **cfg.__dict__,
                "precision": "bf16",
                "progress": False,
                "tensorboard": False,
                "threads": 1,
            }
        )
    )
    model, meta = load_checkpoint(run)
    assert meta["train"]["precision"] == "bf16"
    assert all(
        t.dtype == torch.float32 for t in model.state_dict().values() if t.is_floating_point()
    )
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8, generator=g)
    with torch.no_grad():
        z = model.encode(obs)  # (3, D)
    actions = torch.rand(256, 4, model.action_dim, generator=g) * 2 - 1  # (N, H, A')
    objective = LatentGoalObjective(model, z[None, :2], z[None, 2])
    fp32 = objective(actions[None])[0].numpy()  # (N,)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = objective(actions[None])[0].float().numpy()
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    rho = np.corrcoef(rank(fp32), rank(bf16))[0, 1]
    assert rho > 0.95, rho
    # The elites (the 10% CEM refits to) are mostly the same candidates.
    top = int(0.1 * len(fp32))
    overlap = len(set(np.argsort(fp32)[:top]) & set(np.argsort(bf16)[:top])) / top
    assert overlap >= 0.7, overlap
