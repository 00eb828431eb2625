"""Sim-to-real gap: source vs randomized training, before/after K-episode adaptation.

    .venv/bin/python benchmarks/bench_simreal.py                        # full: 1000 eps, cpu preset
    .venv/bin/python benchmarks/bench_simreal.py --episodes 200 --steps 300 --eval-episodes 20 \
        --samples 100 --iterations 10 --out runs/bench_simreal_small     # a quick check

    .venv/bin/python benchmarks/bench_simreal.py --checkpoint runs/demo --steps 4000 \
        --adapt-episodes 20 5 100 --out runs/bench_simreal           # reuse the demo's model

    .venv/bin/python benchmarks/bench_simreal.py --looks --checkpoint runs/tw-base \
        --look-checkpoint runs/tw-look --out runs/bench_looks       # look invariance (issue 15)

``--looks`` measures the look instead (issue 15): the source model (``--checkpoint``, or trained
here) and the same recipe trained with ``--augment`` (``--look-checkpoint``, or trained here), each
on the same 50 source-look pairs under source / ``visual`` / ``visual-unseen`` / ``both``, and
the share of its own source SR each model keeps under the new looks (target ≥ 90%).

Steps: (1) collect ``--env`` data (Two-Room by default) at the default factors and train the
*source* model (or take ``--checkpoint``); (2) collect with ``--randomize physics`` and train
the *randomized* model;
(3) for each model, closed-loop success on the source settings and under the shift
(``physics-hard`` by default; the oracle CEM on the true shifted simulator gives the attainable
rate); (4) adapt each model with ``--adapt-episodes`` episodes under the shift (predictor only)
and evaluate again.
"Recovered" = SR after adaptation / SR of the source model on the source settings (target ≥ 80%).
(5) for every model, the open-loop latent prediction error (MSE by horizon 1..5, each model in its
own embedding space) on 20 held-out episodes under the shift and at the source settings.
Prints Markdown tables and writes OUT/bench_simreal.json. Finished cells are reused (a model or
adapted checkpoint that exists, an evaluation JSON with the same settings): delete OUT/ to rerun
everything. Run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from reverie.checkpoint import has_checkpoint, load_checkpoint, read_meta
from reverie.data.collect import CollectConfig, collect
from reverie.envs import env_class, make
from reverie.evaluate import EvalConfig, evaluate
from reverie.hardware import machine_line
from reverie.io import atomic_write_json
from reverie.planning.options import PlannerOptions
from reverie.simreal.adapt import AdaptConfig, adapt
from reverie.simreal.shifts import collect_episodes, make_shifted, open_loop_error, parse_shift
from reverie.train import TrainConfig, train


def _model(
    args: argparse.Namespace, name: str, randomize: str, augment: str = "none", data_name: str = ""
) -> Path:
    data, run = args.out / f"data_{data_name or name}", args.out / f"model_{name}"
    if has_checkpoint(run):
        return run  # reuse a finished run (delete it to retrain)
    if not (data / "manifest.json").is_file():
        collect(
            CollectConfig(
                env=args.env, episodes=args.episodes, out=data, randomize=randomize, workers=2
            ),
            progress=False,
        )
    cfg = TrainConfig(
        data=data,
        out=run,
        preset=args.preset,
        steps=args.steps,
        minutes=args.minutes,
        augment=augment,
        tensorboard=False,
        progress=False,
    )
    return train(cfg)


def _sr(args: argparse.Namespace, ckpt: Path | None, shift: str | None, tag: str) -> dict[str, Any]:
    s = parse_shift(args.env, shift) if shift else None
    cfg = EvalConfig(
        checkpoint=ckpt,
        env=args.env,
        planner="cem" if ckpt else "oracle",
        episodes=args.eval_episodes,
        planning=PlannerOptions(
            samples=args.samples, iterations=args.iterations, elites=min(30, args.samples // 4)
        ),
        videos=0,
        out=args.out / f"eval_{tag}.json",
        oracle_samples=args.oracle_samples,
        oracle_iterations=args.oracle_iterations,
        factors=s.factor_string() if s else "",
        latency=s.latency if s else 0,
        held_out_factors=bool(s and s.held_out),
        source_pairs=True,
    )
    keys = ("success_rate", "successes", "episodes", "ci95")
    if cfg.out.is_file():  # a finished cell with the same settings (all but cosmetic) is reused
        done = json.loads(cfg.out.read_text())
        fresh = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
        if all(
            done["config"].get(k) == v for k, v in fresh.items() if k not in ("out", "progress")
        ):
            return {k: done[k] for k in keys}
    r = evaluate(cfg, progress=False)
    return {k: r[k] for k in keys}


def _adapted(args: argparse.Namespace, ckpt: Path, name: str, k: int) -> Path:
    out = args.out / f"adapt_{name}_{k}"
    if has_checkpoint(out):  # reuse an adaptation with the same source, shift, K and steps
        conf = read_meta(out).get("adapt", {}).get("config", {})
        wanted = {
            "checkpoint": str(ckpt),
            "shift": args.shift,
            "episodes": k,
            "steps": args.adapt_steps,
        }
        if all(conf.get(key) == v for key, v in wanted.items()):
            return out
    return adapt(
        AdaptConfig(
            checkpoint=ckpt,
            out=out,
            shift=args.shift,
            episodes=k,
            steps=args.adapt_steps,
            progress=False,
        )
    )


def _held_out(args: argparse.Namespace, size: int) -> dict[str, list[dict[str, Any]]]:
    """20 episodes under the shift and 20 at the source settings, from a collection seed base
    (500) that neither training (0) nor adaptation (999) uses; the shift's latency included."""
    steps = env_class(args.env).max_episode_steps
    shifted = make_shifted(args.env, parse_shift(args.env, args.shift), size=size)
    return {
        "shift": collect_episodes(shifted, 20, 500, steps),
        "source": collect_episodes(make(args.env, size=size), 20, 500, steps),
    }


