"""The ``reverie`` command.

    reverie envs                                   list environments, spaces, factors, success rules
    reverie collect --env tworoom --episodes 1000 --out runs/tworoom-data --workers 2
    reverie data inspect runs/tworoom-data         counts, action stats, checksums, contact sheet
    reverie train --data runs/tworoom-data --out runs/tworoom   (see `reverie train --help`)
    reverie eval --checkpoint runs/tworoom --episodes 50 --planner cem
    reverie plan --checkpoint runs/tworoom --pair 3     one episode: plan.gif, plan.json
    reverie report runs/tworoom
    reverie world save "a red cube left of a blue ball" --out runs/scene.json
    reverie world export runs/scene.json --format mjcf --out runs/scene.xml
    reverie demo [--quick]

Every command prints a one-line error and exits non-zero on bad input (``reverie: error: ...``).
``python -m reverie`` and every ``python -m reverie.X`` entry point go through ``main`` here, so
they share this grammar (config dataclasses parsed by ``reverie.cliargs``).

The same option means the same thing in every command:

- ``--samples --iterations --elites --horizon``: the planner's budget (``PlannerOptions``), in
  every command that plans (eval, plan, shift, play).
- ``--out``: a *directory* when the command makes a bundle (a dataset: collect, data merge; a run
  or checkpoint: train, train-decoder, physics train-pixel, adapt, demo; a clip set: physics
  generate; several result files: plan,
  shift); a *file* when it writes one result (a JSON: eval, sysid, physics eval; the HTML page:
  report).
- ``--seed`` selects held-out data and seeds the randomness; ``--threads`` sets torch CPU
  threads; ``--device`` cpu|cuda where a model runs on one (train, physics eval); ``--progress/
  --no-progress`` shows or hides progress output of long commands.
- ``--resume`` continues a trained thing's run in ``--out``; ``--overwrite`` (where offered)
  replaces it; without either an existing run is refused, never overwritten.
- ``--horizon`` is always the planning horizon; the training rollout-loss length is ``--rollout``.
- ``--policy`` is the scripted policy that generates data (collect, shift's open-loop episodes:
  expert | random | mixed | ...); a *trained* policy is named by ``--policy-run DIR`` (eval,
  plan, play, export; ``reverie policy train`` makes one).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from reverie.cliargs import OneLineParser, parse_config
from reverie.io import ReverieError


def cmd_envs(argv: list[str]) -> None:
    parser = OneLineParser(prog="reverie envs", description="List the registered environments.")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    from reverie.envs import ENV_NAMES, REGISTRY, make

    rows = []
    for name in ENV_NAMES:
        env = make(name)
        rows.append(
            {
                "name": name,
                "id": REGISTRY[name][0],
                "observation": f"uint8 {tuple(env.observation_space.shape)}",
                "action": f"Box{tuple(env.action_space.shape)} in [{env.action_space.low.min():g}, "
                f"{env.action_space.high.max():g}]",
                "episode_steps": env.max_episode_steps,
                "success": env.success_rule,
                "physics_factors": {
                    k: [f.default, f.low, f.high] for k, f in env.physics_factors.items()
                },
                "visual_factors": {
                    k: [f.default, f.low, f.high] for k, f in env.visual_factors.items()
                },
            }
        )
        if hasattr(env, "close"):
            env.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"{r['name']:<9} {r['id']}")
        print(
            f"  observation {r['observation']}   action {r['action']}   "
            f"episode {r['episode_steps']} steps"
        )
        print(f"  success: {r['success']}")
        for group in ("physics_factors", "visual_factors"):
            items = ", ".join(f"{k}={d:g} [{lo:g}, {hi:g}]" for k, (d, lo, hi) in r[group].items())
            print(f"  {group.replace('_', ' ')}: {items}")
    from reverie.hardware import machine_line

    print(machine_line())


def cmd_collect(argv: list[str]) -> None:
    from reverie.data.collect import CollectConfig, collect, summary

    cfg = parse_config(CollectConfig, argv, "reverie collect")
    out = collect(cfg, progress=cfg.progress)
    print(json.dumps(summary(out), indent=2))


def cmd_data(argv: list[str]) -> None:
    parser = OneLineParser(prog="reverie data", description="Dataset tools.")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("inspect", help="counts, shapes, action stats, checksums, contact sheet")
    p.add_argument("dir", type=Path, help="dataset directory")
    p.add_argument("--sheet", type=Path, default=None, help="contact sheet PNG (default DIR/)")
    m = sub.add_parser("merge", help="join datasets of one env into OUT (episodes renumbered)")
    m.add_argument("out", type=Path, help="output dataset directory")
    m.add_argument("sources", type=Path, nargs="+", help="dataset directories to merge")
    args = parser.parse_args(argv)
    if args.action == "merge":
        from reverie.physics.passive import merge_datasets

        print(f"dataset: {merge_datasets(args.sources, args.out)}")
        return
    from reverie.data.inspect import inspect_dataset

    print(json.dumps(inspect_dataset(args.dir, sheet=args.sheet), indent=2))


def cmd_train(argv: list[str]) -> None:
    from reverie.train import TrainConfig, train

    cfg = parse_config(TrainConfig, argv, "reverie train")
    print(f"checkpoint: {train(cfg)}")


def cmd_train_decoder(argv: list[str]) -> None:
    from reverie.models.decoder import DecoderTrainConfig, train_decoder

    cfg = parse_config(DecoderTrainConfig, argv, "reverie train-decoder")
    print(json.dumps(train_decoder(cfg), indent=2))


def cmd_play(argv: list[str]) -> None:
    from reverie.viewer.server import PlayConfig, serve

    serve(parse_config(PlayConfig, argv, "reverie play"))


def cmd_physics(argv: list[str]) -> None:
    actions = ("generate", "train-pixel", "eval")
    if argv and argv[0] in ("-h", "--help"):
        print(
            f"usage: reverie physics {{{'|'.join(actions)}}} [options]   (ACTION --help for each)"
        )
        return
    if not argv or argv[0] not in actions:
        OneLineParser(prog="reverie physics").error(
            f"expected an action: reverie physics {{{'|'.join(actions)}}} [options]"
        )
    if argv[0] == "generate":
        from reverie.physics.clips import GenerateConfig, generate_clips

        cfg = parse_config(GenerateConfig, argv[1:], "reverie physics generate")
        print(f"clips: {generate_clips(cfg, progress=cfg.progress)}")
        return
    if argv[0] == "train-pixel":
        from reverie.physics.pixel_baseline import PixelTrainConfig, train_pixel_baseline

        cfg = parse_config(PixelTrainConfig, argv[1:], "reverie physics train-pixel")
        print(f"checkpoint: {train_pixel_baseline(cfg)}")
        return
    from reverie.physics.surprise import ScoreConfig, score_clips

    result = score_clips(parse_config(ScoreConfig, argv[1:], "reverie physics eval"))
    keys = ("pairwise_accuracy", "by_category", "relative_error", "absolute_error", "out")
    print(json.dumps({k: result.get(k) for k in keys}, indent=2))


def cmd_policy(argv: list[str]) -> None:
    actions = ("train",)
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: reverie policy {{{'|'.join(actions)}}} [options]   (ACTION --help for each)")
        return
    if not argv or argv[0] not in actions:
        OneLineParser(prog="reverie policy").error(
            f"expected an action: reverie policy {{{'|'.join(actions)}}} [options]"
        )
    from reverie.policies.train import PolicyTrainConfig, train_policy

    cfg = parse_config(PolicyTrainConfig, argv[1:], "reverie policy train")
    print(json.dumps(train_policy(cfg), indent=2))


def cmd_export(argv: list[str]) -> None:
    from reverie.export import ExportConfig, export

    cfg = parse_config(ExportConfig, argv, "reverie export")
    info = export(cfg)
    for name, digest in info["files"].items():
        err = info["max_abs_error"].get(name)
        check = f"max |onnxruntime - torch| {err:.1e}" if err is not None else "not checked"
        print(f"{name:<15} {check}   sha256 {digest[:12]}")
    for name, why in info["skipped"].items():
        print(f"{name:<15} skipped: {why}")
    print(f"export: {info['out']}/export.json")


def cmd_shift(argv: list[str]) -> None:
    from reverie.simreal.shifts import ShiftConfig, run_shift

    cfg = parse_config(ShiftConfig, argv, "reverie shift")
    result = run_shift(cfg, progress=cfg.progress)
    print(json.dumps(result, indent=2, default=str)[:4000])


def cmd_adapt(argv: list[str]) -> None:
    import dataclasses

    from reverie.simreal.adapt import AdaptConfig, adapt, adaptation_curve

    cfg = parse_config(AdaptConfig, argv, "reverie adapt")
    if not cfg.curve:
        print(f"checkpoint: {adapt(cfg)}")
        return
    one = dataclasses.replace(cfg, curve=())
    curve = adaptation_curve(one, ks=cfg.curve, eval_episodes=cfg.curve_episodes)
    for point in curve["points"]:
        print(f"K={point['k']}: SR {point['success_rate']}% {point['ci95']}  {point['checkpoint']}")
    print(f"curve: {cfg.out / 'adapt_curve.json'}")


def cmd_sysid(argv: list[str]) -> None:
    from reverie.simreal.sysid import SysIDConfig, run_sysid

    result = run_sysid(parse_config(SysIDConfig, argv, "reverie sysid"))
    keys = ("env", "shift", "factors", "mean_rel_error", "wall_seconds", "out")
    print(json.dumps({k: result[k] for k in keys}, indent=2))


def cmd_probe(argv: list[str]) -> None:
    from reverie.probe import ProbeConfig, format_table, run_probe

    result = run_probe(parse_config(ProbeConfig, argv, "reverie probe"))
    print(json.dumps(result, indent=2))
    print(format_table(result))


def cmd_eval(argv: list[str]) -> None:
    from reverie.evaluate import EvalConfig, evaluate

    cfg = parse_config(EvalConfig, argv, "reverie eval")
    result = evaluate(cfg, progress=cfg.progress)
    keys = (
        "env",
        "planner",
        "success_rate",
        "ci95",
        "published_success_rate",
        "published_ci95",
        "goal_difficulty",
        "episodes",
        "already_solved_replaced",
        "plan_ms_median",
        "plan_ms_p90",
        "env_steps",
        "out",
    )
    print(json.dumps({k: result[k] for k in keys if k in result}, indent=2))


def cmd_plan(argv: list[str]) -> None:
    from reverie.plan import PlanConfig, plan

    result = plan(parse_config(PlanConfig, argv, "reverie plan"))
    keys = ("env", "planner", "start", "goal", "success", "steps", "final_distance")
    keys += ("start_latent_distance", "final_latent_distance", "plan_ms_median", "out")
    print(json.dumps({k: result[k] for k in keys}, indent=2))


def cmd_report(argv: list[str]) -> None:
    parser = OneLineParser(prog="reverie report", description="Write RUN/report.html.")
    parser.add_argument("run", type=Path, help="run directory")
    parser.add_argument(
        "--out", type=Path, default=None, help="HTML file (default RUN/report.html)"
    )
    args = parser.parse_args(argv)
    from reverie.report import build_report

    print(f"report: {build_report(args.run, args.out)}")


def cmd_world(argv: list[str]) -> None:
    parser = OneLineParser(
        prog="reverie world", description="Scene specs: text → world, show, export."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("save", help="parse a prompt into a scene spec JSON")
    p.add_argument("prompt", help='e.g. "a heavy red cube and two bouncy blue balls on ice"')
    p.add_argument("--out", type=Path, required=True, help="spec JSON file to write (atomic)")
    p.add_argument("--seed", type=int, default=0, help="seed of the placement solver")
    for name in ("load", "show"):
        q = sub.add_parser(name, help="validate a spec file and print it (show: as text)")
        q.add_argument("spec", type=Path, help="spec JSON file")
    e = sub.add_parser("export", help="write a spec (or a 2-D world: pusht, tworoom) as MJCF")
    e.add_argument("spec", help="spec JSON file, or pusht | tworoom (approximate MJCF)")
    e.add_argument("--format", choices=["mjcf"], default="mjcf", help="output format")
    e.add_argument("--out", type=Path, required=True, help="MJCF file to write (atomic)")
    args = parser.parse_args(argv)
    from reverie.scenes.spec import describe, load_spec, save_spec

    if args.action == "save":
        from reverie.scenes.text import parse_prompt

        result = parse_prompt(args.prompt, seed=args.seed)
        save_spec(result.spec, args.out)
        print("\n".join(describe(result.spec)))
        for w in result.warnings:
            print(f"warning: {w}")
        if result.ignored:
            print("ignored: " + ", ".join(repr(w) for w in result.ignored))
        print(f"spec: {args.out}")
        return
    if args.action == "export":
        from reverie.io import atomic_write_bytes
        from reverie.scenes.mjcf import export_mjcf

        if args.spec in ("pusht", "tworoom"):
            from reverie.scenes.planar import export_planar

            xml = export_planar(args.spec)
        else:
            spec, warnings = load_spec(args.spec)
            for w in warnings:
                print(f"warning: {w}")
            xml = export_mjcf(spec)
        atomic_write_bytes(args.out, xml.encode())
        print(f"mjcf: {args.out}")
        return
    spec, warnings = load_spec(args.spec)
    for w in warnings:
        print(f"warning: {w}")
    if args.action == "show":
        print("\n".join(describe(spec)))
    else:
        print(json.dumps(spec.to_dict(), indent=2, sort_keys=True))


def cmd_demo(argv: list[str]) -> None:
    from reverie.demo import DemoConfig, format_summary, run_demo

    cfg = parse_config(DemoConfig, argv, "reverie demo")
    print(format_summary(run_demo(cfg, progress=cfg.progress)))


COMMANDS: dict[str, tuple[Callable[[list[str]], None], str]] = {
    "envs": (cmd_envs, "list environments, spaces, factors of variation and success rules"),
    "collect": (cmd_collect, "collect episodes into an HDF5 dataset (parallel, resumable)"),
    "data": (cmd_data, "dataset tools: `reverie data inspect DIR`, `data merge OUT SRC...`"),
    "train": (cmd_train, "train a JEPA world model on a dataset (resumable, DDP under torchrun)"),
    "train-decoder": (cmd_train_decoder, "train a pixel decoder on frozen embeddings (viewing)"),
    "play": (cmd_play, "web app: drive the world, watch the model imagine it (127.0.0.1)"),
    "eval": (cmd_eval, "closed-loop planning success on held-out start/goal pairs"),
    "plan": (cmd_plan, "plan one episode toward a goal (pair, seed or image): GIF, actions, costs"),
    "policy": (cmd_policy, "goal-conditioned policies on a frozen world model: `policy train`"),
    "export": (cmd_export, "ONNX graphs of a run (encoder, predictor, rollout, decoder, policy)"),
    "physics": (cmd_physics, "violation-of-expectation clips: `physics generate|train-pixel|eval`"),
    "probe": (cmd_probe, "ridge probes of the embedding: physical state and look factors (R²)"),
    "shift": (cmd_shift, "planning success under shifted physics/visuals (sim-to-real proxy)"),
    "adapt": (cmd_adapt, "few-shot adaptation of a checkpoint to a shift"),
    "sysid": (cmd_sysid, "estimate a shift's physical parameters from a few of its episodes"),
    "report": (cmd_report, "HTML report of a run: curves, success table, episode GIFs"),
    "world": (
        cmd_world,
        "scene specs: `world save PROMPT --out F`, `world show F`, `world export`",
    ),
    "demo": (cmd_demo, "the main job: collect, train, plan, evaluate and report"),
}


def usage() -> str:
    lines = ["usage: reverie COMMAND [options]   (reverie COMMAND --help for its options)", ""]
    lines += [f"  {name:<14} {doc}" for name, (_, doc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        import reverie

        print(reverie.__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        sys.stderr.write(
            f"reverie: error: unknown command {name!r}; known: {', '.join(COMMANDS)}\n"
        )
        return 2
    try:
        COMMANDS[name][0](rest)
    except (ReverieError, ValueError) as e:
        sys.stderr.write(f"reverie {name}: error: {e}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"reverie {name}: error: {e.strerror or e}: {e.filename or ''}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"reverie {name}: interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
