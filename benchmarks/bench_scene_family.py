"""A world model of the scene family: open-loop latent error and VoE accuracy, held-out vs training.

    reverie collect --env tabletop --scenes random --episodes 300 --episode-steps 60 \\
        --out runs/family-data
    reverie train --data runs/family-data --out runs/family --threads 1 --minutes 8
    PYTHONPATH=src .venv/bin/python benchmarks/bench_scene_family.py --checkpoint runs/family \\
        --data runs/family-data [--episodes 40] [--horizon 5] [--voe-pairs 20 --voe-out DIR]

*Training scenes*: the scene specs of the first ``--episodes`` training episodes (read from the
dataset), each run again with a new seed (so a new pusher start and new actions: the model saw the
world, not this episode). *Held-out scenes*: ``random_scene`` drawn from seeds no collection uses
(the same family: same object count, same ranges), new episodes too. Both use the dataset's
policy and length. The figure is the latent MSE of the model's ``rollout`` against the encoded
frames at each horizon (``reverie.simreal.shifts.open_loop_error``); the target is held-out ≤ 1.5×
training at 5 steps. The copy baseline (every future embedding = the last one seen) is printed
beside it: a model that does not beat it has not learnt the dynamics. The machine line first.

``--voe-pairs N`` adds the physics suite's figure: N matched possible/impossible pairs per
category made in held-out scenes (``reverie physics generate --scenes random``) and in the
dataset's training scenes (``--scenes DATA``), scored by ``reverie physics eval``'s surprise;
pairwise accuracy per category and overall (target ≥ 85% on held-out scenes). Clips have
``voe_frames`` frames so that a frameskipping model sees the last one. Clips run at 10 frames/s
and a toss or fall lasts 3-5 frames: a model trained at frameskip 5 sees one frame in five and
scores near chance; train family models for this figure with ``--frameskip 1`` and passive data
(``reverie collect --policy passive --scenes random``, merged with the pushing episodes).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


class CopyBaseline:
    """The "nothing moves" predictor: every future embedding is the last one seen. A model that
    does not beat it has not learnt the dynamics, whatever its held-out ratio."""

    def __init__(self, model) -> None:  # noqa: ANN001 (a WorldModel)
        self.model, self.history, self.frameskip = model, model.history, model.frameskip

    def encode(self, obs):  # noqa: ANN001, ANN201
        return self.model.encode(obs)

    def rollout(self, ctx, actions):  # noqa: ANN001, ANN201
        # ctx (B, k, D), actions (B, H, A') -> (B, H, D)
        return ctx[:, -1:].expand(-1, actions.shape[1], -1)


RERUN_SEED = 2_100_000_000  # new episodes in training scenes (above every collection seed)
HELD_OUT_SCENES = 2_200_000_000  # scene seeds of the held-out scenes


def voe_frames(frameskip: int, at_least: int = 20) -> int:
    """Clip length (>= ``at_least``, the suite's default) whose last frame a model with
    ``frameskip`` sees (frames 0, s, 2s, ...): a multiple of s, plus one."""
    return frameskip * -(-(at_least - 1) // frameskip) + 1


def voe_table(checkpoint: str, data: str, pairs: int, out: str, size: int, frameskip: int) -> None:
    """Generate held-out and training-scene clips under ``out`` and print pairwise accuracy."""
    from pathlib import Path

    from reverie.physics.clips import CATEGORIES, GenerateConfig, generate_clips
    from reverie.physics.surprise import ScoreConfig, score_clips

    frames = voe_frames(frameskip)
    rows = {}
    for name, scenes in (("held-out scenes", "random"), ("training scenes", data)):
        clips = Path(out) / ("heldout" if scenes == "random" else "training")
        if not (clips / "manifest.json").is_file():
            cfg = GenerateConfig(clips, pairs, size=size, frames=frames, scenes=scenes)
            generate_clips(cfg, progress=False)
        result = score_clips(
            ScoreConfig(Path(checkpoint), clips, out=clips / "voe.json", threads=1, plot=False)
        )
        rows[name] = result
    print(f"\n| scenes | pairs | {' | '.join(CATEGORIES)} | overall |")
    print("|---|---|" + "---|" * (len(CATEGORIES) + 1))
    for name, r in rows.items():
        by = [f"{100 * r['by_category'][c]['pairwise_accuracy']:.0f}%" for c in CATEGORIES]
        total = f"{100 * r['pairwise_accuracy']:.1f}%"
        print(f"| {name} | {pairs * len(CATEGORIES)} | {' | '.join(by)} | {total} |")
    print(
        f"VoE clips: {frames} frames of {size} px, model frameskip {frameskip}; "
        "target ≥ 85% on held-out scenes"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="the family dataset the model trained on")
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--voe-pairs", type=int, default=0, help="VoE pairs per category (0: skip)")
    p.add_argument("--voe-out", default="runs/bench-scene-family-voe", help="where clips go")
    args = p.parse_args()
    import h5py
    import torch

    from reverie.checkpoint import load_checkpoint
    from reverie.data.collect import run_episode
    from reverie.data.format import load_manifest
    from reverie.envs import make
    from reverie.hardware import machine_line
    from reverie.scenes.sample import random_scene
    from reverie.scenes.spec import spec_from_dict
    from reverie.simreal.shifts import open_loop_error

    print(machine_line(), flush=True)
    torch.set_num_threads(1)
    manifest = load_manifest(args.data)
    settings = manifest["settings"]
    if settings.get("scenes") != "random":
        raise SystemExit(f"{args.data} was not collected with --scenes random")
    train_specs = []
    for shard in manifest["shards"]:
        with h5py.File(os.path.join(args.data, shard["file"])) as f:
            train_specs += [spec_from_dict(json.loads(f[k].attrs["scene"])) for k in sorted(f)]
        if len(train_specs) >= args.episodes:
            break
    train_specs = train_specs[: args.episodes]
    held_specs = [
        random_scene(np.random.default_rng(HELD_OUT_SCENES + i), settings["scene_objects"])
        for i in range(args.episodes)
    ]
    model, _ = load_checkpoint(args.checkpoint)
    env = make("tabletop", size=settings["size"], scene=train_specs[0])
    results = {}
    for name, specs in (("training scenes", train_specs), ("held-out scenes", held_specs)):
        episodes = []
        for i, spec in enumerate(specs):
            env.set_scene(spec)
            ep = run_episode(env, settings["policy"], RERUN_SEED + i, settings["episode_steps"])
            episodes.append(ep)
        results[name] = open_loop_error(model, episodes, args.horizon)
        results[name + ", copy baseline"] = open_loop_error(
            CopyBaseline(model), episodes, args.horizon
        )
    env.close()
    print(f"| scenes | episodes | windows | latent MSE at 1..{args.horizon} steps |")
    print("|---|---|---|---|")
    for name, r in results.items():
        mse = ", ".join(f"{v:.4g}" for v in r["mse"])
        print(f"| {name} | {args.episodes} | {r['windows']} | {mse} |")
    ratio = results["held-out scenes"]["mse"][-1] / results["training scenes"]["mse"][-1]
    print(f"\nheld-out / training at {args.horizon} steps: {ratio:.2f} (target ≤ 1.5)")
    if args.voe_pairs > 0:
        voe_table(
            args.checkpoint,
            args.data,
            args.voe_pairs,
            args.voe_out,
            settings["size"],
            model.frameskip,
        )


if __name__ == "__main__":
    main()
