"""``reverie play`` throughput: drive the WebSocket headlessly in Live and Dream mode at 64×64.

    .venv/bin/python benchmarks/bench_play.py [--checkpoint RUN] [--steps 300] [--repeats 3]

Starts the real server (``python -m reverie.viewer.server``, 1 torch thread, as ``reverie play``
runs it) in a subprocess and connects a ``websockets`` client that behaves like the page: one
request in flight, the next action sent as soon as the previous frame arrives. Each Live step is a
simulator step + encode + predict + 3-step rollout + 4 decoded frames; each Dream step the same
without simulator and encoder. Prints frames/s and the median / p99 round-trip step latency
(median over repeats). Target: >= 30 frames/s in both modes.

Without ``--checkpoint`` it builds a throwaway one with the chosen preset's architecture
(``--preset cpu`` by default: what ``reverie train`` makes) trained for a few steps: speed depends
on the architecture, not on how well it was trained.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_checkpoint(root: Path, preset: str) -> Path:
    """Collect 20 Two-Room episodes, train ``preset`` 20 steps and a decoder 20 steps (~15 s).

    One torch thread: on a busy 2-core machine two threads made this take minutes, not seconds.
    """
    from reverie.data.collect import CollectConfig, collect
    from reverie.models.decoder import DecoderTrainConfig, train_decoder
    from reverie.train import TrainConfig, train

    data = collect(
        CollectConfig(env="tworoom", episodes=20, out=root / "data", episode_steps=40),
        progress=False,
    )
    run = train(
        TrainConfig(
            data=data,
            out=root / "run",
            preset=preset,
            steps=20,
            tensorboard=False,
            progress=False,
            val_windows=32,
            threads=1,
        )
    )
    train_decoder(DecoderTrainConfig(checkpoint=run, steps=20, progress=False, threads=1))
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def drive(url: str, mode: str, steps: int, warmup: int = 20) -> dict[str, float]:
    """One connection: switch to ``mode``, then ``steps`` sequential actions; timings."""
    import websockets

    async with websockets.connect(url, max_size=2**24) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        await ws.recv()  # the initial frame
        await ws.send(json.dumps({"type": "mode", "mode": mode}))
        await ws.recv()
        keys = [["right"], ["down"], ["left"], ["up"]]
        latencies, server_ms, sizes = [], [], []
        t_start = 0.0
        for i in range(warmup + steps):
            if i == warmup:
                t_start = time.perf_counter()
            t0 = time.perf_counter()
            await ws.send(json.dumps({"type": "action", "keys": keys[(i // 10) % 4]}))
            raw = await ws.recv()
            dt = time.perf_counter() - t0
            reply = json.loads(raw)
            assert reply["type"] == "frame" and reply["mode"] == mode, reply.get("message")
            if i >= warmup:
                latencies.append(dt * 1000)
                server_ms.append(reply["server_ms"])
                sizes.append(len(raw))
        total = time.perf_counter() - t_start
    return {
        "fps": steps / total,
        "median_ms": float(np.median(latencies)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "server_ms": float(np.median(server_ms)),
        "kb_per_frame": float(np.mean(sizes)) / 1024,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=None, help="run dir with a decoder")
    p.add_argument("--preset", default="cpu", help="architecture of the throwaway checkpoint")
    p.add_argument("--steps", type=int, default=300, help="timed steps per mode and repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="server torch threads")
    args = p.parse_args()
    from reverie.hardware import machine_line

    print(machine_line(), flush=True)  # every figure names its machine

    with tempfile.TemporaryDirectory() as tmp:
        run = args.checkpoint or build_checkpoint(Path(tmp), args.preset)
        port = free_port()
        env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reverie.viewer.server",
                "--checkpoint",
                str(run),
                "--port",
                str(port),
                "--threads",
                str(args.threads),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            line = server.stdout.readline()  # "reverie play: open http://..." once it is up
            if "reverie play" not in line:
                raise SystemExit(f"server failed to start: {line}{server.stdout.read()}")
            url = f"ws://127.0.0.1:{port}/ws"
            _wait_for_port(port)
            results: dict[str, list[dict[str, float]]] = {"live": [], "dream": []}
            for _ in range(args.repeats):
                for mode in results:
                    results[mode].append(asyncio.run(drive(url, mode, args.steps)))
        finally:
            server.terminate()
            server.wait(10)

    meta = json.loads((run / "config.json").read_text()) if args.checkpoint else None
    arch = meta["train"]["preset"] if meta and "train" in meta else args.preset
    print(
        f"\nreverie play, Two-Room 64×64, preset {arch}, server threads {args.threads}, "
        f"{args.steps} steps × {args.repeats} repeats (median of repeats)\n"
    )
    print("| mode | frames/s | median step ms | p99 step ms | server ms | KiB/frame |")
    print("|---|---|---|---|---|---|")
    for mode, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        ok = "" if med["fps"] >= 30 else " (below the 30 target)"
        print(
            f"| {mode} | {med['fps']:.0f}{ok} | {med['median_ms']:.1f} | {med['p99_ms']:.1f} "
            f"| {med['server_ms']:.1f} | {med['kb_per_frame']:.0f} |"
        )


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"server did not open port {port}")


if __name__ == "__main__":
    main()
