"""Can the encoder see the state at all? A supervised ceiling for ``reverie probe``.

    .venv/bin/python benchmarks/bench_probe_ceiling.py --data runs/pusht-lite/data
    .venv/bin/python benchmarks/bench_probe_ceiling.py --data runs/pusht-lite/data --preset cpu

Trains the preset's pixel encoder (the same architecture ``reverie train`` builds) with a linear
head, *supervised* on the true pose of each frame (``--state-aux``'s targets: the state entries
one frame shows, angles as sin and cos, standardised), on the dataset's first three quarters of
episodes, and prints the held-out R² per variable on the last quarter, with a ridge probe of the
raw pixels (grayscale, 16 × 16) beside it. A variable the supervised encoder recovers but a JEPA
checkpoint's probe does not (``reverie probe``) is one the architecture and the resolution can
carry and the self-supervised objective leaves out. Minutes on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reverie.data.dataset import SequenceDataset
from reverie.data.format import load_manifest
from reverie.hardware import machine_line
from reverie.io import ReverieError
from reverie.models.encoder import EncoderConfig, build_encoder
from reverie.models.jepa import StateHead
from reverie.probe import ridge_r2
from reverie.train import PRESETS


def split_frames(data: Path, frames: int) -> tuple[SequenceDataset, np.ndarray, np.ndarray]:
    """The dataset's frames; indices of (up to ``frames``) train frames and held-out frames."""
    ids = sorted(e for shard in load_manifest(data)["shards"] for e in shard["episodes"])
    if len(ids) < 4:
        raise ReverieError(f"{data} holds {len(ids)} episodes: the ceiling needs at least 4")
    ds = SequenceDataset(data, 1, 0, 1, verify=False)
    ep_of_frame = np.repeat(np.arange(ds.num_episodes), np.diff(ds.episode_offsets))
    held = ep_of_frame >= ds.num_episodes - max(1, ds.num_episodes // 4)
    rng = np.random.default_rng(0)
    train, test = np.flatnonzero(~held), np.flatnonzero(held)
    return ds, rng.permutation(train)[:frames], rng.permutation(test)[: max(1, frames // 3)]


def r2(pred: np.ndarray, y: np.ndarray, mean: np.ndarray) -> np.ndarray:
    return 1 - ((pred - y) ** 2).mean(0) / ((y - mean) ** 2).mean(0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="a dataset from `reverie collect`")
    p.add_argument("--preset", default="lite", choices=[k for k in PRESETS if k != "gpu"])
    p.add_argument("--steps", type=int, default=1500, help="supervised steps (batch 64)")
    p.add_argument("--frames", type=int, default=60000, help="train frames drawn (at most)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.steps < 1 or args.frames < 10 or args.threads < 1:
        p.error("--steps, --threads must be >= 1 and --frames >= 10")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(machine_line())
    t0 = time.perf_counter()
    try:
        ds, tr, te = split_frames(args.data, args.frames)
    except (ReverieError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    head = StateHead(ds.states[tr], ds.env_name, PRESETS[args.preset]["encoder"]["embed_dim"])
    y_tr, y_te = head.targets(ds.states[tr]), head.targets(ds.states[te])
    mean = y_tr.mean(0).numpy()

    raw = [
        F.avg_pool2d(ds.obs[i].float().mean(1, keepdim=True), ds.image_size // 16) for i in (tr, te)
    ]
    raw_r2 = ridge_r2(
        raw[0].flatten(1).numpy(), y_tr.numpy(), raw[1].flatten(1).numpy(), y_te.numpy(), 1.0
    )

    cfg = {**PRESETS[args.preset]["encoder"], "image_size": ds.image_size}
    enc = build_encoder(EncoderConfig(**cfg))
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=1e-3)
    for _ in range(args.steps):
        idx = torch.from_numpy(tr[np.random.randint(len(tr), size=64)])
        loss = F.mse_loss(head(enc(ds.obs[idx])), head.targets(ds.states[idx]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    enc.eval()
    with torch.no_grad():
        pred = torch.cat([head(enc(ds.obs[c])) for c in torch.from_numpy(te).split(512)])
    sup = r2(pred.numpy(), y_te.numpy(), mean)
    print(
        f"{ds.env_name}, {args.preset} encoder, {ds.image_size} px, {len(tr)} train / {len(te)} "
        f"held-out frames, {args.steps} steps, {time.perf_counter() - t0:.0f} s"
    )
    print("| variable | supervised encoder R² | raw-pixel ridge R² |")
    print("|---|---|---|")
    for name, a, b in zip(head.names, sup, raw_r2, strict=True):
        print(f"| {name} | {a:.3f} | {b if b is None else round(b, 3)} |")


if __name__ == "__main__":
    main()
