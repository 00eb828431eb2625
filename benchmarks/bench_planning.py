"""Planning benchmark: closed-loop success (Wilson 95% CI) and planning ms per env and planner.

    .venv/bin/python benchmarks/bench_planning.py --checkpoint runs/demo --episodes 50
    .venv/bin/python benchmarks/bench_planning.py --checkpoint runs/demo --planners cem mppi \\
        --baselines random oracle

Runs the evaluation protocol of ``reverie eval`` (held-out pairs, success on the true state) for
each planner with the checkpoint and each baseline on the checkpoint's env, then prints a markdown
table. Result JSONs go to OUT (default: CHECKPOINT/bench_planning/).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reverie.evaluate import EvalConfig, evaluate
from reverie.hardware import machine_line


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--planners", nargs="*", default=["cem"])
    p.add_argument("--baselines", nargs="*", default=["random", "oracle"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--oracle-samples", type=int, default=None)
    p.add_argument("--oracle-iterations", type=int, default=None)
    args = p.parse_args()
    print(machine_line(), flush=True)  # every figure names its machine
    out = args.out or args.checkpoint / "bench_planning"
    rows = []
    for planner in [*args.planners, *args.baselines]:
        cfg = EvalConfig(
            checkpoint=args.checkpoint,
            episodes=args.episodes,
            planner=planner,
            seed=args.seed,
            out=out / f"eval_{planner}.json",
            videos=0,
            oracle_samples=args.oracle_samples,
            oracle_iterations=args.oracle_iterations,
        )
        rows.append(evaluate(cfg, progress=False))
    print("| env | planner | success | 95% CI | episodes | plan ms median | plan ms p90 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        med = "-" if r["plan_ms_median"] is None else f"{r['plan_ms_median']:.0f}"
        p90 = "-" if r["plan_ms_p90"] is None else f"{r['plan_ms_p90']:.0f}"
        print(
            f"| {r['env']} | {r['planner']} | {r['success_rate']:.0f}% | "
            f"[{r['ci95'][0]:.0f}, {r['ci95'][1]:.0f}] | {r['episodes']} | {med} | {p90} |"
        )


if __name__ == "__main__":
    main()
