"""System identification: recover shifted physics factors from a few observed episodes.

    reverie sysid --checkpoint runs/tworoom --shift physics-hard --episodes 3
    from reverie.simreal.sysid import SysIDConfig, run_sysid; run_sysid(SysIDConfig(...))

The "real" system is the env under a shift; we observe a few of its episodes (frames and actions).
For candidate values of the shift's physical factors we replay the observed actions from the
observed start states in the simulator, render, encode with the world model, and score the mean
squared embedding distance to the encoded observed frames (``metric="embedding"``). The search is
joint CEM over all factors scaled to [0, 1] (``method="cem"``, default) or coordinate descent on
a per-factor grid (``method="coordinate"``: one factor at a time, zooming after the first sweep;
it stalls on ridges such as mass vs gain). The same search on the true physical state
(``metric="state"``) is the sanity baseline: it needs no model, but a real robot would not give
us its state. Some factors are not separately identifiable (at unit mass only gain·(1 − damping)
shows in the trajectory): recovery errors are reported per factor. Latency is replayed as
observed (not identified).

Result JSON (``OUT/sysid.json``): per factor the true value, each metric's estimate and absolute
error, and the error as a fraction of the factor's range.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from reverie.envs import env_class, make, resolve
from reverie.io import ReverieError, atomic_write_json
from reverie.simreal.shifts import (
    LatencyEnv,
    Shift,
    collect_episodes,
    heldout_seed_base,
    make_shifted,
    parse_shift,
)


def replay(
    env_name: str,
    factors: dict[str, float],
    episodes: list[dict[str, Any]],
    latency: int = 0,
    size: int = 64,
    every: int = 1,
    render: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Replay each episode's actions from its start state under ``factors``.

    Returns states (E, L/every+1, S) and, if ``render``, frames (E, L/every+1, Hi, Wi, 3) taken
    every ``every`` steps (the model's frameskip) from step 0.
    """
    base = make(env_name, size=size, factors=factors)
    sim = LatencyEnv(base, latency) if latency else base
    all_states, all_frames = [], []
    for ep in episodes:
        # Same start: reset (factors applied), then put the world in the observed start state.
        sim.reset(seed=0, options={"state": ep["states"][0]})
        states, frames = [base.get_state()], [base.render()] if render else []
        for t, action in enumerate(ep["actions"], start=1):
            sim.step(action)
            if t % every == 0:
                states.append(base.get_state())
                if render:
                    frames.append(base.render())
        all_states.append(np.stack(states))
        if render:
            all_frames.append(np.stack(frames))
    return np.stack(all_states), (np.stack(all_frames) if render else None)


def _state_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


@torch.no_grad()
def _embed(model: Any, frames: np.ndarray) -> torch.Tensor:
    """frames (E, T, Hi, Wi, 3) uint8 -> (E, T, D)."""
    obs = torch.from_numpy(np.ascontiguousarray(frames))
    return model.encode(rearrange(obs, "e t h w c -> e t c h w")).float()


