"""Does latent distance track true distance? The property goal-image planning leans on.

    .venv/bin/python benchmarks/bench_geometry.py --checkpoint runs/demo --data runs/demo/data
    .venv/bin/python benchmarks/bench_geometry.py --checkpoint runs/a runs/b --data runs/demo/data

For each checkpoint: encode frames of the run's held-out validation episodes, draw random frame
pairs, and compare the L2 distance of their embeddings with the distance of their true positions
(Two-Room, Push-T, Tabletop: the first two state entries, the agent's x, y, in world units;
Reacher: the env's own goal distance, the norm of the wrapped joint-angle errors, in radians).
Prints the Spearman and Pearson correlations and the mean latent distance per band of true
distance: a latent distance that stops growing with the true one (saturates) leaves CEM blind to
far goals. Runs in seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from reverie.checkpoint import load_checkpoint, read_meta
from reverie.data.dataset import SequenceDataset
from reverie.hardware import machine_line

BANDS = ((0, 10), (10, 25), (25, 50), (50, 100), (100, 150), (150, 400))
#: Reacher's distance is in radians: at most √(π² + 5.6²) ≈ 6.4 (shoulder wrapped, elbow ±2.8).
JOINT_BANDS = ((0, 0.25), (0.25, 0.5), (0.5, 1), (1, 2), (2, 3), (3, 7))


def bands_for(env: str | None) -> tuple[tuple[float, float], ...]:
    return JOINT_BANDS if env == "reacher" else BANDS


def true_distance(env: str | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pair true distance between state rows ``a`` and ``b`` (P, S) -> (P,)."""
    if env == "reacher":
        from reverie.envs.reacher import joint_error

        return np.linalg.norm(joint_error(a[:, :2], b[:, :2]), axis=-1)  # ReacherEnv.goal_distance
    return np.linalg.norm(a[:, :2] - b[:, :2], axis=1)


def ranks(v: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(v)).astype(np.float64)


def geometry(run: Path, data: Path, frames: int, pairs: int, seed: int) -> dict[str, float]:
    model, meta = load_checkpoint(run)
    model.eval()
    val = (meta.get("data") or {}).get("val_episodes") or None
    ds = SequenceDataset(data, 1, 0, 1, episodes=val, verify=False)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(ds.obs), (frames,), generator=gen)
    with torch.inference_mode():
        z = model.encode(ds.obs[idx]).float()  # (F, D)
    env = meta.get("env")
    states = ds.states[idx].numpy()  # (F, S)
    i = torch.randint(frames, (pairs,), generator=gen)
    j = torch.randint(frames, (pairs,), generator=gen)
    dz = (z[i] - z[j]).norm(dim=-1).numpy()  # (P,)
    dt = true_distance(env, states[i.numpy()], states[j.numpy()])  # (P,)
    out = {
        "spearman": float(np.corrcoef(ranks(dz), ranks(dt))[0, 1]),
        "pearson": float(np.corrcoef(dz, dt)[0, 1]),
    }
    for k, (lo, hi) in enumerate(bands_for(env)):
        band = (dt >= lo) & (dt < hi)
        out[f"band{k}"] = float(dz[band].mean()) if band.any() else float("nan")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, nargs="+", required=True)
    p.add_argument("--data", type=Path, required=True, help="the dataset the runs trained on")
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--pairs", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print(machine_line(), flush=True)  # every figure names its machine
    torch.set_num_threads(1)
    env = read_meta(args.checkpoint[0]).get("env")
    bands = [f"{lo}-{hi}" for lo, hi in bands_for(env)]
    print("| run | Spearman | Pearson | " + " | ".join(f"latent @ {b}" for b in bands) + " |")
    print("|---|---|---|" + "---|" * len(bands))
    for run in args.checkpoint:
        g = geometry(run, args.data, args.frames, args.pairs, args.seed)
        cells = " | ".join(f"{g[f'band{k}']:.2f}" for k in range(len(bands)))
        print(f"| {run} | {g['spearman']:.3f} | {g['pearson']:.3f} | {cells} |")


if __name__ == "__main__":
    main()
