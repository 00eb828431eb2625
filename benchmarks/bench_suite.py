"""Benchmark suite: collect -> train -> probe -> eval (CEM, random, oracle) per env, one table.

    .venv/bin/python benchmarks/bench_suite.py                     # every env, the recipes (hours)
    .venv/bin/python benchmarks/bench_suite.py --envs tworoom --quick --threads 1   # ~20 s smoke
    .venv/bin/python benchmarks/bench_suite.py --envs pusht --minutes 60 --pairs 50

Every stage is the real command, run as a subprocess (``python -m reverie collect|train|probe|
eval``), so a failing stage fails only its env's row. Without flags collect and train get none
beyond their paths: the env's recipe (``reverie.recipes``) decides episodes, steps and preset,
which is how the headline rows are reproduced. Suite flags scale that (``--episodes --steps
--minutes --pairs --samples --iterations --oracle-samples --oracle-iterations``); ``--quick`` is
a tiny variant for CI (a few episodes, the tiny preset, 30 steps, 2 pairs, CEM 16x2).

Layout (the commands' default output paths inside the model directory):

    ROOT/ENV/data/                  reverie collect --out
    ROOT/ENV/model/                 reverie train --out (checkpoint, metrics.jsonl, tb/)
    ROOT/ENV/model/probe_none.json  reverie probe
    ROOT/ENV/model/eval_<p>.json    reverie eval --planner p, for p in cem, random, oracle
    ROOT/ENV/logs/<stage>.log       each stage's output (appended; ``tail -f`` to watch)
    ROOT/ENV/suite_log.jsonl        one record per stage and suite run: run or skip, seconds
    ROOT/suite.json                 the table as JSON (rows of other envs already there are kept)

Resume: a stage whose output is complete is skipped (a dataset whose manifest says complete with
the episodes asked for; a checkpoint at its step target or past its time budget; a probe or eval
JSON that parses and was made with these settings from this checkpoint step). An unfinished
collection or training continues (``reverie collect`` keeps finished shards, ``reverie train
--resume`` the checkpoint), so rerunning after a kill picks up where it stopped. A finished result
made with other settings is never overwritten: the env's row reports the mismatch instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reverie.cliargs import OneLineParser
from reverie.hardware import machine, machine_line
from reverie.io import ReverieError, atomic_write_json
from reverie.stats import wilson

ENVS = ("pusht", "reacher", "tabletop", "tworoom")
PLANNERS = ("cem", "random", "oracle")
STAGES = ("collect", "train", "probe", *(f"eval_{p}" for p in PLANNERS))

# Per-env settings beyond the commands' defaults (None or absent: the flag is not passed, so the
# command and the env's recipe decide; the oracle's budget and cost come from the env's
# ``reverie.evaluate.ORACLE_DEFAULTS``).
# fmt: off
TABLE: dict[str, dict[str, Any]] = {env: {} for env in ENVS}
# --quick: seconds per env on one core. frameskip 5 as in the recipes (tiny's own is 1).
QUICK: dict[str, Any] = {
    "episodes": 6, "episode_steps": 50, "preset": "tiny", "steps": 30, "frameskip": 5,
    "tensorboard": False, "probe_episodes": 8, "probe_steps": 50, "pairs": 2, "samples": 16,
    "elites": 4, "iterations": 2, "oracle_samples": 16, "oracle_iterations": 2, "videos": 0,
}
# fmt: on
#: Suite flags that override the table and --quick (None: not given).
FLAGS = ("episodes", "steps", "minutes", "pairs", "samples", "iterations", "elites")
FLAGS += ("oracle_samples", "oracle_iterations", "workers", "threads")


class StageError(Exception):
    """A stage failed or a finished result does not match: ends this env's row, not the suite."""


# ----------------------------------------------------------------------------------- settings
def settings_for(env: str, args: argparse.Namespace) -> dict[str, Any]:
    """The table's row, then --quick, then the flags given: what each command is passed."""
    out = dict(TABLE[env])
    if args.quick:
        out.update(QUICK)
    out.update({k: getattr(args, k) for k in FLAGS if getattr(args, k) is not None})
    return out


