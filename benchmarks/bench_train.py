"""Training throughput and planning-rollout cost of a world-model preset; prints a Markdown table.

    .venv/bin/python benchmarks/bench_train.py                   # cpu preset, 64x64, 2 threads
    .venv/bin/python benchmarks/bench_train.py --preset gpu --device cuda --image-size 128
    .venv/bin/python benchmarks/bench_train.py --preset lite --variants bf16+cl \
        --augments none look look+inv1        # the cost of look augmentation (issue 15)

Training frames/s counts frames through the encoder per second in the real training step (loss
module, backward, AdamW update) on a synthetic batch of the preset's shape; each precision /
memory-format variant is timed ``--repeats`` times after a warmup and the median is reported.
The rollout row is one batched ``WorldModel.rollout`` as a planner calls it (B candidates, H steps,
eval mode, no grad). Run it alone: any concurrent job distorts CPU timings badly.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch

from reverie.data.augment import AUGMENTS
from reverie.hardware import bf16_native, machine_line
from reverie.models.jepa import JEPALoss
from reverie.models.sigreg import build_regularizer
from reverie.models.world_model import WorldModel
from reverie.train import PRESETS, TrainConfig


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _train_step(
    cfg: TrainConfig,
    image_size: int,
    device: torch.device,
    bf16: bool,
    channels_last: bool,
    augment: str = "none",
) -> tuple[Callable[[int], None], int]:
    """One real training step (loss module, backward, AdamW) on a synthetic batch, and the
    frames it encodes (``augment``: an ``--augment`` name, ``+invW`` adding ``--invariance W``,
    e.g. ``look+inv1``)."""
    augment, _, inv = augment.partition("+inv")
    torch.manual_seed(0)
    model = WorldModel(cfg.model_config(action_dim=2 * cfg.frameskip, image_size=image_size)).to(
        device
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = JEPALoss(
        model,
        build_regularizer("sigreg", cfg.sigreg_directions),
        cfg.lam,
        cfg.rollout_weight,
        cfg.rollout,
        augment=AUGMENTS[augment],
        invariance=float(inv or 0),
    ).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    B, T = cfg.batch_size, cfg.history + cfg.rollout
    obs = torch.randint(0, 256, (B, T, 3, image_size, image_size), dtype=torch.uint8)
    actions = torch.rand(B, T - 1, model.action_dim) * 2 - 1
    obs, actions = obs.to(device), actions.to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()

    def step(i: int) -> None:
        with autocast:
            loss = loss_fn({"obs": obs, "actions": actions}, i)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, B * T


def train_fps(
    cfg: TrainConfig,
    image_size: int,
    device: torch.device,
    bf16: bool,
    channels_last: bool,
    steps: int,
    repeats: int,
    augments: tuple[str, ...] = ("none",),
) -> list[float]:
    """Median frames/s over ``repeats`` timed blocks of ``steps`` training steps, per augment.

    The augments' blocks alternate (A B C A B C ...), so a load that drifts during the run
    touches each of them alike: their ratio is the figure to trust on a shared machine.
    """
    steppers = [_train_step(cfg, image_size, device, bf16, channels_last, a) for a in augments]
    for step, _ in steppers:
        for i in range(3):  # warmup: allocator, oneDNN primitive caches
            step(i)
    rates: list[list[float]] = [[] for _ in steppers]
    for _ in range(repeats):
        for k, (step, frames) in enumerate(steppers):
            _sync(device)
            t0 = time.perf_counter()
            for i in range(steps):
                step(i)
            _sync(device)
            rates[k].append(frames * steps / (time.perf_counter() - t0))
    return [statistics.median(r) for r in rates]


@torch.no_grad()
def rollout_ms(
    cfg: TrainConfig,
    image_size: int,
    device: torch.device,
    candidates: int,
    horizon: int,
    bf16: bool,
    repeats: int = 20,
) -> float:
    torch.manual_seed(0)
    model = (
        WorldModel(cfg.model_config(action_dim=2 * cfg.frameskip, image_size=image_size))
        .to(device)
        .eval()
    )
    z = torch.randn(candidates, model.history, model.embed_dim, device=device)
    actions = torch.rand(candidates, horizon, model.action_dim, device=device) * 2 - 1
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    times = []
    for i in range(repeats + 3):
        _sync(device)
        t0 = time.perf_counter()
        with autocast:
            model.rollout(z, actions)
        _sync(device)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=list(PRESETS))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--channels", type=int, nargs="+", default=None, help="encoder channels")
    parser.add_argument(
        "--variants", nargs="+", default=None, help="fp32 fp32+cl bf16+cl (default: all)"
    )
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed block")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--augments",
        nargs="+",
        default=["none"],
        help="look augmentations to time (--augment names; NAME+invW adds --invariance W)",
    )
    parser.add_argument("--candidates", type=int, default=300, help="rollout batch (CEM samples)")
    parser.add_argument("--horizon", type=int, default=5, help="rollout length")
    args = parser.parse_args()
    print(machine_line(), flush=True)  # every figure names its machine
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = TrainConfig(
        data=".", out=".", preset=args.preset, batch_size=args.batch_size, channels=args.channels
    ).resolved()
    model = WorldModel(cfg.model_config(action_dim=2 * cfg.frameskip, image_size=args.image_size))
    n_enc = sum(p.numel() for p in model.encoder.parameters())
    n_pred = sum(p.numel() for p in model.predictor.parameters())
    T = cfg.history + cfg.rollout
    native = bf16_native(device)

    print(
        f"preset {args.preset}: {args.image_size}x{args.image_size}, batch {cfg.batch_size} "
        f"windows x {T} frames, device {device}, torch threads {torch.get_num_threads()}, "
        f"native bf16: {native}"
    )
    print(
        f"params: encoder {n_enc / 1e6:.2f}M, predictor {n_pred / 1e6:.2f}M, "
        f"total {(n_enc + n_pred) / 1e6:.2f}M"
    )
    print()
    print("| measurement | variant | value |")
    print("|---|---|---|")
    variants = [("fp32", False, False), ("bf16 autocast", True, False)]
    if model.config.encoder.kind == "cnn":
        variants = [
            ("fp32", False, False),
            ("fp32 + channels_last", False, True),
            ("bf16 + channels_last", True, True),
        ]
    short = {"fp32": "fp32", "fp32 + channels_last": "fp32+cl", "bf16 + channels_last": "bf16+cl"}
    short["bf16 autocast"] = "bf16"
    for name, bf16, cl in variants:
        if args.variants and short[name] not in args.variants:
            continue
        augs = tuple(args.augments)
        rates = train_fps(cfg, args.image_size, device, bf16, cl, args.steps, args.repeats, augs)
        for aug, fps in zip(augs, rates):
            label = name if aug == "none" else f"{name}, --augment {aug}"
            cost = f" ({rates[0] / fps:.2f}x the cost of {augs[0]})" if aug != augs[0] else ""
            print(
                f"| training frames/s (median of {args.repeats}) | {label} | {fps:,.0f}{cost} |",
                flush=True,
            )
    for name, bf16 in (("fp32", False), ("bf16", True)):
        ms = rollout_ms(cfg, args.image_size, device, args.candidates, args.horizon, bf16)
        print(f"| rollout B={args.candidates}, H={args.horizon} | {name} | {ms:.2f} ms |")
    # Encoding one frame (the MPC loop encodes the current observation every replan).
    model.eval()
    frame = torch.randint(0, 256, (1, 3, args.image_size, args.image_size), dtype=torch.uint8)
    with torch.no_grad():
        for _ in range(3):
            model.encode(frame.to(device))
        t0 = time.perf_counter()
        for _ in range(20):
            model.encode(frame.to(device))
        _sync(device)
    print(f"| encode 1 frame | fp32 | {1000 * (time.perf_counter() - t0) / 20:.2f} ms |")


if __name__ == "__main__":
    main()
