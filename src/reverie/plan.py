"""Plan one episode toward a goal and keep everything about it: the video, actions, costs.

    reverie plan --checkpoint runs/demo                       # held-out pair 0 of `reverie eval`
    reverie plan --checkpoint runs/demo --pair 7 --planner mppi
    reverie plan --checkpoint runs/demo --start-seed 123      # any start; the expert sets the goal
    reverie plan --checkpoint runs/demo --goal-image goal.png # a goal from outside the simulator
    reverie plan --checkpoint runs/tabletop --scene scene.json  # in a world from `reverie world`

``reverie eval`` measures a success *rate*; this is the single episode a person looks at. The
start and goal come from a held-out pair (``--pair``, the same pairs as ``reverie eval --seed``),
or from ``--start-seed`` (start of ``env.reset(seed=...)``, goal = the state the scripted expert
reaches in ``--goal-steps``). ``--goal-image`` replaces the goal by a PNG of the model's image size:
no true goal state exists then, so success is ``null`` and the episode runs its whole budget; the
latent distance to the goal (the planner's own measure) is reported in every mode.

Writes OUT/plan.json, OUT/plan.gif (agent beside goal) and OUT/goal.png; OUT defaults to
CHECKPOINT/plan.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reverie.envs import make
from reverie.envs.latency import LatencyEnv
from reverie.evaluate import (
    EvalConfig,
    build_planner,
    make_pairs,
    pair_from_seed,
    parse_factors,
    planning_autocast,
    save_gif,
)
from reverie.hardware import torch_threads
from reverie.io import ReverieError, atomic_path, atomic_write_json
from reverie.planning.options import PlannerOptions

PLAN_PLANNERS = ("cem", "mppi", "gradient", "policy", "policy+cem")


@dataclass(frozen=True)
class PlanConfig:
    """One planned episode (planner defaults: those of ``reverie eval``)."""

    checkpoint: Path | None = None
    """Run directory of a trained model (required)."""
    pair: int = 0
    """Held-out pair index: the pair ``reverie eval --seed SEED`` runs as episode PAIR."""
    seed: int = 0
    """The held-out pair range (as in ``reverie eval``, in [0, MAX_EVAL_SEED]) and the planner's
    seed."""
    start_seed: int | None = None
    """Start from ``env.reset(seed=START_SEED)`` instead of a held-out pair."""
    goal_image: Path | None = None
    """PNG goal image (RGB, the model's image size); success is then unknown (null)."""
    planner: str = "cem"
    """cem | mppi | gradient | policy | policy+cem (as in ``reverie eval``)."""
    policy_run: Path | None = None
    """Policy run for --planner policy / policy+cem (default: CHECKPOINT/policy)."""
    budget: int = 50
    """Env steps in the episode."""
    planning: PlannerOptions = PlannerOptions()
    """--samples --iterations --elites --horizon (as in ``reverie eval``; see PlannerOptions)."""
    cost: str = "sum"
    """Goal cost over the horizon: sum | final | sum+final."""
    goal_steps: int = 25
    """Expert steps from the start that define the goal (without --goal-image)."""
    factors: str = ""
    """Factor overrides for the env, e.g. 'mass=2.0' (plan under a shift)."""
    latency: int = 0
    """Action delay in env steps."""
    precision: str = "auto"
    """Model arithmetic while planning: auto | fp32 | bf16 (as in ``reverie eval``)."""
    threads: int = 1
    """torch CPU threads while planning."""
    out: Path | None = None
    """Output directory (default CHECKPOINT/plan)."""
    scene: Path | None = None
    """Plan in the world of this scene spec (``reverie world save``; tabletop): objects start at
    its poses, the pair's seed draws the pusher's start; plan.json records the spec."""

    def __post_init__(self) -> None:
        if self.checkpoint is None:
            raise ValueError("--checkpoint is required")
        if self.planner not in PLAN_PLANNERS:
            raise ValueError(
                f"unknown planner {self.planner!r}; known: {', '.join(PLAN_PLANNERS)} "
                "(baselines: reverie eval --planner random|oracle)"
            )
        if self.pair < 0:
            raise ValueError(f"--pair must be >= 0, got {self.pair}")
        if self.start_seed is not None and not 0 <= self.start_seed < 2**32:
            raise ValueError(f"--start-seed must be in [0, 2^32), got {self.start_seed}")
        for name in ("checkpoint", "goal_image", "out", "policy_run", "scene"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        self.eval_config()  # the shared planner settings are validated there

    def eval_config(self) -> EvalConfig:
        """The ``reverie eval`` settings this episode shares (planner, cost, env shift)."""
        return EvalConfig(
            checkpoint=self.checkpoint,
            planner=self.planner,
            policy_run=self.policy_run,
            seed=self.seed,
            budget=self.budget,
            planning=self.planning,
            cost=self.cost,
            goal_steps=self.goal_steps,
            precision=self.precision,
            threads=self.threads,
            factors=self.factors,
            latency=self.latency,
            videos=0,
        )


def load_goal_image(path: Path, size: int) -> np.ndarray:
    """A PNG (or any image PIL reads) as uint8 (size, size, 3); refuses other sizes in one line."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ReverieError(f"goal image {path} does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ReverieError(f"cannot read goal image {path}: {e}") from None
    if rgb.size != (size, size):
        raise ReverieError(
            f"goal image {path} is {rgb.width}x{rgb.height}; the model sees {size}x{size} frames"
        )
    return np.asarray(rgb, np.uint8).copy()


def plan(cfg: PlanConfig) -> dict[str, Any]:
    """Run the episode in the module docstring; writes and returns the result JSON."""
    from reverie.checkpoint import load_checkpoint
    from reverie.planning import MPCConfig, run_episode
    from reverie.planning.mpc import proprio_for

    t_start = time.perf_counter()
    ecfg = cfg.eval_config()
    model, meta = load_checkpoint(cfg.checkpoint)
    env_name = meta.get("env")
    if env_name is None:
        raise ReverieError(f"checkpoint {cfg.checkpoint} does not record its environment")
    size = model.image_size
    factors = parse_factors(cfg.factors)
    scene = None
    if cfg.scene is not None:
        from reverie.envs import env_class
        from reverie.scenes.spec import load_spec

        if not hasattr(env_class(env_name), "set_scene"):
            raise ReverieError(f"--scene needs a tabletop checkpoint; this one plays {env_name}")
        scene, _ = load_spec(cfg.scene)
        env = make(env_name, size=size, factors=factors, scene=scene)
    else:
        env = make(env_name, size=size, factors=factors)

    # Step 1. start and goal.
    if cfg.start_seed is not None:
        pair = pair_from_seed(env, cfg.start_seed, cfg.goal_steps)
        start_from = f"seed {cfg.start_seed}"
    else:
        pairs, _ = make_pairs(env, cfg.pair + 1, cfg.seed, cfg.goal_steps)
        pair = pairs[cfg.pair]
        start_from = f"held-out pair {cfg.pair} (seed {pair['seed']})"
    goal_state: np.ndarray | None = pair["goal"]
    if cfg.goal_image is not None:
        goal_frame, goal_state = load_goal_image(cfg.goal_image, size), None
    else:
        goal_frame = env.render_state(pair["goal"])
    acting = LatencyEnv(env, cfg.latency) if cfg.latency else env

    # Step 2. planner and the closed-loop episode.
    action_dim = int(np.prod(env.action_space.shape)) * model.frameskip
    low, high = float(env.action_space.low.min()), float(env.action_space.high.max())
    planner, factory = build_planner(ecfg, model, env, model.frameskip, action_dim, low, high)
    if planner.action_dim != model.action_dim:
        raise ReverieError(f"model action size {model.action_dim} != env's {action_dim}")
    acting.reset(seed=pair["seed"], options={"state": pair["start"], "goal": pair["goal"]})
    if hasattr(planner, "reseed"):  # as `reverie eval` seeds its episode PAIR: the same episode
        planner.reseed(cfg.seed * 100_003 + (cfg.pair if cfg.start_seed is None else 0))
    mpc = MPCConfig(
        budget=cfg.budget, frameskip=model.frameskip, history=model.history, record_frames=True
    )
    use_bf16, autocast = planning_autocast(model, cfg.precision)
    with torch_threads(cfg.threads):
        with torch.inference_mode(cfg.planner != "gradient"), autocast:
            result = run_episode(acting, planner, factory, goal_state, mpc, goal_frame=goal_frame)
        # Step 3. the planner's own measure: latent distance to the goal, start and end.
        frames = result.frames or []
        ends = np.stack([frames[0], frames[-1], goal_frame])  # (3, Hi, Wi, 3)
        proprio = None
        if model.proprio_dim and goal_state is not None:
            ends_states = np.stack([pair["start"], acting.get_state(), goal_state])
            proprio = torch.from_numpy(ends_states[:, list(proprio_for(model, env))]).float()
        with torch.inference_mode():
            z = model.encode(torch.from_numpy(ends).permute(0, 3, 1, 2), proprio).float()
        latent = ((z[:2] - z[2:]) ** 2).sum(-1).tolist()
    if hasattr(env, "close"):
        env.close()

    # Step 4. files.
    out_dir = cfg.out or Path(cfg.checkpoint) / "plan"
    save_gif(out_dir / "plan.gif", frames, goal_frame)
    _save_png(out_dir / "goal.png", goal_frame)
    known = goal_state is not None
    record = result.to_json()
    out = {
        "env": env_name,
        "checkpoint": str(cfg.checkpoint),
        "checkpoint_step": meta.get("step"),
        "planner": cfg.planner,
        "start": start_from,
        "goal": str(cfg.goal_image) if cfg.goal_image else f"expert, {cfg.goal_steps} steps",
        "success": result.success if known else None,
        "steps": result.steps,
        "start_distance": float(env.goal_distance(pair["start"], goal_state)) if known else None,
        "final_distance": record["final_distance"] if known else None,
        "min_distance": record["min_distance"] if known else None,
        "start_latent_distance": round(latent[0], 4),
        "final_latent_distance": round(latent[1], 4),
        "replans": result.replans,
        "plan_ms_median": round(float(np.median(result.plan_ms)), 2) if result.plan_ms else None,
        "plan_cost": result.plan_cost,
        "actions": [[round(float(v), 4) for v in a] for a in result.actions or []],
        "factors": factors,
        "latency": cfg.latency,
        "bf16": use_bf16,
        "video": "plan.gif",
        "goal_frame": "goal.png",
        "wall_seconds": round(time.perf_counter() - t_start, 2),
        "scene": scene.to_dict() if scene is not None else None,
    }
    atomic_write_json(out_dir / "plan.json", out)
    out["out"] = str(out_dir)
    return out


def _save_png(path: Path, frame: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(frame).save(tmp, format="PNG")


__all__ = ["PlanConfig", "load_goal_image", "plan"]
