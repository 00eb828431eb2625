"""Does latent distance track true distance? The property goal-image planning leans on.

    .venv/bin/python benchmarks/bench_geometry.py --checkpoint runs/demo --data runs/demo/data
    .venv/bin/python benchmarks/bench_geometry.py --checkpoint runs/a runs/b --data runs/demo/data

For each checkpoint: encode frames of the run's held-out validation episodes, draw random frame
pairs, and compare the L2 distance of their embeddings with the distance of their true positions
(the first two state entries: the agent's x, y on Two-Room). Prints the Spearman and Pearson
correlations and the mean latent distance per band of true distance: a latent distance that stops
growing with the true one (saturates) leaves CEM blind to far goals. Runs in seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from reverie.checkpoint import load_checkpoint
from reverie.data.dataset import SequenceDataset
from reverie.hardware import machine_line

BANDS = ((0, 10), (10, 25), (25, 50), (50, 100), (100, 150), (150, 400))


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
    pos = ds.states[idx, :2].numpy()  # (F, 2)
    i = torch.randint(frames, (pairs,), generator=gen)
    j = torch.randint(frames, (pairs,), generator=gen)
    dz = (z[i] - z[j]).norm(dim=-1).numpy()  # (P,)
    dt = np.linalg.norm(pos[i] - pos[j], axis=1)  # (P,)
    out = {
        "spearman": float(np.corrcoef(ranks(dz), ranks(dt))[0, 1]),
        "pearson": float(np.corrcoef(dz, dt)[0, 1]),
    }
    for lo, hi in BANDS:
        band = (dt >= lo) & (dt < hi)
        out[f"{lo}-{hi}"] = float(dz[band].mean()) if band.any() else float("nan")
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
    bands = [f"{lo}-{hi}" for lo, hi in BANDS]
    print("| run | Spearman | Pearson | " + " | ".join(f"latent @ {b}" for b in bands) + " |")
    print("|---|---|---|" + "---|" * len(bands))
    for run in args.checkpoint:
        g = geometry(run, args.data, args.frames, args.pairs, args.seed)
        cells = " | ".join(f"{g[b]:.2f}" for b in bands)
        print(f"| {run} | {g['spearman']:.3f} | {g['pearson']:.3f} | {cells} |")


if __name__ == "__main__":
    main()
