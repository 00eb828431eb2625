"""Closed-loop planning evaluation on held-out start/goal pairs, with random and oracle baselines.

    reverie eval --checkpoint runs/tworoom --episodes 50 --planner cem --out runs/tworoom/eval.json
    reverie eval --env tworoom --planner oracle --episodes 50     # baselines need no checkpoint

Protocol (it cannot flatter the model):
1. Pairs are held out: pair i uses env seed ``EVAL_SEED_BASE + 10_000·seed + j`` with seed in
   [0, MAX_EVAL_SEED] (collection seeds are < 10⁹, see ``reverie.data.format``). The env resets
   from that seed (start state); the scripted expert then acts for ``goal_steps`` (25) steps and
   the state it reaches is the goal, rendered as the goal image, so every goal is reachable. A
   pair whose start already passes the success test is counted in ``already_solved_replaced``
   and replaced by the next seed.
2. The planner acts through MPC in the real env from the start state for ``budget`` env steps;
   success is the env's own test on the true physical state at any step within the budget.
3. Baselines run in the same harness: ``random`` (uniform random action blocks) and ``oracle``
   (the same CEM and summed cost shape, searching with the true simulator in true-state space;
   ``--oracle-cost`` picks what it scores states by). Without oracle flags each env's oracle runs
   its measured best settings (``ORACLE_DEFAULTS``); the JSON's ``oracle`` block says what ran.
4. Envs with a published protocol (Push-T: ``published_success``) are also scored by that rule on
   the same rollouts, latched at any step: the episode runs past our success until the published
   rule has held too (or the budget ends). The JSON reports ``success_rate`` (ours) and
   ``published_success_rate`` with their Wilson intervals, and ``goal_difficulty``: median and
   p90 of each of the env's difficulty measures over the pairs (Push-T: block displacement,
   block rotation in degrees, the expert pusher's path length over the goal steps).
5. ``--protocol published`` pins the public protocol's settings (``PUBLISHED_PROTOCOL``: final-step
   cost, CEM 300x30, history 3, ...) and refuses flags that contradict them; the JSON says which
   protocol ran.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from reverie.data.format import check_eval_seed, eval_pair_seed
from reverie.envs import make, resolve
from reverie.envs.latency import LatencyEnv
from reverie.hardware import bf16_native, machine, torch_threads
from reverie.io import ReverieError, atomic_write_json
from reverie.planning.objective import DISTANCES, ORACLE_COSTS, REDUCTIONS
from reverie.planning.options import PlannerOptions
from reverie.stats import wilson

EVAL_PLANNERS = ("cem", "mppi", "gradient", "policy", "policy+cem", "random", "oracle")
POLICY_PLANNERS = ("policy", "policy+cem")
PROTOCOLS = ("reverie", "published")
#: The published latent-planning protocol (the public DINO-WM / stable-worldmodel code):
#: ``--protocol published`` pins these and refuses any flag that sets them otherwise. Reverie's
#: own protocol differs in the cost (summed over the horizon, the better one on our models) and
#: hands the model its own history (3 in the lite and cpu presets) rather than a fixed 3.
PUBLISHED_PROTOCOL: dict[str, Any] = {
    "cost": "final",
    "samples": 300,
    "iterations": 30,
    "elites": 30,
    "horizon": 5,
    "budget": 50,
    "goal_steps": 25,
    "frameskip": 5,
    "history": 3,
    "execute_blocks": 1,
}

# fmt: off
#: The oracle's settings per env where they beat the defaults (distance cost, --samples x
#: --iterations), measured on the seed-0 pairs (BENCHMARKS.md, "Oracle (true-simulator CEM)"):
#: ``cost`` the state cost (``ORACLE_COSTS``), ``samples`` x ``iterations`` the CEM budget.
#: Push-T and Tabletop need ``reach``: every other cost is flat until the pusher touches what it
#: must push, so the search has nothing to follow (Push-T 30% -> 90%, 10 pairs). Push-T, Reacher
#: and Tabletop simulate one candidate at a time: these budgets keep an episode under ~25 s
#: (Push-T 150 -> 300 samples: 88% -> 98% on 50 pairs, 10 -> 20 s an episode).
ORACLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "pusht":    {"cost": "reach", "samples": 300, "iterations": 10},
    "reacher":  {"samples": 100, "iterations": 10},
    "tabletop": {"cost": "reach", "samples": 100, "iterations": 10},
    "tworoom":  {},  # vectorised physics: the protocol's 300 x 30 costs ~1 s an episode
}
# fmt: on


def oracle_settings(cfg: EvalConfig, env_name: str) -> dict[str, Any]:
    """What the oracle runs for ``cfg`` on ``env_name``: each oracle flag, else the env's
    ``ORACLE_DEFAULTS`` entry, else the shared planning options (distance cost)."""
    table = ORACLE_DEFAULTS.get(env_name, {})
    p = cfg.planning
    samples = cfg.oracle_samples or table.get("samples", p.samples)
    return {
        "cost": cfg.oracle_cost or table.get("cost", "distance"),
        "reduce": cfg.cost,
        "samples": samples,
        "iterations": cfg.oracle_iterations or table.get("iterations", p.iterations),
        "elites": min(p.elites, samples),
    }


@dataclass(frozen=True)
class EvalConfig:
    """Closed-loop evaluation settings (defaults: the public latent-planning protocol)."""

    checkpoint: Path | None = None
    """Run directory of a trained model (needed for cem, mppi and gradient)."""
    env: str | None = None
    """Environment; defaults to the checkpoint's. Required without a checkpoint."""
    episodes: int = 50
    """Held-out start/goal pairs."""
    planner: str = "cem"
    """cem | mppi | gradient (search the world model), policy (a trained policy acts, no search)
    | policy+cem (the policy's imagined rollout seeds a short CEM), random | oracle (baselines)."""
    policy_run: Path | None = None
    """Policy run (``reverie policy train``) for --planner policy / policy+cem (default:
    CHECKPOINT/policy)."""
    seeded_iterations: int = 3
    """policy+cem: CEM refits after the policy's seed (plain CEM uses --iterations)."""
    seeded_std: float = 0.1
    """policy+cem: starting spread of CEM around the policy's rollout."""
    seed: int = 0
    """Selects the held-out pair range and seeds the planner, in [0, MAX_EVAL_SEED]."""
    out: Path | None = None
    """Result JSON (default: CHECKPOINT/eval_<planner>.json, or runs/eval_<env>_<planner>.json)."""
    budget: int = 50
    """Env steps per episode."""
    planning: PlannerOptions = PlannerOptions()
    """--samples --iterations --elites --horizon, shared by every planner (see PlannerOptions)."""
    frameskip: int | None = None
    """Env steps per action block; defaults to the checkpoint's (5 without one)."""
    cem_min_std: float = 0.05
    """CEM (model and oracle): floor on the sampling std, so late iterations keep exploring."""
    cem_warm_std: float | None = None
    """CEM: starting std when warm-started from the previous plan (None: the initial std, 1)."""
    latent_distance: str = "sq_l2"
    """Model planners: distance from predicted to goal embeddings, sq_l2 | l2."""
    oracle_samples: int | None = None
    """Oracle CEM candidates (None: the env's ORACLE_DEFAULTS entry, else --samples)."""
    oracle_iterations: int | None = None
    """Oracle CEM iterations (None: the env's ORACLE_DEFAULTS entry, else --iterations)."""
    oracle_cost: str | None = None
    """What the oracle scores true states by (None: the env's ORACLE_DEFAULTS entry, else
    distance): distance (the env's goal_distance) | tolerance (the success test's errors, each
    over its tolerance, summed) | margin (the largest of them, <= 1 exactly where the test passes,
    plus a 0.1 x sum tie-break) | reach (margin of what is pushed plus how far the pusher is from
    pushing it; pusht, tabletop). See planning.objective."""
    cost: str | None = None
    """Goal cost over the horizon: sum | final | sum+final (None: sum, or final under
    --protocol published)."""
    protocol: str = "reverie"
    """reverie (the defaults above, cost summed) | published (the public DINO-WM protocol: CEM
    300x30 top 30, horizon 5, final-step cost, history 3, frameskip 5, 50-step budget, goals 25
    expert steps away, replanning every block; a flag setting any of them otherwise is refused)."""
    goal_steps: int = 25
    """Expert steps from the start that define the goal."""
    history: int | None = None
    """Frames of context handed to the model (None: the model's own history k)."""
    execute_blocks: int = 1
    """Replanning cadence: planned action blocks executed before the next replan (1 to the
    horizon; 1 replans every block, as the published protocol does)."""
    videos: int = 4
    """Episodes whose frames are saved as GIFs beside the JSON (0 = none)."""
    precision: str = "auto"
    """Model arithmetic while planning: auto (bf16 autocast where the hardware runs it natively,
    ~1.5x faster CEM on this CPU class; costs are still compared in fp32) | fp32 | bf16."""
    threads: int = 1
    """torch CPU threads while planning. Planning runs many small matmuls, where one thread beat
    two by up to 10x on a loaded 2-core machine (threads spin-wait for each other)."""
    factors: str = ""
    """Factor overrides for the env, e.g. 'mass=2.0,friction=0.3' (the sim-to-real shifts)."""
    latency: int = 0
    """Action delay in env steps: the env executes each action this many steps late (a shift)."""
    held_out_factors: bool = False
    """Accept --factors in the factors' held-out limits, past their randomisation ranges (what
    the ``visual-unseen`` shift preset needs; without it such values are refused)."""
    source_pairs: bool = False
    """Draw the start/goal pairs under the env's default factors, so source and shifted runs
    share them (a paired comparison; otherwise a slow shift makes the 25-step goals nearer)."""
    progress: bool = True
    """Show a progress bar (``reverie eval``; the Python call takes ``progress=``)."""
    scene: Path | None = None
    """Evaluate in the world of this scene spec (``reverie world save``; tabletop): objects
    start at its poses, each pair's seed draws the pusher's start; the JSON records the spec."""

    def __post_init__(self) -> None:
        if self.planner not in EVAL_PLANNERS:
            raise ValueError(f"unknown planner {self.planner!r}; known: {', '.join(EVAL_PLANNERS)}")
        if self.checkpoint is None and self.planner not in ("random", "oracle"):
            raise ValueError(f"--planner {self.planner} needs --checkpoint")
        if self.checkpoint is None and self.env is None:
            raise ValueError("--env is required without --checkpoint")
        if self.env is not None:
            object.__setattr__(self, "env", resolve(self.env))
        if self.policy_run is not None and self.planner not in POLICY_PLANNERS:
            raise ValueError(f"--policy-run needs --planner {' or '.join(POLICY_PLANNERS)}")
        for name in ("checkpoint", "out", "policy_run", "scene"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        check_eval_seed(self.seed)
        if not isinstance(self.planning, PlannerOptions):
            raise ValueError(f"planning must be a PlannerOptions, got {self.planning!r}")
        for name in (
            "episodes",
            "budget",
            "goal_steps",
            "history",
            "execute_blocks",
            "oracle_samples",
            "oracle_iterations",
            "threads",
            "seeded_iterations",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.execute_blocks > self.planning.horizon:
            raise ValueError(
                f"--execute-blocks must be <= --horizon ({self.planning.horizon}), "
                f"got {self.execute_blocks}"
            )
        if not self.seeded_std > 0:
            raise ValueError(f"--seeded-std must be > 0, got {self.seeded_std}")
        if self.oracle_cost is not None and self.oracle_cost not in ORACLE_COSTS:
            raise ValueError(
                f"--oracle-cost must be one of {', '.join(ORACLE_COSTS)}, got {self.oracle_cost!r}"
            )
        if self.oracle_cost is not None and self.planner != "oracle":
            raise ValueError("--oracle-cost needs --planner oracle")
        if self.oracle_cost == "reach" and self.env is not None:
            from reverie.envs import env_class

            if not hasattr(env_class(self.env), "approach_margin"):
                raise ValueError(
                    f"--oracle-cost reach needs an env with a pusher to place "
                    f"(pusht, tabletop), not {self.env}"
                )
        if not self.cem_min_std >= 0:
            raise ValueError(f"--cem-min-std must be >= 0, got {self.cem_min_std}")
        if self.cem_warm_std is not None and not self.cem_warm_std > 0:
            raise ValueError(f"--cem-warm-std must be > 0, got {self.cem_warm_std}")
        if self.latent_distance not in DISTANCES:
            raise ValueError(
                f"--latent-distance must be one of {', '.join(DISTANCES)}, "
                f"got {self.latent_distance!r}"
            )
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"--protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )
        if self.protocol == "published":
            self._pin_published()
        elif self.cost is None:
            object.__setattr__(self, "cost", "sum")
        if self.cost not in REDUCTIONS:
            raise ValueError(f"--cost must be one of {', '.join(REDUCTIONS)}, got {self.cost!r}")
        if self.frameskip is not None and self.frameskip < 1:
            raise ValueError("--frameskip must be >= 1")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"--precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.latency < 0:
            raise ValueError(f"--latency must be >= 0, got {self.latency}")
        parse_factors(self.factors)

    def _pin_published(self) -> None:
        """Fill the published protocol's settings in; refuse any flag set to another value."""
        values = {
            "cost": self.cost,
            **asdict(self.planning),  # samples, iterations, elites, horizon
            **{k: getattr(self, k) for k in ("budget", "goal_steps", "frameskip", "history")},
            "execute_blocks": self.execute_blocks,
        }
        for name, want in PUBLISHED_PROTOCOL.items():
            got = values[name]
            if got is not None and got != want:
                raise ValueError(
                    f"--protocol published fixes --{name.replace('_', '-')} {want}, got {got}"
                )
        for name in ("cost", "frameskip", "history"):
            object.__setattr__(self, name, PUBLISHED_PROTOCOL[name])


def parse_factors(text: str) -> dict[str, float]:
    """'a=1,b=2' -> {'a': 1.0, 'b': 2.0} (names and ranges are checked by the env)."""
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"bad factor setting {item!r}: expected name=value")
    return out


def pair_from_seed(env: Any, pair_seed: int, goal_steps: int) -> dict[str, Any]:
    """The start state of ``env.reset(seed=pair_seed)`` and the goal the expert reaches from it.

    Also keeps the expert's raw actions (``goal_steps``, A) and the states it passed through
    (``goal_steps + 1``, S; start first, goal last): the feasibility test replays the first and
    the goal-difficulty figures measure the pusher's path from the second."""
    _, info = env.reset(seed=pair_seed)
    start = info["state"]
    rng = np.random.default_rng(pair_seed)
    actions, states = [], [start]
    for _ in range(goal_steps):
        action = env.expert_action(rng)
        env.step(action)
        actions.append(np.asarray(action, np.float64))
        states.append(env.get_state())
    goal = env.get_state()
    return {
        "seed": pair_seed,
        "start": start,
        "goal": goal,
        "factors": dict(env.factors),
        "expert_actions": np.stack(actions) if actions else np.zeros((0, 0)),  # (goal_steps, A)
        "expert_states": np.stack(states),  # (goal_steps + 1, S)
    }


def make_pairs(env: Any, episodes: int, seed: int, goal_steps: int) -> tuple[list[dict], int]:
    """Held-out (start, goal) pairs; returns them and how many already-solved ones were replaced."""
    pairs, replaced, j = [], 0, 0
    while len(pairs) < episodes:
        pair = pair_from_seed(env, eval_pair_seed(seed, j), goal_steps)
        j += 1
        if env.is_success(pair["start"], pair["goal"]):
            replaced += 1
            if replaced > 10 * episodes + 100:
                raise ReverieError(
                    f"{replaced} of {j} start/goal pairs were already solved: the goal steps "
                    f"({goal_steps}) are too few to move the {env.short_name} world"
                )
            continue
        pairs.append(pair)
    return pairs, replaced


def goal_difficulty(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median and p90 of each per-pair difficulty measure in ``records`` (``{}`` without any)."""
    rows = [r["difficulty"] for r in records if "difficulty" in r]
    if not rows:
        return {}
    out = {}
    for key in rows[0]:
        values = np.array([row[key] for row in rows])
        out[key] = {
            "median": round(float(np.median(values)), 2),
            "p90": round(float(np.percentile(values, 90)), 2),
        }
    return out


def save_gif(path: Path, frames: list[np.ndarray], goal: np.ndarray, scale: int = 3) -> None:
    """Agent frames beside the goal image, upscaled, as an animated GIF (atomic)."""
    from PIL import Image

    from reverie.io import atomic_path

    images = []
    for f in frames:
        pair = np.concatenate([f, np.full((f.shape[0], 2, 3), 255, np.uint8), goal], axis=1)
        img = Image.fromarray(pair)
        images.append(img.resize((img.width * scale, img.height * scale), Image.NEAREST))
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=80, loop=0
        )


class _BlindObjective:
    batch_size = 1

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the random baseline does not score actions")


def _blind_objective(ctx: Any) -> _BlindObjective:
    return _BlindObjective()


def saved_probes(checkpoint: Path | None) -> dict[str, Any]:
    """The held-out probe R² of ``reverie probe`` runs saved beside the checkpoint, by look
    ({} when none was run): the eval JSON says what the embedding held when it planned."""
    import json

    out: dict[str, Any] = {}
    for path in sorted(Path(checkpoint).glob("probe_*.json")) if checkpoint else []:
        try:
            r = json.loads(path.read_text())
            out[str(r["looks"])] = {"linear": r["state_r2"], "mlp": r.get("state_r2_mlp")}
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged probe file is not the eval's business
    return out


def build_planner(
    cfg: EvalConfig, model: Any, twin: Any, frameskip: int, action_dim: int, low: float, high: float
) -> tuple[Any, Any]:
    """The planner and objective factory that ``cfg.planner`` names (``twin``: the oracle's sim).

    Every planner gets ``cfg.planning``: CEM and MPPI its samples and iterations, the gradient
    planner ``min(samples, 16)`` restarts and ``iterations`` optimizer steps (PlannerOptions)."""
    from reverie.planning import (
        CEM,
        MPPI,
        CEMConfig,
        GradientConfig,
        GradientPlanner,
        LatentGoalFactory,
        MPPIConfig,
        OracleFactory,
        RandomPlanner,
    )
    from reverie.planning.mpc import proprio_for

    p = cfg.planning
    common = {"horizon": p.horizon, "seed": cfg.seed, "action_low": low, "action_high": high}
    std = {"min_std": cfg.cem_min_std, "warm_std": cfg.cem_warm_std}
    if cfg.planner == "oracle":
        o = oracle_settings(cfg, twin.short_name)
        oracle = CEMConfig(
            samples=o["samples"], iterations=o["iterations"], elites=o["elites"], **std, **common
        )
        factory = OracleFactory(twin, frameskip, reduce=o["reduce"], cost=o["cost"])
        return CEM(oracle, action_dim), factory
    if cfg.planner == "random":  # the random baseline never looks at a cost
        planner = RandomPlanner(p.horizon, action_dim, low, high, seed=cfg.seed)
        return planner, _blind_objective
    if cfg.planner in POLICY_PLANNERS:
        from reverie.policies import PolicyPlanner, PolicySeededCEM

        policy = load_eval_policy(cfg, model)
        if cfg.planner == "policy":
            planner = PolicyPlanner(policy, model, p.horizon)
        else:
            seeded = CEMConfig(
                samples=p.samples,
                iterations=cfg.seeded_iterations,
                elites=p.elites,
                warm_std=cfg.seeded_std,
                **common,
            )
            planner = PolicySeededCEM(policy, model, seeded)
        return planner, LatentGoalFactory(model, reduce=cfg.cost, distance=cfg.latent_distance)
    if cfg.planner == "cem":
        cem = CEMConfig(
            samples=p.samples, iterations=p.iterations, elites=p.elites, **std, **common
        )
        planner: Any = CEM(cem, action_dim)
    elif cfg.planner == "mppi":
        planner = MPPI(MPPIConfig(samples=p.samples, iterations=p.iterations, **common), action_dim)
    else:
        gradient = GradientConfig(samples=min(p.samples, 16), iterations=p.iterations, **common)
        planner = GradientPlanner(gradient, action_dim)
    differentiable = cfg.planner == "gradient"
    proprio = proprio_for(model, twin)  # () for a pixels-only model; refuses a mismatched env
    factory = LatentGoalFactory(
        model,
        reduce=cfg.cost,
        distance=cfg.latent_distance,
        differentiable=differentiable,
        proprio=proprio,
    )
    return planner, factory


def load_eval_policy(cfg: EvalConfig, model: Any) -> Any:
    """The policy ``cfg`` names (default CHECKPOINT/policy), checked against the checkpoint."""
    from reverie.checkpoint import read_meta
    from reverie.policies import load_policy

    assert cfg.checkpoint is not None
    path = cfg.policy_run or Path(cfg.checkpoint) / "policy"
    device = next(model.parameters()).device
    return load_policy(path, read_meta(cfg.checkpoint), device)[0]


def planning_autocast(model: Any, precision: str) -> tuple[bool, Any]:
    """(bf16 on?, the autocast context) for planning with ``model`` (None: no model, no bf16).

    ``auto`` turns bf16 on where the hardware runs it natively; autocast only touches the model's
    matmuls and convs, and the objectives compare costs in fp32."""
    device = next(model.parameters()).device if model is not None else torch.device("cpu")
    on = model is not None and (
        precision == "bf16" or (precision == "auto" and bf16_native(device))
    )
    return on, torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


def evaluate(cfg: EvalConfig, progress: bool = True) -> dict[str, Any]:
    """Run the protocol in the module docstring; writes and returns the result JSON."""
    with torch_threads(cfg.threads):
        return _evaluate(cfg, progress)


def _evaluate(cfg: EvalConfig, progress: bool) -> dict[str, Any]:
    from reverie.planning import MPCConfig, run_episode

    t_start = time.perf_counter()
    # Step 1. the model (if any) and the environment it was trained on.
    model, meta = None, {}
    if cfg.checkpoint is not None:
        from reverie.checkpoint import load_checkpoint

        model, meta = load_checkpoint(cfg.checkpoint)
        model.eval()
        trained_on = meta.get("env")
        if cfg.env is not None and trained_on is not None and cfg.env != trained_on:
            raise ReverieError(
                f"checkpoint {cfg.checkpoint} was trained on {trained_on!r}, not {cfg.env!r}"
            )
    env_name = cfg.env or meta.get("env")
    if env_name is None:
        raise ReverieError(f"checkpoint {cfg.checkpoint} does not record its environment")
    size = model.image_size if model is not None else 64
    frameskip = cfg.frameskip or (model.frameskip if model is not None else 5)
    if model is not None and frameskip != model.frameskip:
        raise ReverieError(f"--frameskip {frameskip} differs from the model's {model.frameskip}")
    factors = parse_factors(cfg.factors)
    world: dict[str, Any] = {}  # make()'s scene argument, when evaluating in a scene spec
    if cfg.scene is not None:
        from reverie.envs import env_class
        from reverie.scenes.spec import load_spec

        if not hasattr(env_class(env_name), "set_scene"):
            raise ReverieError(f"--scene needs the tabletop env; this evaluation is {env_name}")
        world["scene"] = load_spec(cfg.scene)[0]
    if cfg.held_out_factors:
        world["held_out_factors"] = True
    env = make(env_name, size=size, factors=factors, **world)
    twin = make(env_name, size=size, factors=factors, **world)  # the oracle's simulator
    if cfg.latency:
        env = LatencyEnv(env, cfg.latency)  # the oracle's twin plans without the delay
    # Pairs come from the source env (default factors) with --source-pairs, else from the env.
    pair_env = make(env_name, size=size, **world) if cfg.source_pairs else env
    action_dim = int(np.prod(env.action_space.shape)) * frameskip
    low, high = float(env.action_space.low.min()), float(env.action_space.high.max())

    # Step 2. the held-out pairs.
    pairs, replaced = make_pairs(pair_env, cfg.episodes, cfg.seed, cfg.goal_steps)

    # Step 3. planner and objective factory.
    planner, factory = build_planner(cfg, model, twin, frameskip, action_dim, low, high)
    if model is not None and planner.action_dim != model.action_dim:
        raise ReverieError(f"model action size {model.action_dim} != env's {action_dim}")

    policy_view = None  # policy planners: the policy and its latent success radius
    if cfg.planner in POLICY_PLANNERS:
        from reverie.checkpoint import read_meta

        policy_meta = read_meta(cfg.policy_run or Path(cfg.checkpoint) / "policy", "reverie-policy")
        radius = policy_meta.get("success_radius", float("nan"))
        policy_view = (planner.policy, float(radius))
    imagined = 0
    # The published protocol's rule, scored on the same rollouts, where the env has one.
    rules = {"published": env.published_success} if hasattr(env, "published_success") else {}
    published = 0

    # Step 4. closed-loop episodes.
    use_bf16, autocast = planning_autocast(model, cfg.precision)
    out = cfg.out or (
        Path(cfg.checkpoint) / f"eval_{cfg.planner}.json"
        if cfg.checkpoint
        else Path("runs") / f"eval_{env_name}_{cfg.planner}.json"
    )
    video_dir = out.parent / f"{out.stem}_videos"
    records, plan_ms = [], []
    bar = tqdm(pairs, desc=f"eval {env_name} {cfg.planner}", unit="ep", disable=not progress)
    successes = 0
    for i, pair in enumerate(bar):
        env.reset(seed=pair["seed"], options={"state": pair["start"], "goal": pair["goal"]})
        goal_frame = env.render_state(pair["goal"])
        start_frame = env.render() if policy_view is not None else None
        if hasattr(planner, "reseed"):
            planner.reseed(cfg.seed * 100_003 + i)
        mpc = MPCConfig(
            budget=cfg.budget,
            frameskip=frameskip,
            history=cfg.history or (model.history if model is not None else 1),
            execute_blocks=cfg.execute_blocks,
            record_frames=i < cfg.videos,
        )
        with torch.inference_mode(cfg.planner != "gradient"), autocast:
            result = run_episode(
                env, planner, factory, pair["goal"], mpc, goal_frame=goal_frame, rules=rules
            )
        successes += result.success
        extra: dict[str, Any] = {}
        if rules:
            extra["published_success"] = result.rule_steps["published"] is not None
            published += extra["published_success"]
        if hasattr(env, "goal_difficulty"):
            extra["difficulty"] = {
                k: round(v, 3) for k, v in env.goal_difficulty(pair["expert_states"]).items()
            }
        plan_ms += result.plan_ms
        dream: dict[str, Any] = {}
        if policy_view is not None:
            from reverie.policies import imagined_episode

            with torch.inference_mode(), autocast:
                blocks = -(-cfg.budget // frameskip)
                dream = imagined_episode(
                    policy_view[0], model, [start_frame], goal_frame, blocks, policy_view[1]
                )
            imagined += dream["imagined_success"]
        start_distance = float(env.goal_distance(pair["start"], pair["goal"]))
        record = {
            "episode": i,
            "seed": pair["seed"],
            "start_distance": round(start_distance, 4),
            **result.to_json(),
            **extra,
            **dream,
        }
        if result.frames is not None:
            video_dir.mkdir(parents=True, exist_ok=True)
            gif = video_dir / f"ep_{i:03d}.gif"
            save_gif(gif, result.frames, goal_frame)
            record["video"] = str(gif.relative_to(out.parent))
        records.append(record)
        bar.set_postfix(
            success=f"{successes}/{i + 1}",
            **({"published": f"{published}/{i + 1}"} if rules else {}),
        )
    bar.close()
    for e in (env, twin):
        if hasattr(e, "close"):
            e.close()

    # Step 5. the result JSON.
    n = len(records)
    result = {
        "env": env_name,
        "planner": cfg.planner,
        "checkpoint": str(cfg.checkpoint) if cfg.checkpoint else None,
        "checkpoint_step": meta.get("step"),
        "success_rate": round(100.0 * successes / n, 2),
        "successes": successes,
        "ci95": wilson(successes, n),
        "episodes": n,
        **(
            {
                "published_success_rate": round(100.0 * published / n, 2),
                "published_successes": published,
                "published_ci95": wilson(published, n),
                "published_rule": getattr(env, "published_rule", None),
            }
            if rules
            else {}
        ),
        "goal_difficulty": goal_difficulty(records),
        "already_solved_replaced": replaced,
        "plan_ms_median": round(float(np.median(plan_ms)), 2) if plan_ms else None,
        "plan_ms_p90": round(float(np.percentile(plan_ms, 90)), 2) if plan_ms else None,
        "env_steps": int(sum(r["steps"] for r in records)),
        "frameskip": frameskip,
        "protocol": cfg.protocol,
        "factors": factors,
        "latency": cfg.latency,
        "bf16": use_bf16,
        "machine": machine(),  # what the rate was measured on (rows are kept per CPU class)
        "source_pairs": cfg.source_pairs,
        "scene": world["scene"].to_dict() if "scene" in world else None,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "planner_config": asdict(planner.config) if hasattr(planner, "config") else {},
        **({"oracle": oracle_settings(cfg, env_name)} if cfg.planner == "oracle" else {}),
        "seed_range": [pairs[0]["seed"], pairs[-1]["seed"]],
        **(
            {
                "imagined_success_rate": round(100.0 * imagined / n, 2),
                "imagination_gap": round(100.0 * (imagined - successes) / n, 2),
            }
            if policy_view is not None
            else {}
        ),
        "probes": saved_probes(cfg.checkpoint),
        "wall_seconds": round(time.perf_counter() - t_start, 2),
        "records": records,
    }
    atomic_write_json(out, result)
    result["out"] = str(out)
    return result
