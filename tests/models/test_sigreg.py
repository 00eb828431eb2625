"""SIGReg (and VICReg) behaviour: the statistic's definition, its response to Gaussian, collapsed
and shifted samples, its gradient, and its value under 2-process DDP (gloo) on a split batch.

    .venv/bin/python -m pytest tests/models/test_sigreg.py -q
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.models.sigreg import SIGReg, VICReg, epps_pulley


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Small tensors gain nothing from a second thread on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def closed_form_epps_pulley(x: np.ndarray) -> float:
    """N ∫_R e^{-t²/2} |φ_N(t) - e^{-t²/2}|² dt, integrated analytically (Gaussian integrals)."""
    n = len(x)
    d = x[:, None] - x[None, :]
    return n * (
        math.sqrt(2 * math.pi) * np.exp(-(d**2) / 2).sum() / n**2
        - 2 * math.sqrt(math.pi) * np.exp(-(x**2) / 4).sum() / n
        + math.sqrt(2 * math.pi / 3)
    )


def test_statistic_matches_its_closed_form() -> None:
    rng = np.random.default_rng(0)
    for x in (rng.normal(size=300), rng.normal(0.5, 0.7, size=300), np.zeros(50)):
        ours = float(epps_pulley(torch.from_numpy(x)[:, None], knots=401, t_max=8.0)[0])
        assert ours == pytest.approx(closed_form_epps_pulley(x), rel=1e-4, abs=1e-6)


def test_near_zero_on_gaussian_and_large_on_collapsed_shifted_or_scaled() -> None:
    torch.manual_seed(0)
    reg = SIGReg(num_directions=256)
    gauss = torch.randn(2048, 32)
    value = float(reg(gauss, step=0))
    # E[statistic] under H0 is ∫ w(t)(1 - e^{-t²}) dt ≈ 1.06: O(1), independent of N.
    assert value < 2.0
    for bad in (torch.zeros(2048, 32), gauss + 1.0, gauss * 3.0, gauss * 0.2):
        assert float(reg(bad, step=0)) > 50 * value


def test_directions_are_fresh_per_step_and_shared_across_calls() -> None:
    a, b = SIGReg(16, seed=3), SIGReg(16, seed=3)
    torch.testing.assert_close(a.directions(8, 5), b.directions(8, 5))
    assert not torch.allclose(a.directions(8, 5), a.directions(8, 6))
    torch.testing.assert_close(a.directions(8, 5).norm(dim=0), torch.ones(16))


def test_gradient_flows_and_descends_toward_gaussian() -> None:
    torch.manual_seed(0)
    z = (0.1 * torch.randn(512, 16) + 2.0).requires_grad_(True)
    reg = SIGReg(64)
    start = float(reg(z, 0).detach())
    opt = torch.optim.Adam([z], lr=0.05)
    for step in range(60):
        loss = reg(z, step)
        opt.zero_grad()
        loss.backward()
        assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
        opt.step()
    assert float(reg(z, 999).detach()) < 0.05 * start


def test_vicreg_zero_on_whitened_large_on_collapsed() -> None:
    torch.manual_seed(0)
    reg = VICReg()
    assert float(reg(torch.randn(4096, 16))) < 0.05
    assert float(reg(torch.zeros(256, 16))) > 0.9
    assert float(reg(torch.randn(256, 1).repeat(1, 16))) > 0.4  # perfectly correlated dims


# ------------------------------------------------------------------------------ DDP (2 x gloo)
WORKER = r"""
import os, sys
import numpy as np, torch, torch.distributed as dist
from reverie.models.sigreg import SIGReg, VICReg
torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
z = torch.from_numpy(np.load(sys.argv[1]))
split = int(sys.argv[2])  # ranks hold unequal shares: the count must be global too
local = (z[:split] if rank == 0 else z[split:]).clone().requires_grad_(True)
out = {}
for name, reg in (("sigreg", SIGReg(64, seed=1)), ("vicreg", VICReg())):
    local.grad = None
    value = reg(local, 7)
    value.backward()
    out[name] = value.detach().numpy()
    out[name + "_grad"] = local.grad.numpy()
np.savez(os.path.join(sys.argv[3], f"rank{rank}.npz"), **out)
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_value_and_gradient_equal_one_process_on_joined_batch(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    z = torch.randn(96, 8) * 0.7 + 0.3
    np.save(tmp_path / "z.npy", z.numpy())
    (tmp_path / "worker.py").write_text(WORKER)
    split = 60
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
                str(tmp_path / "z.npy"),
                str(split),
                str(tmp_path),
            ],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]

    for name, reg in (("sigreg", SIGReg(64, seed=1)), ("vicreg", VICReg())):
        joined = z.clone().requires_grad_(True)
        value = reg(joined, 7)
        value.backward()
        for r in ranks:  # every rank sees the global value
            assert float(r[name]) == pytest.approx(float(value.detach()), rel=1e-5)
        # Each rank's inputs get world_size x their true gradient (DDP averaging divides it out).
        grad = np.concatenate([ranks[0][name + "_grad"], ranks[1][name + "_grad"]]) / 2
        np.testing.assert_allclose(grad, joined.grad.numpy(), rtol=1e-4, atol=1e-7)