def eval_config(env: str, planner: str, s: dict[str, Any], checkpoint: Path = Path("model")) -> Any:
    """The ``EvalConfig`` ``reverie eval`` builds from these settings (validates them, and is
    what a finished eval JSON's ``config`` is compared with)."""
    from reverie.evaluate import EvalConfig
    from reverie.planning.options import PlannerOptions

    plan = {k: s[k] for k in ("samples", "iterations", "elites") if s.get(k) is not None}
    kw = {k: s[k] for k in ("oracle_samples", "oracle_iterations") if s.get(k) is not None}
    if s.get("pairs") is not None:
        kw["episodes"] = s["pairs"]
    return EvalConfig(
        checkpoint=checkpoint, env=env, planner=planner, planning=PlannerOptions(**plan), **kw
    )


def flags(pairs: dict[str, Any]) -> list[str]:
    """``{"episode_steps": 50, "tensorboard": False}`` -> ``--episode-steps 50 --no-tensorboard``
    (None values are left out: the command's default applies)."""
    out: list[str] = []
    for key, value in pairs.items():
        name = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(name if value else "--no-" + name[2:])
        elif value is not None:
            out += [name, str(value)]
    return out


def commands(env: str, cell: Path, s: dict[str, Any]) -> dict[str, list[str]]:
    """The argv of every stage of one env (after ``python -m reverie``)."""
    data, model = cell / "data", cell / "model"
    collect = ["collect", "--env", env, "--out", str(data), "--no-progress"]
    collect += flags({k: s.get(k) for k in ("episodes", "episode_steps", "workers")})
    train = ["train", "--data", str(data), "--out", str(model), "--resume", "--no-progress"]
    keys = ("preset", "steps", "minutes", "frameskip", "threads", "tensorboard")
    train += flags({k: s.get(k) for k in keys})
    probe = ["probe", "--checkpoint", str(model)]
    probe += flags(
        {"episodes": s.get("probe_episodes"), "steps": s.get("probe_steps"), **_threads(s)}
    )
    out = {"collect": collect, "train": train, "probe": probe}
    for planner in PLANNERS:
        cmd = ["eval", "--checkpoint", str(model), "--planner", planner, "--no-progress"]
        keys = ("samples", "iterations", "elites", "oracle_samples", "oracle_iterations", "videos")
        cmd += flags({"episodes": s.get("pairs"), **{k: s.get(k) for k in keys}, **_threads(s)})
        out[f"eval_{planner}"] = cmd
    return out


def _threads(s: dict[str, Any]) -> dict[str, Any]:
    return {"threads": s.get("threads")}


