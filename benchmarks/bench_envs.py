"""Environment throughput: step + render frames/s at 64×64, one process and all workers.

    .venv/bin/python benchmarks/bench_envs.py [--steps 2000] [--repeats 3] [--workers 2]

Random actions, resets every episode length. Prints a markdown table (median of repeats).
Targets: >= 5,000 frames/s per core for the 2-D envs, >= 1,000 for the MuJoCo envs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


def run(name: str, steps: int, size: int = 64, seed: int = 0) -> float:
    from reverie.envs import make

    env = make(name, size=size)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    env.step(env.random_action(rng))  # warm-up: lazy renderers
    t0 = time.perf_counter()
    for i in range(steps):
        if i % env.max_episode_steps == 0:
            env.reset(seed=seed + i)
        env.step(env.random_action(rng))
    dt = time.perf_counter() - t0
    if hasattr(env, "close"):
        env.close()
    return steps / dt


def _worker(args: tuple[str, int, int]) -> float:
    return run(*args)


def main() -> None:
    from reverie.envs import ENV_NAMES

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--envs", nargs="*", default=list(ENV_NAMES))
    args = p.parse_args()
    from reverie.hardware import machine_line

    print(machine_line(), flush=True)  # every figure names its machine
    ctx = mp.get_context("spawn")
    print(f"| env | frames/s, 1 process | frames/s, {args.workers} workers (total) |")
    print("|---|---|---|")
    with ctx.Pool(args.workers) as pool:
        for name in args.envs:
            single = [run(name, args.steps) for _ in range(args.repeats)]
            multi = []
            for r in range(args.repeats):
                jobs = [(name, args.steps, 64, 1000 * r + w) for w in range(args.workers)]
                t0 = time.perf_counter()
                pool.map(_worker, jobs)
                multi.append(args.steps * args.workers / (time.perf_counter() - t0))
            print(
                f"| {name} | {statistics.median(single):,.0f} | {statistics.median(multi):,.0f} |"
            )


if __name__ == "__main__":
    main()
