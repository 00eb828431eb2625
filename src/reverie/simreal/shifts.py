"""Sim-to-sim shifts: evaluate a checkpoint under held-out physics/visual settings ("real").

    reverie shift --checkpoint runs/tworoom --shifts physics-mild,physics-hard,visual --episodes 50
    from reverie.simreal.shifts import ShiftConfig, run_shift; run_shift(ShiftConfig(...))

A *shift* is a set of factor values (``reverie.envs.base.Factor``) plus ``latency`` (an integer
delay in control steps: the env executes the action given ``latency`` steps earlier). Shift strings:

- a preset name per env (``physics-mild``, ``physics-hard``, ``visual``, ``visual-unseen``,
  ``both``), or
- ``name=value`` items, e.g. ``friction=0.3,mass=2.0,latency=1``.

In a list of shifts (``ShiftConfig.shifts``) preset names and runs of ``name=value`` items are
separated by commas; ``;`` starts a new custom shift: ``physics-mild,mass=2;gain=0.5``.

Presets stay *inside* each env's factor ranges: the env refuses values outside them and we keep that
guard. "Out of range" therefore means out of the *training* distribution: a model trained at the
default factors has never seen ``physics-hard`` (values near the range edges, plus one step of
latency), while a model trained with ``collect --randomize physics`` has seen every value of it
except the latency. ``PRESET_KIND`` records which is which for the report. The one exception is
``visual-unseen`` (Two-Room, Push-T; in ``HELD_OUT_PRESETS``): a look outside every randomisation
range, so even a visually randomised or augmented model has never seen it. Its values lie in the
factors' separate *held-out* limits (``Factor.held_out``), which only these presets unlock; the
same values given as ``name=value`` items are refused like any other out-of-range value.

For each shift ``run_shift`` writes ``OUT/shift_<name>.json``: closed-loop success (the protocol of
``reverie.evaluate``), ΔSR against the source with a Newcombe interval, and open-loop latent
prediction error by horizon on episodes collected under the shift.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from reverie.data.format import MAX_COLLECT_SEED
from reverie.envs import env_class, make, resolve
from reverie.envs.latency import LatencyEnv
from reverie.io import ReverieError, atomic_write_json
from reverie.planning.options import PlannerOptions

MAX_LATENCY = 3
LATENCY = "latency"

# Per env: preset name -> factor values (all within the env's Factor ranges) and latency.
# fmt: off
PRESETS: dict[str, dict[str, dict[str, float]]] = {
    "tworoom": {
        "physics-mild": {"mass": 1.5, "friction": 0.05, "gain": 0.8},
        # Sluggish (mass 3), over-powered (gain 1.5), drifting (gravity) and delayed, yet feasible:
        # the oracle solves 9/10 pairs. (gain 0.5 + friction 0.15 left the oracle at 1/20.)
        "physics-hard": {"mass": 3.0, "friction": 0.1, "damping": 0.1, "gravity": 0.4,
                         "gain": 1.5, LATENCY: 1},
        "visual": {"agent_hue": 0.6, "lighting": 0.7, "camera_x": 6.0, "camera_y": -6.0},
        # Outside every randomisation range: darker, further off-centre, a green floor (the
        # agent hue already spans the whole circle, so the new colour is the floor's).
        "visual-unseen": {"agent_hue": 0.8, "lighting": 0.4, "camera_x": -11.0, "camera_y": 11.0,
                          "floor_tint": 0.5},
    },
    "pusht": {
        "physics-mild": {"mass": 1.3, "friction": 1000.0, "gain": 0.85},
        "physics-hard": {"mass": 1.9, "friction": 1500.0, "damping": 6.0,
                         "contact_friction": 0.15, "gain": 0.6, LATENCY: 1},
        "visual": {"block_hue": 0.3, "lighting": 0.75, "camera_x": 16.0, "camera_angle": 4.0},
        "visual-unseen": {"block_hue": -0.3, "lighting": 0.5, "camera_x": -32.0, "camera_y": 32.0,
                          "camera_angle": -7.0, "floor_tint": 0.5},
    },
    "reacher": {
        "physics-mild": {"mass_scale": 1.3, "damping": 1.3, "actuator_gain": 0.85},
        "physics-hard": {"mass_scale": 1.9, "damping": 1.9, "friction": 0.04, "gravity": 1.2,
                         "actuator_gain": 0.55, LATENCY: 1},
        "visual": {"arm_hue": 0.1, "light": 0.6, "camera_dx": 0.015, "camera_dz": 0.03},
    },
    "tabletop": {
        "physics-mild": {"mass_scale": 1.3, "friction": 0.7, "actuator_gain": 0.85},
        "physics-hard": {"mass_scale": 1.9, "friction": 0.35, "damping": 0.25, "gravity": 1.4,
                         "actuator_gain": 0.55, LATENCY: 1},
        "visual": {"cube_hue": 0.5, "light": 0.6, "table_brightness": 0.35, "camera_dx": 0.04},
    },
}
# fmt: on
for _env_presets in PRESETS.values():  # "both" = the mild physics shift seen through new visuals
    _env_presets["both"] = {**_env_presets["physics-mild"], **_env_presets["visual"]}
PRESET_NAMES = ("physics-mild", "physics-hard", "visual", "visual-unseen", "both")
#: Presets allowed past the factor ranges, into the factors' held-out limits (``Factor``); a
#: user's name=value items never are.
HELD_OUT_PRESETS = ("visual-unseen",)
#: Relation of each preset to a model trained at the defaults / with randomisation.
PRESET_KIND = {
    "physics-mild": "in-range (mild)",
    "physics-hard": "out-of-range for a default-trained model (range edges + latency)",
    "visual": "in-range visual",
    "visual-unseen": "held-out visual: outside every randomisation range",
    "both": "in-range physics + visual",
}


@dataclass(frozen=True)
class Shift:
    """One named shift: factor values for the env (validated) and an action latency in steps."""

    name: str
    factors: dict[str, float]
    latency: int = 0
    held_out: bool = False
    """The factors may lie in their held-out limits (``HELD_OUT_PRESETS`` only)."""

    def factor_string(self) -> str:
        """'a=1.0,b=2.0' as ``EvalConfig.factors`` takes it (latency excluded)."""
        return ",".join(f"{k}={v:g}" for k, v in self.factors.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "factors": dict(self.factors),
            "latency": self.latency,
            "held_out": self.held_out,
        }


def known_names(env: str) -> list[str]:
    return [*env_class(env).all_factors(), LATENCY]


def make_shift(env: str, name: str, values: dict[str, float], held_out: bool = False) -> Shift:
    """Validate ``values`` against the env's factors (+ latency) and build a ``Shift``
    (``held_out``: against the factors' held-out limits, for ``HELD_OUT_PRESETS``)."""
    cls = env_class(env)
    known = known_names(env)
    for key in values:
        if key not in known:
            raise ValueError(
                f"unknown factor {key!r} for {cls.short_name}; known: {', '.join(known)}"
            )
    values = dict(values)
    latency = values.pop(LATENCY, 0)
    if latency != int(latency) or not 0 <= latency <= MAX_LATENCY:
        raise ValueError(f"latency must be an integer in [0, {MAX_LATENCY}], got {latency}")
    cls.validate_factors(values, held_out)  # out-of-range values raise here, naming the range
    return Shift(name, {k: float(v) for k, v in values.items()}, int(latency), held_out)


def _parse_items(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"bad shift setting {item!r}: expected name=value or a preset")
    return out


def parse_shift(env: str, text: str) -> Shift:
    """One shift: a preset name or 'name=value,...' (see the module docstring)."""
    env, text = resolve(env), text.strip()
    if not text:
        raise ValueError("empty shift: give a preset or name=value items")
    if "=" not in text:
        if text not in PRESETS.get(env, {}):
            presets = ", ".join(PRESETS.get(env, {})) or "none"
            raise ValueError(f"unknown shift preset {text!r} for {env}; presets: {presets}")
        return make_shift(env, text, PRESETS[env][text], held_out=text in HELD_OUT_PRESETS)
    values = _parse_items(text)
    return make_shift(env, _custom_name(values), values)


def _custom_name(values: dict[str, float]) -> str:
    name = "_".join(f"{k}{v:g}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9_.-]", "", name)


def parse_shifts(env: str, text: str) -> list[Shift]:
    """A list of shifts: presets and runs of name=value items, separated as in the docstring."""
    shifts: list[Shift] = []
    for group in filter(None, (g.strip() for g in text.split(";"))):
        pending: list[str] = []
        for item in filter(None, (s.strip() for s in group.split(","))):
            if "=" in item:
                pending.append(item)
                continue
            if pending:
                shifts.append(parse_shift(env, ",".join(pending)))
                pending = []
            shifts.append(parse_shift(env, item))
        if pending:
            shifts.append(parse_shift(env, ",".join(pending)))
    if not shifts:
        raise ValueError("no shifts given")
    names = [s.name for s in shifts]
    if len(set(names)) != len(names):
        raise ValueError(f"shifts repeat: {names}")
    return shifts


# ----------------------------------------------------------------------------------- latency
def make_shifted(env: str, shift: Shift, **kwargs: Any) -> Any:
    """The env under ``shift`` (factors applied at every reset; latency wrapper if any)."""
    if shift.held_out:
        kwargs["held_out_factors"] = True
    base = make(env, factors=shift.factors, **kwargs)
    return LatencyEnv(base, shift.latency) if shift.latency else base


# ----------------------------------------------------------------------------------- metrics
def delta_interval(
    s1: int, n1: int, s0: int, n0: int, z: float = 1.96
) -> tuple[float, tuple[float, float]]:
    """ΔSR = p1 − p0 in % with Newcombe's hybrid Wilson 95% interval (method 10)."""
    from reverie.stats import wilson

    p1, p0 = 100.0 * s1 / n1, 100.0 * s0 / n0
    l1, u1 = wilson(s1, n1, z)
    l0, u0 = wilson(s0, n0, z)
    d = p1 - p0
    lo = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return round(d, 2), (round(max(-100.0, lo), 2), round(min(100.0, hi), 2))


def source_seeds(meta: dict[str, Any]) -> set[int]:
    """Collection seeds of the data a checkpoint was trained on (``config.json``'s
    ``data.settings``; a merged dataset lists its sources under ``merged_from``)."""
    seeds: set[int] = set()
    pending = [((meta.get("data") or {}).get("settings")) or {}]
    while pending:
        settings = pending.pop()
        if isinstance(settings.get("seed"), int):
            seeds.add(settings["seed"])
        pending += [src.get("settings") or {} for src in settings.get("merged_from") or []]
    return seeds


def heldout_seed_base(meta: dict[str, Any], seed: int) -> int:
    """Collection seed base ``999 - seed`` of episodes that must be held out from the checkpoint's
    training data; refuses in one line when the source data was collected with that seed."""
    if not 0 <= seed <= MAX_COLLECT_SEED:
        raise ReverieError(f"--seed must be in [0, {MAX_COLLECT_SEED}], got {seed}")
    base = MAX_COLLECT_SEED - seed
    if base in source_seeds(meta):
        raise ReverieError(
            f"held-out episodes would use collection seed {base} (999 - --seed {seed}), the seed "
            f"of the checkpoint's training data; choose another --seed"
        )
    return base


def collect_episodes(
    env: Any, episodes: int, base_seed: int, steps: int, policy: str = "mixed"
) -> list[dict[str, Any]]:
    """``episodes`` in memory with ``reverie.data.collect.run_episode`` (obs, actions, states)."""
    from reverie.data.collect import run_episode
    from reverie.data.format import episode_seed

    return [run_episode(env, policy, episode_seed(base_seed, i), steps) for i in range(episodes)]


def to_blocks(ep: dict[str, Any], frameskip: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An episode at the model's frameskip: obs (T, 3, Hi, Wi) uint8, actions (T-1, A·frameskip)."""
    blocks = (len(ep["obs"]) - 1) // frameskip
    obs = torch.from_numpy(np.ascontiguousarray(ep["obs"][: blocks * frameskip + 1 : frameskip]))
    obs = rearrange(obs, "t h w c -> t c h w")  # (T, 3, Hi, Wi)
    acts = torch.from_numpy(np.asarray(ep["actions"][: blocks * frameskip], np.float32))
    acts = rearrange(acts, "(t f) a -> t (f a)", f=frameskip)  # (T-1, A')
    return obs, acts


@torch.no_grad()
def open_loop_error(model: Any, episodes: list[dict[str, Any]], horizon: int) -> dict[str, Any]:
    """Latent MSE of ``rollout`` vs the encoded frames, per horizon 1..H, over all start points."""
    k = model.history
    per_h: list[list[float]] = [[] for _ in range(horizon)]
    for ep in episodes:
        obs, acts = to_blocks(ep, model.frameskip)
        n_frames = obs.shape[0]
        if n_frames <= horizon:
            continue
        z = model.encode(obs).float()  # (T, D)
        starts = list(range(0, n_frames - horizon))
        ctx = torch.stack(
            [
                torch.cat([z[:1].expand(max(0, k - 1 - s), -1), z[max(0, s - k + 1) : s + 1]])
                for s in starts
            ]
        )  # (B, k, D), left-padded by repeating frame 0 as training does
        a = torch.stack([acts[s : s + horizon] for s in starts])  # (B, H, A')
        pred = model.rollout(ctx, a).float()  # (B, H, D)
        target = torch.stack([z[s + 1 : s + 1 + horizon] for s in starts])  # (B, H, D)
        mse = ((pred - target) ** 2).mean(dim=-1)  # (B, H)
        for h in range(horizon):
            per_h[h] += mse[:, h].tolist()
    if not per_h[0]:
        raise ReverieError(f"episodes too short for an open-loop horizon of {horizon}")
    return {
        "horizon": list(range(1, horizon + 1)),
        "mse": [float(f"{np.mean(v):.6g}") for v in per_h],
        "windows": len(per_h[0]),
    }


# ----------------------------------------------------------------------------------- command
@dataclass(frozen=True)
class ShiftConfig:
    """``reverie shift``: a checkpoint's success and prediction error on source vs shifts."""

    checkpoint: Path
    """Run directory of a trained model."""
    env: str | None = None
    """Environment (default: the checkpoint's)."""
    shifts: str | None = None
    """Presets and/or name=value items (see the module docstring); None: every preset of the
    env (Two-Room, Push-T: physics-mild, physics-hard, visual, visual-unseen, both)."""
    episodes: int = 50
    """Closed-loop held-out pairs per setting."""
    seed: int = 0
    """Selects the held-out pairs and seeds the planner and the open-loop episodes (collection
    seed base 999 - seed, which must differ from the source data's), in [0, 999]."""
    out: Path | None = None
    """Output directory for shift_<name>.json (default: CHECKPOINT/simreal)."""
    planner: str = "cem"
    """Planner used by the closed-loop evaluation."""
    budget: int = 50
    """Env steps per closed-loop episode."""
    planning: PlannerOptions = PlannerOptions()
    """--samples --iterations --elites --horizon of the closed-loop planner (PlannerOptions)."""
    open_loop_episodes: int = 4
    """Episodes collected under each shift for the open-loop error."""
    open_loop_horizon: int = 5
    """Open-loop rollout length (model steps) for the error-by-horizon curve."""
    policy: str = "mixed"
    """Policy of the open-loop episodes: expert | mixed | random."""
    threads: int = 1
    """torch CPU threads while planning (as in ``reverie eval``)."""
    progress: bool = True
    """Print a line per setting (``reverie shift``; the Python call takes ``progress=``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        if self.out is not None:
            object.__setattr__(self, "out", Path(self.out))
        if self.env is not None:
            object.__setattr__(self, "env", resolve(self.env))
        if not 0 <= self.seed <= MAX_COLLECT_SEED:  # also the held-out collection base 999 - seed
            raise ValueError(f"--seed must be in [0, {MAX_COLLECT_SEED}], got {self.seed}")
        for name in ("episodes", "budget", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.open_loop_episodes < 0 or self.open_loop_horizon < 1:
            raise ValueError("--open-loop-episodes must be >= 0 and --open-loop-horizon >= 1")
        if self.policy not in ("expert", "mixed", "random"):
            raise ValueError(f"--policy must be expert, mixed or random, got {self.policy!r}")
        if self.env is not None:
            parse_shifts(self.env, self.shift_list(self.env))  # fail before any work

    def shift_list(self, env: str) -> str:
        """``shifts``, or every preset of ``env`` when it is None."""
        return self.shifts if self.shifts is not None else ",".join(PRESETS.get(resolve(env), {}))


def _eval_setting(cfg: ShiftConfig, env: str, shift: Shift | None, out: Path) -> dict[str, Any]:
    from reverie.evaluate import EvalConfig, evaluate

    ecfg = EvalConfig(
        checkpoint=cfg.checkpoint,
        env=env,
        episodes=cfg.episodes,
        planner=cfg.planner,
        seed=cfg.seed,
        out=out,
        budget=cfg.budget,
        planning=cfg.planning,
        threads=cfg.threads,
        videos=0,
        factors=shift.factor_string() if shift else "",
        latency=shift.latency if shift else 0,
        source_pairs=True,
        held_out_factors=bool(shift and shift.held_out),
    )
    return evaluate(ecfg, progress=False)


def run_shift(cfg: ShiftConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate source + each shift; writes OUT/shift_<name>.json; returns {name: result}."""
    from reverie.checkpoint import load_checkpoint, read_meta

    meta = read_meta(cfg.checkpoint)
    env = cfg.env or meta.get("env")
    if env is None:
        raise ReverieError(f"checkpoint {cfg.checkpoint} does not record its environment")
    shifts = parse_shifts(env, cfg.shift_list(env))
    out_dir = cfg.out or cfg.checkpoint / "simreal"
    out_dir.mkdir(parents=True, exist_ok=True)
    model, _ = load_checkpoint(cfg.checkpoint)
    model.eval()
    steps = env_class(env).max_episode_steps
    # Seeds from the top of the collection range, never the source training episodes; refused
    # before any work when they would be.
    base = heldout_seed_base(meta, cfg.seed) if cfg.open_loop_episodes else 0

    def open_loop(shift: Shift) -> dict[str, Any] | None:
        if not cfg.open_loop_episodes:
            return None
        sim = make_shifted(env, shift, size=model.image_size)
        eps = collect_episodes(sim, cfg.open_loop_episodes, base, steps, cfg.policy)
        return open_loop_error(model, eps, cfg.open_loop_horizon)

    results: dict[str, Any] = {}
    source = Shift("source", {}, 0)
    settings = [source, *shifts]
    for shift in settings:
        if progress:
            print(f"shift {shift.name}: closed-loop on {cfg.episodes} pairs ...", flush=True)
        ev = _eval_setting(cfg, env, shift, out_dir / f"eval_{shift.name}.json")
        results[shift.name] = {
            "env": env,
            "checkpoint": str(cfg.checkpoint),
            "shift": shift.to_json(),
            "kind": "source" if shift is source else PRESET_KIND.get(shift.name, "custom"),
            "success_rate": ev["success_rate"],
            "successes": ev["successes"],
            "episodes": ev["episodes"],
            "ci95": ev["ci95"],
            "planner": cfg.planner,
            "open_loop": open_loop(shift),
        }
    src = results["source"]
    for shift in settings:
        r = results[shift.name]
        d, ci = delta_interval(r["successes"], r["episodes"], src["successes"], src["episodes"])
        r["delta_sr"], r["delta_ci95"] = d, ci
        r["source_success_rate"] = src["success_rate"]
        atomic_write_json(out_dir / f"shift_{shift.name}.json", r)
    return results