def identify(
    env_name: str,
    episodes: list[dict[str, Any]],
    names: list[str],
    metric: str = "state",
    model: Any = None,
    candidates: int = 21,
    passes: int = 2,
    latency: int = 0,
    every: int = 1,
    method: str = "cem",
    seed: int = 0,
) -> dict[str, float]:
    """Search the physics factors ``names`` whose replays best match the episodes.

    ``metric``: ``state`` (MSE on the physical state) or ``embedding`` (MSE between the model's
    embeddings of replayed and observed frames; needs ``model``). ``method``: ``cem`` (joint
    search in range-normalised space: ``candidates`` samples × ``passes`` iterations) or
    ``coordinate`` (grid of ``candidates`` per factor, ``passes`` sweeps, zooming after the
    first). Returns the estimates.
    """
    cls = env_class(env_name)
    if metric not in ("state", "embedding"):
        raise ValueError(f"metric must be state or embedding, got {metric!r}")
    if method not in ("cem", "coordinate"):
        raise ValueError(f"method must be cem or coordinate, got {method!r}")
    if metric == "embedding" and model is None:
        raise ValueError("metric=embedding needs a world model")
    unknown = [n for n in names if n not in cls.physics_factors]
    if unknown:
        raise ValueError(f"not physics factors of {env_name}: {unknown}")
    size = model.image_size if model is not None else 64
    observed_states = np.stack([ep["states"][::every] for ep in episodes])  # (E, T, S)
    observed_z = None
    if metric == "embedding":
        observed_z = _embed(model, np.stack([ep["obs"][::every] for ep in episodes]))  # (E, T, D)

    def score(values: dict[str, float]) -> float:
        states, frames = replay(
            env_name, values, episodes, latency, size, every, render=metric == "embedding"
        )
        if metric == "state":
            return _state_distance(states, observed_states)
        z = _embed(model, frames)  # (E, T, D)
        return float(((z - observed_z) ** 2).mean())

    factors = [cls.physics_factors[n] for n in names]
    low = np.array([f.low for f in factors])
    span = np.array([f.high - f.low for f in factors])
    if method == "cem":
        return _cem(score, names, low, span, candidates, passes, seed)
    estimate = {n: f.default for n, f in zip(names, factors)}
    # Half-width of each factor's search window: the whole range first, then a zoom to ±2 grid
    # steps around the estimate (coordinate descent along a ridge needs it).
    width = {n: (f.high - f.low) / 2 for n, f in zip(names, factors)}
    for _ in range(passes):
        for name, f in zip(names, factors):
            centre = (f.low + f.high) / 2 if width[name] * 2 >= f.high - f.low else estimate[name]
            lo, hi = max(f.low, centre - width[name]), min(f.high, centre + width[name])
            grid = np.unique(np.append(np.linspace(lo, hi, candidates), estimate[name]))
            scores = [score({**estimate, name: float(v)}) for v in grid]
            estimate[name] = float(grid[int(np.argmin(scores))])
            width[name] = 2 * (hi - lo) / (candidates - 1)
    return estimate