# ------------------------------------------------------------------- is a stage finished?
def _read(path: Path) -> dict[str, Any] | None:
    """A JSON result file's content; None when it is missing or unreadable (not finished)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def collect_done(data: Path, s: dict[str, Any], env: str) -> str | None:
    """Why the dataset is finished (None: collect must run)."""
    from reverie.data.collect import CollectConfig

    m = _read(data / "manifest.json")
    if not m or not m.get("complete"):
        return None
    want = s.get("episodes") or CollectConfig(env=env).episodes  # the env's recipe
    if m.get("episodes") != want:
        return None  # collect grows it (or refuses, one line, to shrink it)
    return f"complete, {m.get('episodes')} episodes"


def model_meta(model: Path) -> dict[str, Any] | None:
    from reverie.checkpoint import has_checkpoint, read_meta

    if not has_checkpoint(model):
        return None
    try:
        return read_meta(model)
    except ReverieError as e:
        raise StageError(str(e)) from None


def train_done(model: Path, data: Path, s: dict[str, Any]) -> str | None:
    """Why training is finished: at its step target, or its time budget spent (None: run it)."""
    meta = model_meta(model)
    if meta is None:
        return None
    recorded = meta.get("train") or {}
    for key in ("preset", "steps", "minutes", "frameskip"):
        if s.get(key) is not None and recorded.get(key) != s[key]:
            raise StageError(
                f"{model} was trained with {key}={recorded.get(key)}, this suite asks "
                f"{s[key]}: pass the same settings or choose another --root"
            )
    step, target = int(meta.get("step") or 0), int(recorded.get("steps") or 0)
    minutes, seconds = recorded.get("minutes"), float(meta.get("train_seconds") or 0.0)
    if step >= target:
        why = f"step {step} of {target}"
    elif minutes is not None and seconds >= 60.0 * minutes:
        why = f"step {step}: the {minutes:g}-minute budget is spent"
    else:
        return None  # unfinished: train --resume continues it
    held = (_read(data / "manifest.json") or {}).get("episodes")
    trained = (meta.get("data") or {}).get("episodes")
    if held is not None and trained is not None and held != trained:
        raise StageError(
            f"{model} was trained on {trained} episodes, {data} now holds {held}: choose "
            "another --root to train on the new data"
        )
    return why


def probe_done(model: Path, s: dict[str, Any]) -> str | None:
    result = _read(model / "probe_none.json")
    if result is None or "state_r2" not in result:
        return None
    want = s.get("probe_episodes")
    if want is None:
        from reverie.probe import ProbeConfig

        want = ProbeConfig.episodes
    if result.get("episodes") != want:
        raise StageError(
            f"{model / 'probe_none.json'} was made with {result.get('episodes')} episodes, this "
            f"suite asks {want}: pass the same settings or choose another --root"
        )
    return f"{len(result['state_r2'])} state variables"


#: What a finished eval JSON's ``config`` must share with the suite's settings.
EVAL_KEYS = ("episodes", "seed", "budget", "planning", "oracle_samples", "oracle_iterations")


def eval_done(model: Path, env: str, planner: str, s: dict[str, Any]) -> str | None:
    path = model / f"eval_{planner}.json"
    result = _read(path)
    if result is None or "success_rate" not in result or "config" not in result:
        return None
    want = dataclasses.asdict(eval_config(env, planner, s, model))
    for key in EVAL_KEYS:
        if result["config"].get(key) != want[key]:
            raise StageError(
                f"{path} was made with {key}={result['config'].get(key)}, this suite asks "
                f"{want[key]}: pass the same settings or choose another --root"
            )
    step = (model_meta(model) or {}).get("step")
    if result.get("checkpoint_step") != step:
        raise StageError(
            f"{path} was made at checkpoint step {result.get('checkpoint_step')}, the model is "
            f"at {step}: choose another --root"
        )
    return f"{result['success_rate']:g}% of {result['episodes']}"


def stage_done(stage: str, env: str, cell: Path, s: dict[str, Any]) -> str | None:
    data, model = cell / "data", cell / "model"
    if stage == "collect":
        return collect_done(data, s, env)
    if stage == "train":
        return train_done(model, data, s)
    if stage == "probe":
        return probe_done(model, s)
    return eval_done(model, env, stage.removeprefix("eval_"), s)


# ------------------------------------------------------------------------------------ running
def run_env(env: str, root: Path, s: dict[str, Any], verbose: bool) -> dict[str, Any]:
    """Run (or skip) every stage of one env; returns its row (``error`` set if a stage failed)."""
    cell = root / env
    (cell / "logs").mkdir(parents=True, exist_ok=True)
    cmds = commands(env, cell, s)
    stages: dict[str, dict[str, Any]] = {}
    error = None
    for stage in STAGES:
        t0 = time.perf_counter()
        try:
            why = stage_done(stage, env, cell, s)
            if why is not None:
                print(f"[{env}] {stage:<11} skip: {why}", flush=True)
                stages[stage] = {"action": "skip", "why": why}
            else:
                log = cell / "logs" / f"{stage}.log"
                argv = [sys.executable, "-m", "reverie", *cmds[stage]]
                print(f"[{env}] {stage:<11} run: {' '.join(argv[1:])}  (log {log})", flush=True)
                _run(argv, log, verbose)
                if stage_done(stage, env, cell, s) is None:  # the command ended, the output is not
                    raise StageError(f"{stage} ended without a finished result (see {log})")
                seconds = round(time.perf_counter() - t0, 2)
                print(f"[{env}] {stage:<11} done in {seconds:.1f} s", flush=True)
                stages[stage] = {"action": "run", "seconds": seconds}
        except StageError as e:
            error = f"{stage}: {e}"
            print(f"[{env}] {stage:<11} FAILED: {e}", flush=True)
            stages[stage] = {"action": "failed", "error": str(e)}
        except KeyboardInterrupt:
            _log(cell, stage, {"action": "interrupted"})
            raise
        _log(cell, stage, stages[stage])
        if error:
            break
    row = build_row(env, cell)
    row["stages"] = stages
    if error:
        row["error"] = error
    return row


def _log(cell: Path, stage: str, what: dict[str, Any]) -> None:
    """Append one record to ROOT/ENV/suite_log.jsonl (a log: appended, never rewritten)."""
    record = {"stage": stage, **what, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(cell / "suite_log.jsonl", "a") as f:
        f.write(json.dumps({**record, "machine": machine_line()}) + "\n")


def _run(argv: list[str], log: Path, verbose: bool) -> None:
    """Run one command, its output appended to ``log`` (and echoed with --verbose)."""
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(argv)}   # {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        f.flush()
        rc = subprocess.run(
            argv, stdout=None if verbose else f, stderr=subprocess.STDOUT
        ).returncode
    if rc != 0:
        lines = [x for x in log.read_text().splitlines() if x.strip()]
        last = lines[-1] if lines and not verbose else f"exit status {rc}"
        raise StageError(f"{last} (exit {rc}; log {log})")


# ------------------------------------------------------------------------------------- the row
def probe_summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """Mean R² over the state variables, and per angle the mean of its sin and cos R²."""
    if result is None:
        return None
    r2 = {k: v for k, v in result.get("state_r2", {}).items() if v is not None}
    angles: dict[str, list[float]] = {}
    for key, value in r2.items():
        for suffix in ("_sin", "_cos"):
            if key.endswith(suffix):
                angles.setdefault(key.removesuffix(suffix), []).append(value)
    return {
        "mean_r2": round(sum(r2.values()) / len(r2), 4) if r2 else None,
        "angle_r2": {k: round(sum(v) / len(v), 4) for k, v in angles.items()},
        "state_r2": result.get("state_r2", {}),
        "episodes": result.get("episodes"),
    }


def planner_summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    n, k = int(result["episodes"]), int(result["successes"])
    out = {
        "success_rate": result["success_rate"],
        "successes": k,
        "n": n,
        "ci95": list(result.get("ci95") or wilson(k, n)),
        "plan_ms_median": result.get("plan_ms_median"),
        "samples": (result.get("config") or {}).get("planning", {}).get("samples"),
        "iterations": (result.get("config") or {}).get("planning", {}).get("iterations"),
    }
    if result["planner"] == "oracle":
        used = result.get("oracle") or {}  # what the oracle ran with (flags or env defaults)
        out["samples"] = used.get("samples", out["samples"])
        out["iterations"] = used.get("iterations", out["iterations"])
        out["cost"] = used.get("cost")
    if "published_success_rate" in result:
        out["published_success_rate"] = result["published_success_rate"]
        out["published_ci95"] = list(result["published_ci95"])
    return out


def build_row(env: str, cell: Path) -> dict[str, Any]:
    """Everything the table shows for one env, read back from the files (resume-safe)."""
    model = cell / "model"
    try:
        meta = model_meta(model) or {}
    except StageError:
        meta = {}
    train = meta.get("train") or {}
    info = machine()
    return {
        "env": env,
        "episodes": (_read(cell / "data" / "manifest.json") or {}).get("episodes"),
        "preset": train.get("preset"),
        "train_steps": meta.get("step"),
        "train_steps_max": train.get("steps"),
        "train_minutes": train.get("minutes"),
        "train_seconds": meta.get("train_seconds"),
        "probe": probe_summary(_read(model / "probe_none.json")),
        "planners": {p: planner_summary(_read(model / f"eval_{p}.json")) for p in PLANNERS},
        "machine": info,
        "machine_line": machine_line(info),
        "root": str(cell),
    }


# ----------------------------------------------------------------------------------- the table
def _pct(p: dict[str, Any] | None, key: str = "success_rate", ci: str = "ci95") -> str:
    if p is None:
        return "-"
    return f"{p[key]:.0f}% [{p[ci][0]:.0f}, {p[ci][1]:.0f}]"


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| env | data eps | train steps | train s | probe R² (mean) | angle R² | model CEM | "
        "random | oracle | Push-T published (CEM / oracle) | pairs |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        pl, probe = r["planners"], r.get("probe")
        steps = "-" if r["train_steps"] is None else f"{r['train_steps']:,}"
        if r.get("train_steps_max") and r["train_steps"] != r["train_steps_max"]:
            steps += f" of {r['train_steps_max']:,}"
        seconds = "-" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
        mean = "-" if not probe or probe["mean_r2"] is None else f"{probe['mean_r2']:.2f}"
        angle = (
            ", ".join(f"{k} {v:.2f}" for k, v in probe["angle_r2"].items())
            if probe and probe["angle_r2"]
            else "-"
        )
        published = "-"
        if any(p and "published_success_rate" in p for p in pl.values()):
            published = " / ".join(
                _pct(pl[k], "published_success_rate", "published_ci95") for k in ("cem", "oracle")
            )
        pairs = "/".join(sorted({str(p["n"]) for p in pl.values() if p})) or "-"
        cells = [r["env"], str(r["episodes"] or "-"), steps, seconds, mean, angle]
        cells += [_pct(pl[p]) for p in PLANNERS] + [published, pairs]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [f"\n{r['env']} failed at {r['error']}" for r in rows if r.get("error")]
    return "\n".join(lines)


def write_json(root: Path, rows: list[dict[str, Any]]) -> Path:
    """ROOT/suite.json: this run's rows replace theirs; other envs' rows already there stay."""
    path = root / "suite.json"
    kept = [
        r
        for r in (_read(path) or {}).get("rows", [])
        if r.get("env") not in {x["env"] for x in rows}
    ]
    rows = sorted(kept + rows, key=lambda r: r["env"])
    info = machine()
    atomic_write_json(path, {"machine": info, "machine_line": machine_line(info), "rows": rows})
    return path


# --------------------------------------------------------------------------------------- CLI
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of minutes > 0, got {text!r}")
    return value


def _envs(text: str) -> list[str]:
    names = list(ENVS) if text.strip() == "all" else [x.strip() for x in text.split(",")]
    unknown = [x for x in names if x not in ENVS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown env {unknown[0] if unknown else text!r}; known: {', '.join(ENVS)} or all"
        )
    return list(dict.fromkeys(names))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(prog="bench_suite.py", description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=_envs, default=list(ENVS), help="comma-separated, or all")
    p.add_argument("--root", type=Path, default=Path("runs/suite"), help="ROOT/ENV/data|model")
    p.add_argument("--quick", action="store_true", help="tiny variant for CI (seconds per env)")
    p.add_argument("--episodes", type=_positive_int, help="collect episodes (default: recipe)")
    p.add_argument("--steps", type=_positive_int, help="training steps (default: recipe)")
    p.add_argument("--minutes", type=_minutes, help="training wall-clock budget")
    p.add_argument("--pairs", type=_positive_int, help="held-out eval pairs (default: eval's 50)")
    for name, what in (
        ("samples", "CEM candidates"),
        ("iterations", "CEM iterations"),
        ("elites", "CEM elites"),
        ("oracle-samples", "oracle CEM candidates"),
        ("oracle-iterations", "oracle CEM iterations"),
    ):
        p.add_argument(f"--{name}", type=_positive_int, help=f"{what} (eval's --{name})")
    p.add_argument("--workers", type=_positive_int, help="collect worker processes")
    p.add_argument("--threads", type=_positive_int, help="torch threads of train, probe, eval")
    p.add_argument("--verbose", action="store_true", help="echo stage output, not only logs")
    args = p.parse_args(argv)
    for env in args.envs:  # settings eval would refuse, refused now rather than after training
        try:
            for planner in PLANNERS:
                eval_config(env, planner, settings_for(env, args))
        except ValueError as e:
            p.error(f"{env}: {e}")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so subprocess.run kills the running stage, not orphans it


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    print(machine_line(), flush=True)  # every figure names its machine
    rows = []
    try:
        for env in args.envs:
            rows.append(run_env(env, args.root, settings_for(env, args), args.verbose))
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to continue", file=sys.stderr)
        return 130
    path = write_json(args.root, rows)
    print()
    print(format_table(rows))
    print(f"\n{machine_line()}\nJSON: {path}")
    failed = [r["env"] for r in rows if r.get("error")]
    if failed:
        print(f"failed: {', '.join(failed)} (see the rows' logs)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
