"""Policy benchmark: success and ms per decision for CEM, the policy and policy+CEM; torch vs ONNX.

    reverie policy train --checkpoint runs/demo                       # -> runs/demo/policy
    .venv/bin/python benchmarks/bench_policy.py --checkpoint runs/demo --episodes 50

Part 1 runs the ``reverie eval`` protocol (the same held-out pairs for every planner) for
``cem``, ``policy`` and ``policy+cem`` and reports success (Wilson 95% CI), the policy's imagined
success (in the model) beside its real one, and the median replan time as eval measures it
(encoding the context and goal frames included).

Part 2 times one decision at batch 1 on one thread, ``--repeats`` times, median: ``policy`` is the
policy's forward pass from cached embeddings; ``encode + policy`` adds encoding the newest frame
(what a deployed loop pays per step once the goal is encoded); each in torch and in onnxruntime
(graphs from ``reverie export``, exported to a temporary directory unless ``--onnx DIR``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from reverie.evaluate import EvalConfig, evaluate
from reverie.hardware import machine_line


def timed(fn, repeats: int) -> float:
    for _ in range(10):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def decision_times(checkpoint: Path, policy_run: Path, onnx_dir: Path | None, repeats: int):
    from reverie.checkpoint import load_checkpoint
    from reverie.policies import load_policy

    torch.set_num_threads(1)
    model, meta = load_checkpoint(checkpoint)
    model.eval()
    policy, _ = load_policy(policy_run, meta)
    s, k, D = model.image_size, model.history, model.embed_dim
    obs = torch.randint(0, 256, (1, 3, s, s), dtype=torch.uint8)
    z_hist, z_goal = torch.randn(1, k, D), torch.randn(1, D)

    def torch_policy():
        with torch.inference_mode():
            policy(z_hist, z_goal)

    def torch_both():
        with torch.inference_mode():
            z = model.encode(obs)
            policy(torch.cat([z_hist[:, 1:], z[:, None]], 1), z_goal)

    rows = [("torch", "policy", timed(torch_policy, repeats))]
    rows.append(("torch", "encode + policy", timed(torch_both, repeats)))
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime missing (pip install 'reverie[export]'): no ONNX rows")
        return rows
    from reverie.export import ExportConfig, export

    tmp = None
    if onnx_dir is None:
        tmp = tempfile.TemporaryDirectory()
        onnx_dir = Path(tmp.name) / "bundle"
        export(ExportConfig(checkpoint=checkpoint, out=onnx_dir, policy_run=policy_run))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    enc = ort.InferenceSession(str(onnx_dir / "encoder.onnx"), opts)
    pol = ort.InferenceSession(str(onnx_dir / "policy.onnx"), opts)
    zh, zg, o = z_hist.numpy(), z_goal.numpy(), obs.numpy()

    def ort_policy():
        pol.run(None, {"z_hist": zh, "z_goal": zg})

    def ort_both():
        z = enc.run(None, {"obs": o})[0]
        pol.run(None, {"z_hist": np.concatenate([zh[:, 1:], z[:, None]], 1), "z_goal": zg})

    rows.append(("onnxruntime", "policy", timed(ort_policy, repeats)))
    rows.append(("onnxruntime", "encode + policy", timed(ort_both, repeats)))
    if tmp is not None:
        tmp.cleanup()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--policy", type=Path, default=None, help="policy run (CHECKPOINT/policy)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--planners", nargs="*", default=["cem", "policy", "policy+cem"])
    p.add_argument("--onnx", type=Path, default=None, help="an exported bundle to time")
    p.add_argument("--repeats", type=int, default=500)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    print(machine_line(), flush=True)  # every figure names its machine
    policy_run = args.policy or args.checkpoint / "policy"
    out = args.out or args.checkpoint / "bench_policy"
    rows = []
    for planner in args.planners:
        cfg = EvalConfig(
            checkpoint=args.checkpoint,
            episodes=args.episodes,
            planner=planner,
            policy_run=policy_run if planner.startswith("policy") else None,
            seed=args.seed,
            out=out / f"eval_{planner}.json",
            videos=0,
        )
        rows.append(evaluate(cfg, progress=False))
    print("| env | planner | success | 95% CI | imagined success | replan ms median |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        dream = r.get("imagined_success_rate")
        print(
            f"| {r['env']} | {r['planner']} | {r['success_rate']:.0f}% | "
            f"[{r['ci95'][0]:.0f}, {r['ci95'][1]:.0f}] | "
            f"{'-' if dream is None else f'{dream:.0f}%'} | {r['plan_ms_median']:.2f} |"
        )
    print()
    print("| runtime | one decision (batch 1, 1 thread) | ms median |")
    print("|---|---|---|")
    for runtime, what, ms in decision_times(args.checkpoint, policy_run, args.onnx, args.repeats):
        print(f"| {runtime} | {what} | {ms:.3f} |")


if __name__ == "__main__":
    main()