def _open_loop(args: argparse.Namespace, ckpt: Path, cache: dict) -> dict[str, list[float]]:
    """Open-loop MSE by horizon 1..5 on the held-out episodes (collected once per image size)."""
    model, _ = load_checkpoint(ckpt)
    if model.image_size not in cache:
        cache[model.image_size] = _held_out(args, model.image_size)
    with torch.inference_mode():
        return {
            k: open_loop_error(model, eps, 5)["mse"] for k, eps in cache[model.image_size].items()
        }


def _looks(args: argparse.Namespace, t0: float) -> None:
    """The look table (issue 15): each model under source / visual / visual-unseen / both."""
    models = {
        "without": args.checkpoint or _model(args, "look_base", "none", data_name="source"),
        f"--augment {args.augment}": args.look_checkpoint
        or _model(args, "look_aug", "none", augment=args.augment, data_name="source"),
    }
    settings = [None, *args.look_shifts.split(",")]
    rows: dict[str, Any] = {}
    for name, ckpt in models.items():
        tag = name.replace("--augment ", "aug_")
        rows[name] = {
            "checkpoint": str(ckpt),
            "steps": read_meta(ckpt).get("step"),
            "train_seconds": read_meta(ckpt).get("train_seconds"),
            **{
                (s or "source"): _sr(args, ckpt, s, f"look_{tag}_{s or 'source'}") for s in settings
            },
        }
        print(f"{name}: {json.dumps(rows[name])}", flush=True)
    heads = " | ".join(s or "source" for s in settings)
    print(
        f"\n{args.env}: {args.eval_episodes} source-look pairs per cell, CEM "
        f"{args.samples}x{args.iterations}\n"
    )
    print(f"| model | steps | {heads} | worst new look ÷ source |")
    print("|---|---|" + "---|" * len(settings) + "---|")
    for name, row in rows.items():
        src = row["source"]["success_rate"]
        new = [row[s]["success_rate"] for s in settings[1:] if s.startswith("visual")]
        keep = f"{100 * min(new) / src:.0f}%" if src and new else "-"
        cells = " | ".join(
            "{:g}% [{:.0f}, {:.0f}]".format(
                row[s or "source"]["success_rate"], *row[s or "source"]["ci95"]
            )
            for s in settings
        )
        print(f"| {name} | {row['steps']} | {cells} | {keep} |")
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write_json(args.out / "bench_looks.json", result)
    print(f"\nwall {result['wall_seconds']}s; JSON: {args.out / 'bench_looks.json'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None, help="source model (skip training)")
    p.add_argument("--env", default="tworoom", help="tworoom | pusht | reacher | tabletop")
    p.add_argument("--out", type=Path, default=Path("runs/bench_simreal"))
    p.add_argument("--episodes", type=int, default=1000, help="training episodes per model")
    p.add_argument("--steps", type=int, default=None, help="training steps (preset default)")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--shift", default="physics-hard")
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--oracle-samples", type=int, default=None, help="oracle CEM (default: same)")
    p.add_argument("--oracle-iterations", type=int, default=None)
    p.add_argument(
        "--adapt-episodes",
        type=int,
        nargs="+",
        default=[20],
        help="K values of the adaptation curve (the first one is the 'recovered' column)",
    )
    p.add_argument("--adapt-steps", type=int, default=300)
    p.add_argument("--skip-randomized", action="store_true")
    p.add_argument("--minutes", type=float, default=None, help="training budget per model")
    p.add_argument("--looks", action="store_true", help="the look table (issue 15) instead")
    p.add_argument("--look-checkpoint", type=Path, default=None, help="model trained --augment")
    p.add_argument("--augment", default="look", help="augmentation of the --looks model")
    p.add_argument("--look-shifts", default="visual,visual-unseen,both")
    args = p.parse_args()
    print(machine_line(), flush=True)  # every figure names its machine
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.looks:
        _looks(args, t0)
        return

    rows: dict[str, Any] = {"oracle": {"source": _sr(args, None, None, "oracle_source")}}
    rows["oracle"]["shift"] = _sr(args, None, args.shift, "oracle_shift")
    print(f"oracle: {json.dumps(rows['oracle'])}", flush=True)
    held_out: dict[int, Any] = {}  # image size -> held-out episodes
    open_loop: dict[str, Any] = {}
    # Each model is evaluated as soon as it exists, so an interrupted run still reports rows.
    for name, randomize in (("source", "none"), ("randomized", "physics")):
        if name == "randomized" and args.skip_randomized:
            continue
        if name == "source" and args.checkpoint is not None:
            ckpt = args.checkpoint
        else:
            ckpt = _model(args, name, randomize)
        print(f"{name} model ready at {time.perf_counter() - t0:.0f}s", flush=True)
        row = {"source": _sr(args, ckpt, None, f"{name}_source")}
        row["shift"] = _sr(args, ckpt, args.shift, f"{name}_shift")
        errors = {"model": _open_loop(args, ckpt, held_out)}
        for k in args.adapt_episodes:
            adapted = _adapted(args, ckpt, name, k)
            row[f"adapted_{k}"] = _sr(args, adapted, args.shift, f"{name}_adapted_{k}")
            errors[f"adapted_{k}"] = _open_loop(args, adapted, held_out)
        rows[name] = row
        open_loop[name] = errors
        print(f"{name}: {json.dumps(row)}", flush=True)

    base = rows["source"]["source"]["success_rate"]
    ks = args.adapt_episodes
    print(
        f"\n{args.env}, shift {args.shift}, {args.eval_episodes} held-out pairs per cell, CEM "
        f"{args.samples}x{args.iterations}; adaptation: K episodes, {args.adapt_steps} predictor "
        f"steps\n"
    )
    heads = " | ".join(f"SR after K={k}" for k in ks)
    print(
        f"| model | SR source | SR shift | ΔSR | {heads} | K={ks[0]} recovers: of the source "
        "model's source SR / of this model's |"
    )
    print("|---|---|---|---|" + "---|" * len(ks) + "---|")
    for name, row in rows.items():
        src, sh = row["source"]["success_rate"], row["shift"]["success_rate"]
        ads = [row.get(f"adapted_{k}", {}).get("success_rate") for k in ks]
        first = ads[0]
        rec = " / ".join(
            f"{100 * first / ref:.0f}%" if first is not None and ref else "-" for ref in (base, src)
        )
        cells = " | ".join("-" if a is None else f"{a:g}%" for a in ads)
        print(
            f"| {name} | {src:g}% {row['source']['ci95']} | {sh:g}% {row['shift']['ci95']} | "
            f"{sh - src:+g} | {cells} | {rec} |"
        )
    print(
        "\nOpen-loop latent MSE at horizon 1 / 5 (20 held-out episodes; each model family in its "
        "own embedding space, so compare within a row)\n"
    )
    cols = ["model", *(f"adapted_{k}" for k in ks)]
    print(
        "| model | setting | " + " | ".join(c.replace("adapted_", "after K=") for c in cols) + " |"
    )
    print("|---|---|" + "---|" * len(cols))
    for name, errors in open_loop.items():
        for setting in ("source", "shift"):
            cells = " | ".join(
                f"{errors[c][setting][0]:.3g} / {errors[c][setting][-1]:.3g}" for c in cols
            )
            print(f"| {name} | {setting} | {cells} |")
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": rows,
        "open_loop_mse": open_loop,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    atomic_write_json(args.out / "bench_simreal.json", result)
    print(f"\nwall {result['wall_seconds']}s; JSON: {args.out / 'bench_simreal.json'}")


if __name__ == "__main__":
    main()
