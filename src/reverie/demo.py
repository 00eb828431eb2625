"""``reverie demo``: the main job. Collect, train, plan, act, evaluate against baselines, report.

    reverie demo                       # Two-Room: ~10 minutes or less on 2 cores of any CPU class
    reverie demo --quick               # about a minute (CI): tiny data, tiny model, 3 episodes
    reverie demo --env pusht --minutes 60      # a wall-clock training budget (steps: a bound)

Prints a summary table (success with Wilson interval for the world model planning with CEM, a
policy trained on the frozen model acting with no search (``reverie policy train``), random and
oracle baselines, planning ms, wall time per stage, the machine it ran on and the training steps
it got) and writes ``OUT/report.html`` and ``OUT/demo.json``. Episodes, steps and the training
budget come from the env's recipe (``reverie.recipes``) unless given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reverie.envs import resolve
from reverie.io import ReverieError, atomic_write_json
from reverie.recipes import recipe
from reverie.trainer import check_minutes

FRAMESKIP = 5  # env steps per model step (the public protocol's action block)


@dataclass(frozen=True)
class DemoConfig:
    """The end-to-end demo."""

    env: str = "tworoom"
    """Environment to run on."""
    preset: str | None = None
    """Model/training preset: tiny | cpu | lite | gpu (None: the env's recipe, Two-Room lite, else
    cpu; a run already in OUT keeps the preset it was trained with)."""
    out: Path = Path("runs/demo")
    """Run directory (data in OUT/data, checkpoint and report in OUT)."""
    quick: bool = False
    """A ~1-minute variant for CI: few episodes, tiny preset, 3 evaluation episodes."""
    episodes: int | None = None
    """Collection episodes (default per env)."""
    steps: int | None = None
    """Training steps (default per env): an upper bound when a budget is set."""
    minutes: float | None = None
    """Wall-clock training budget (default: the env's recipe, if it names one)."""
    eval_episodes: int | None = None
    """Held-out evaluation episodes (default 50; 3 with --quick)."""
    workers: int = 2
    """Collection worker processes."""
    seed: int = 0
    """Seed for collection, training and evaluation."""
    threads: int | None = None
    """torch threads for training (None: torch's default; 1 is steadier on a busy machine)."""
    progress: bool = True
    """Show progress bars (``reverie demo``; the Python call takes ``progress=``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", resolve(self.env))
        object.__setattr__(self, "out", Path(self.out))
        from reverie.train import PRESETS

        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        for name in ("episodes", "steps", "eval_episodes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        check_minutes(self.minutes)


def run_demo(cfg: DemoConfig, progress: bool = True) -> dict[str, Any]:
    from reverie.checkpoint import has_checkpoint, read_meta
    from reverie.data.collect import CollectConfig, collect
    from reverie.evaluate import EvalConfig, evaluate
    from reverie.hardware import machine, machine_line
    from reverie.policies.train import PolicyTrainConfig, train_policy
    from reverie.report import build_report
    from reverie.train import TrainConfig, train

    plan = recipe(cfg.env)
    preset = "tiny" if cfg.quick else cfg.preset
    if preset is None and has_checkpoint(cfg.out):  # resume what is there, as it was trained
        preset = (read_meta(cfg.out).get("train") or {}).get("preset")
    preset = preset or plan.get("preset", "cpu")
    episodes = cfg.episodes or (60 if cfg.quick else plan["episodes"])
    steps = cfg.steps or (150 if cfg.quick else plan["steps"])
    minutes = cfg.minutes if cfg.minutes is not None or cfg.quick else plan.get("minutes")
    n_eval = cfg.eval_episodes or (3 if cfg.quick else 50)
    times: dict[str, float] = {}
    hardware = machine()
    if progress:
        print(machine_line(hardware), flush=True)

    # Step 1. data.
    t0 = time.perf_counter()
    data = collect(
        CollectConfig(
            env=cfg.env, episodes=episodes, out=cfg.out / "data", workers=cfg.workers, seed=cfg.seed
        ),
        progress=progress,
    )
    times["collect"] = time.perf_counter() - t0

    # Step 2. the world model.
    t0 = time.perf_counter()
    run = train(
        TrainConfig(
            data=data,
            out=cfg.out,
            preset=preset,
            steps=steps,
            minutes=minutes,
            seed=cfg.seed,
            resume=True,
            frameskip=FRAMESKIP,
            progress=progress,
            threads=cfg.threads,
        )
    )
    times["train"] = time.perf_counter() - t0

    # Step 3. a goal-conditioned policy on the frozen model (hindsight inverse dynamics).
    t0 = time.perf_counter()
    policy_run = cfg.out / "policy"
    _check_policy(policy_run, read_meta(run))
    train_policy(
        PolicyTrainConfig(
            checkpoint=run,
            out=policy_run,
            steps=50 if cfg.quick else PolicyTrainConfig.steps,
            seed=cfg.seed,
            resume=has_checkpoint(policy_run),
            progress=progress,
        )
    )
    times["policy"] = time.perf_counter() - t0

    # Step 4. closed-loop planning and acting with the model, then the baselines, one harness.
    results = {}
    for planner in ("cem", "policy", "random", "oracle"):
        t0 = time.perf_counter()
        ecfg = EvalConfig(
            checkpoint=run,
            env=cfg.env,
            episodes=n_eval,
            planner=planner,
            seed=cfg.seed,
            out=cfg.out / f"eval_{planner}.json",
            videos=4 if planner in ("cem", "policy") else 2,
        )
        results[planner] = evaluate(ecfg, progress=progress)
        times[f"eval {planner}"] = time.perf_counter() - t0

    # Step 5. the report.
    t0 = time.perf_counter()
    summary = {
        "env": cfg.env,
        "preset": preset,
        "episodes_collected": episodes,
        "train_steps": read_meta(run)["step"],
        "train_steps_max": steps,
        "train_minutes": minutes,
        "machine": hardware,
        "stage_seconds": times,
    }
    atomic_write_json(cfg.out / "demo.json", summary)
    report = build_report(cfg.out)
    times["report"] = time.perf_counter() - t0
    summary.update(
        stage_seconds=times,
        total_seconds=sum(times.values()),
        report=str(report),
        results={
            k: {
                key: v[key]
                for key in ("success_rate", "ci95", "episodes", "plan_ms_median", "plan_ms_p90")
            }
            for k, v in results.items()
        },
    )
    atomic_write_json(cfg.out / "demo.json", summary)
    return summary


def _check_policy(policy_run: Path, meta: dict[str, Any]) -> None:
    """A policy left in OUT by an earlier demo must be for the model now there (it resumes)."""
    from reverie.checkpoint import checkpoint_kind, read_meta

    if not policy_run.exists():
        return
    if checkpoint_kind(policy_run) != "reverie-policy":
        raise ReverieError(f"{policy_run} exists and is not a policy run: move it or pick --out")
    want = (meta.get("files") or {}).get("model.safetensors")
    if read_meta(policy_run, "reverie-policy").get("world_model_sha256") != want:
        raise ReverieError(
            f"{policy_run} holds a policy for other world-model weights: remove it (or pick "
            f"another --out) to train one for this model"
        )


def format_summary(summary: dict[str, Any]) -> str:
    from reverie.hardware import machine_line

    budget = f" in a {summary['train_minutes']:g}-minute budget" if summary["train_minutes"] else ""
    lines = [
        f"Reverie demo: {summary['env']} ({summary['preset']} preset, "
        f"{summary['episodes_collected']} episodes, {summary['train_steps']} of at most "
        f"{summary['train_steps_max']} train steps{budget})",
        machine_line(summary["machine"]),
        "",
        f"{'planner':<22}{'success':>9}  {'95% CI':<16}{'plan ms (med/p90)':>20}",
        "-" * 67,
    ]
    labels = {
        "cem": "world model + CEM",
        "policy": "policy (no search)",
        "random": "random actions",
        "oracle": "oracle (true sim)",
    }
    for key, r in summary["results"].items():
        ci = f"[{r['ci95'][0]:.0f}, {r['ci95'][1]:.0f}]"
        ms = (
            f"{r['plan_ms_median']:.0f} / {r['plan_ms_p90']:.0f}"
            if r["plan_ms_median"] is not None
            else "-"
        )
        lines.append(f"{labels.get(key, key):<22}{r['success_rate']:>8.1f}%  {ci:<16}{ms:>20}")
    lines += [
        "",
        "wall time: "
        + ", ".join(f"{k} {v:.0f}s" for k, v in summary["stage_seconds"].items())
        + f" (total {summary['total_seconds']:.0f}s)",
        f"report: {summary['report']}",
    ]
    return "\n".join(lines)