def _cem(
    score: Any,
    names: list[str],
    low: np.ndarray,
    span: np.ndarray,
    samples: int,
    iterations: int,
    seed: int,
) -> dict[str, float]:
    """Cross-entropy search over factors scaled to [0, 1]; returns the best values scored."""
    rng = np.random.default_rng(seed)
    n = len(names)
    mean, std = np.full(n, 0.5), np.full(n, 0.35)
    elites = max(2, samples // 8)
    best_u, best = mean.copy(), math.inf
    for _ in range(iterations):
        u = np.clip(mean + std * rng.standard_normal((samples, n)), 0.0, 1.0)  # (N, F)
        u[0] = best_u  # keep the incumbent: the best score never gets worse
        costs = np.array([score(dict(zip(names, (low + span * x).tolist()))) for x in u])  # (N,)
        order = np.argsort(costs)
        if costs[order[0]] < best:
            best, best_u = float(costs[order[0]]), u[order[0]].copy()
        top = u[order[:elites]]  # (elites, F)
        mean, std = top.mean(axis=0), top.std(axis=0) + 0.01
    return dict(zip(names, (low + span * best_u).tolist()))


@dataclass(frozen=True)
class SysIDConfig:
    """Identify a shift's physics factors from a few of its episodes."""

    checkpoint: Path | None = None
    """World model for the embedding metric (None: state metric only)."""
    env: str | None = None
    """Environment (default: the checkpoint's; required without one)."""
    shift: str = "physics-hard"
    """The hidden "real" setting: a preset or name=value items."""
    episodes: int = 3
    """Observed episodes under the shift."""
    episode_steps: int = 40
    """Steps per observed episode."""
    method: str = "cem"
    """cem (joint search over all factors) | coordinate (one factor at a time on a grid)."""
    candidates: int = 32
    """cem: samples per iteration; coordinate: grid points per factor."""
    passes: int = 8
    """cem: iterations; coordinate: sweeps over the factors."""
    out: Path | None = None
    """Result JSON (default: CHECKPOINT/simreal/sysid.json, or runs/sysid_<env>.json)."""
    seed: int = 0
    """Seeds the observed episodes (collection seed base 999 - seed), in [0, 999]."""

    def __post_init__(self) -> None:
        if self.checkpoint is not None:
            object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        if self.out is not None:
            object.__setattr__(self, "out", Path(self.out))
        if self.checkpoint is None and self.env is None:
            raise ValueError("--env is required without --checkpoint")
        if self.env is not None:
            object.__setattr__(self, "env", resolve(self.env))
            parse_shift(self.env, self.shift)
        for name in ("episodes", "episode_steps", "candidates", "passes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if not 0 <= self.seed <= 999:
            raise ValueError(f"--seed must be in [0, 999], got {self.seed}")
        if self.candidates < 2:
            raise ValueError("--candidates must be >= 2")
        if self.method not in ("cem", "coordinate"):
            raise ValueError(f"--method must be cem or coordinate, got {self.method!r}")


def run_sysid(cfg: SysIDConfig) -> dict[str, Any]:
    """Observe episodes under the shift, identify its physics factors, write and return JSON."""
    t0 = time.perf_counter()
    model, meta = None, {}
    if cfg.checkpoint is not None:
        from reverie.checkpoint import load_checkpoint

        model, meta = load_checkpoint(cfg.checkpoint)
        model.eval()
    env = cfg.env or meta.get("env")
    if env is None:
        raise ReverieError(f"checkpoint {cfg.checkpoint} does not record its environment")
    cls = env_class(env)
    shift = parse_shift(env, cfg.shift)
    names = [n for n in shift.factors if n in cls.physics_factors]
    if not names:
        raise ValueError(f"shift {shift.name!r} changes no physics factor to identify")
    # The observed "real" episodes: physics shifted, source visuals (pixels must be comparable).
    physical = Shift(shift.name, {n: shift.factors[n] for n in names}, shift.latency)
    size = model.image_size if model is not None else 64
    real = make_shifted(env, physical, size=size)
    base = heldout_seed_base(meta, cfg.seed)  # never the checkpoint's training episodes
    episodes = collect_episodes(real, cfg.episodes, base, cfg.episode_steps, "mixed")
    every = model.frameskip if model is not None else 1
    search = dict(
        candidates=cfg.candidates,
        passes=cfg.passes,
        latency=shift.latency,
        method=cfg.method,
        seed=cfg.seed,
    )
    estimates = {"state": identify(env, episodes, names, "state", **search)}
    if model is not None:
        estimates["embedding"] = identify(
            env, episodes, names, "embedding", model, every=every, **search
        )
    factors = {}
    for n in names:
        f = cls.physics_factors[n]
        row: dict[str, Any] = {
            "true": shift.factors[n],
            "default": f.default,
            "range": [f.low, f.high],
        }
        for metric, est in estimates.items():
            err = abs(est[n] - shift.factors[n])
            row[metric] = {
                "estimate": round(est[n], 4),
                "abs_error": round(err, 4),
                "rel_range_error": round(err / (f.high - f.low), 4),
            }
        factors[n] = row
    result = {
        "env": env,
        "checkpoint": str(cfg.checkpoint) if cfg.checkpoint else None,
        "shift": shift.to_json(),
        "episodes": cfg.episodes,
        "episode_steps": cfg.episode_steps,
        "method": cfg.method,
        "candidates": cfg.candidates,
        "passes": cfg.passes,
        "factors": factors,
        "mean_rel_error": {
            m: round(float(np.mean([factors[n][m]["rel_range_error"] for n in names])), 4)
            for m in estimates
        },
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    out = cfg.out or (
        cfg.checkpoint / "simreal" / "sysid.json"
        if cfg.checkpoint
        else Path("runs") / f"sysid_{env}.json"
    )
    atomic_write_json(out, result)
    result["out"] = str(out)
    return result
