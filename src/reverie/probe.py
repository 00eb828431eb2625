"""Linear probes of a world model's embedding: physical state (wanted) and the look (a nuisance).

    reverie probe --checkpoint runs/tworoom                   # state only (the look is fixed)
    reverie probe --checkpoint runs/tworoom --looks visual    # + hue, lighting, camera
    from reverie.probe import ProbeConfig, run_probe, ridge_r2

A ridge regression from the frozen embedding ``z`` (standardised) to each variable is fitted on
the frames of some episodes and scored by R² on the frames of *other* episodes (held out, so a
look seen in training is never the one scored). State variables come from ``info["state"]``;
look variables are the env's visual factors, drawn per episode with ``--looks visual`` (the
env's randomisation ranges) or ``visual-unseen``-style wide draws are not used: probes measure
what the embedding carries, not robustness. An embedding invariant to the look keeps state R²
high and drives look R² toward 0 (R² can be slightly negative on held-out data: no better than
the mean). A variable that does not vary in the probe data is reported as None.

With ``--looks visual`` every probe frame's state is also rendered in the default look (paired
renders: ``set_state`` then render), and ``look_distance`` reports the mean embedding distance
between the two looks of one state as a fraction of the mean distance between two different
states (0: the look moves nothing; ~1: a new look moves the embedding as far as a new state).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reverie.io import ReverieError, atomic_write_json

LOOKS = ("none", "visual")
#: Names of ``info["state"]``'s entries, where the env documents them (others: s0, s1, ...).
STATE_NAMES: dict[str, tuple[str, ...]] = {
    "tworoom": ("x", "y", "vx", "vy"),
    "pusht": (
        "agent_x",
        "agent_y",
        "agent_vx",
        "agent_vy",
        "block_x",
        "block_y",
        "block_angle",
        "block_vx",
        "block_vy",
        "block_omega",
    ),
    "reacher": ("q0", "q1", "dq0", "dq1"),
}
#: State entries that are angles: probed as their sine and cosine (a raw angle wraps at ±π, so a
#: linear read-out of it fails even when the embedding holds it exactly).
ANGLES: dict[str, tuple[str, ...]] = {"pusht": ("block_angle",), "reacher": ("q0", "q1")}
#: State entries that are rates (velocities): one frame does not show them.
RATES: dict[str, tuple[str, ...]] = {
    "tworoom": ("vx", "vy"),
    "pusht": ("agent_vx", "agent_vy", "block_vx", "block_vy", "block_omega"),
    "reacher": ("dq0", "dq1"),
}


def angle_features(
    states: list[np.ndarray], names: list[str], angles: tuple[str, ...]
) -> tuple[list[np.ndarray], list[str]]:
    """Replace each angle column of ``states`` ((T, S) per episode) by its sin and cos."""
    keep = [i for i, n in enumerate(names) if n not in angles]
    wrap = [i for i, n in enumerate(names) if n in angles]
    out_names = [names[i] for i in keep]
    out_names += [f"{names[i]}_{f}" for i in wrap for f in ("sin", "cos")]
    out = []
    for st in states:
        cols = [st[:, keep]] + [np.stack([np.sin(st[:, i]), np.cos(st[:, i])], 1) for i in wrap]
        out.append(np.concatenate(cols, axis=1))
    return out, out_names


@dataclass(frozen=True)
class ProbeConfig:
    """``reverie probe``: ridge probes from a checkpoint's embedding to state and look."""

    checkpoint: Path
    """Run directory of a trained world model."""
    looks: str = "none"
    """none (the default look: state probes only) | visual (a look drawn per episode from the
    env's visual randomisation ranges: state and look probes)."""
    episodes: int = 120
    """Episodes collected for the probes (a quarter are held out for R²). Few episodes give the
    probe few poses of the T: with 40 a Push-T model's held-out angle R² was -1.3 where 160 gave
    -0.2. (``benchmarks/bench_probe_ceiling.py`` gives the supervised ceiling per variable.)"""
    steps: int = 100
    """Env steps per episode (every model frame, frameskip apart, is a probe sample)."""
    alpha: float = 1.0
    """Ridge penalty on standardised embeddings."""
    seed: int = 0
    """Collection seed base 999 - seed (must differ from the training data's), in [0, 999]."""
    policy: str = "mixed"
    """Policy of the probe episodes: expert | mixed | random."""
    out: Path | None = None
    """Result JSON (default: CHECKPOINT/probe_<looks>.json)."""
    threads: int = 1
    """torch CPU threads while encoding."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        if self.out is not None:
            object.__setattr__(self, "out", Path(self.out))
        if self.looks not in LOOKS:
            raise ValueError(f"--looks must be one of {', '.join(LOOKS)}, got {self.looks!r}")
        if self.episodes < 4:
            raise ValueError(
                f"--episodes must be >= 4 (a quarter are held out), got {self.episodes}"
            )
        for name in ("steps", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"--alpha must be finite and > 0, got {self.alpha}")
        if self.policy not in ("expert", "mixed", "random"):
            raise ValueError(f"--policy must be expert, mixed or random, got {self.policy!r}")


def ridge_r2(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    alpha: float = 1.0,
) -> list[float | None]:
    """Held-out R² of a ridge fit per column of ``y`` (None where ``y_test`` does not vary).

    ``x`` (N, D) is standardised with the training statistics; the fit has an intercept.
    """
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-8
    xtr, xte = (x_train - mu) / sd, (x_test - mu) / sd  # (N, D)
    y_mu = y_train.mean(0)
    D = xtr.shape[1]
    w = np.linalg.solve(xtr.T @ xtr + alpha * np.eye(D), xtr.T @ (y_train - y_mu))  # (D, V)
    return held_out_r2(y_train, y_test, xte @ w + y_mu)


def held_out_r2(y_train: np.ndarray, y_test: np.ndarray, pred: np.ndarray) -> list[float | None]:
    """R² of ``pred`` (N', V) per column of ``y_test`` (None where a column does not vary)."""
    out: list[float | None] = []
    for v in range(y_test.shape[1]):
        sst = float(((y_test[:, v] - y_test[:, v].mean()) ** 2).sum())
        if sst <= 1e-12 * len(y_test) or np.ptp(y_train[:, v]) == 0:
            out.append(None)
            continue
        out.append(round(1.0 - float(((y_test[:, v] - pred[:, v]) ** 2).sum()) / sst, 4))
    return out


def mlp_r2(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    hidden: int = 64,
    steps: int = 400,
    seed: int = 0,
) -> list[float | None]:
    """Held-out R² per column of a small MLP probe (one hidden SiLU layer of ``hidden``, full-
    batch AdamW on standardised inputs and targets): what a non-linear read-out finds that a
    linear one misses (None where ``y_test`` does not vary). A fifth of the training rows is set
    aside to pick the step with the lowest loss (early stopping: a few hundred frames of a 64-d
    embedding are easy to overfit)."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-8
    y_mu, y_sd = y_train.mean(0), y_train.std(0) + 1e-8
    x = torch.from_numpy((x_train - mu) / sd).float()
    y = torch.from_numpy((y_train - y_mu) / y_sd).float()
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=gen)
    n_stop = max(1, len(x) // 5)
    stop, fit = order[:n_stop], order[n_stop:]
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, y.shape[1])
    )
    with torch.no_grad():
        for layer in (net[0], net[2]):  # seeded init: the probe is a pure function of its data
            layer.weight.copy_(
                torch.randn(layer.weight.shape, generator=gen) / layer.in_features**0.5
            )
            layer.bias.zero_()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=1e-2)
    best, best_state = math.inf, None
    with torch.enable_grad():
        for step in range(steps):
            opt.zero_grad()
            ((net(x[fit]) - y[fit]) ** 2).mean().backward()
            opt.step()
            if step % 10 == 9:
                with torch.no_grad():
                    held = float(((net(x[stop]) - y[stop]) ** 2).mean())
                if held < best:
                    best, best_state = held, {k: v.clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    with torch.no_grad():
        xte = torch.from_numpy((x_test - mu) / sd).float()
        pred = net(xte).double().numpy() * y_sd + y_mu  # (N', V)
    return held_out_r2(y_train, y_test, pred)


def probe_table(
    emb: list[np.ndarray],
    targets: list[np.ndarray],
    names: list[str],
    alpha: float,
    kind: str = "linear",
) -> dict[str, float | None]:
    """R² per name: episodes' embeddings (T_i, D) and targets (T_i, V); the last quarter of the
    episodes is held out. ``kind``: linear (ridge, ``alpha``) | mlp (``mlp_r2``)."""
    n_test = max(1, len(emb) // 4)
    x_tr, x_te = np.concatenate(emb[:-n_test]), np.concatenate(emb[-n_test:])
    y_tr, y_te = np.concatenate(targets[:-n_test]), np.concatenate(targets[-n_test:])
    if kind == "mlp":
        return dict(zip(names, mlp_r2(x_tr, y_tr, x_te, y_te)))
    return dict(zip(names, ridge_r2(x_tr, y_tr, x_te, y_te, alpha)))


def look_distance(emb: list[np.ndarray], paired: list[np.ndarray], seed: int = 0) -> float:
    """Mean ‖z(state, look) − z(state, default look)‖ over frames ÷ mean ‖z(s) − z(s')‖ between
    random pairs of default-look frames."""
    z_look, z_src = np.concatenate(emb), np.concatenate(paired)  # (N, D) each
    same = float(np.linalg.norm(z_look - z_src, axis=1).mean())
    perm = np.random.default_rng(seed).permutation(len(z_src))
    other = float(np.linalg.norm(z_src - z_src[perm], axis=1).mean())
    return round(same / max(other, 1e-12), 4)


def run_probe(cfg: ProbeConfig) -> dict[str, Any]:
    """Collect episodes, encode them, fit the probes; writes and returns the result JSON."""
    from reverie.checkpoint import load_checkpoint, read_meta
    from reverie.envs import env_class, make
    from reverie.hardware import torch_threads
    from reverie.simreal.shifts import collect_episodes, heldout_seed_base, to_blocks

    t0 = time.perf_counter()
    meta = read_meta(cfg.checkpoint)
    env_name = meta.get("env")
    if env_name is None:
        raise ReverieError(f"checkpoint {cfg.checkpoint} does not record its environment")
    model, _ = load_checkpoint(cfg.checkpoint)
    model.eval()
    base = heldout_seed_base(meta, cfg.seed)
    env = make(env_name, size=model.image_size, randomize=cfg.looks)
    eps = collect_episodes(env, cfg.episodes, base, cfg.steps, cfg.policy)
    look_names = list(env_class(env_name).visual_factors) if cfg.looks == "visual" else []
    source = make(env_name, size=model.image_size) if look_names else None
    # A proprio model's embedding carries the pusher's state as given: probe its pixel part, so
    # the table says what the model learned to see.
    embed = model.encoder if model.proprio_dim else model.encode
    emb, states, looks, paired = [], [], [], []
    with torch_threads(cfg.threads), torch.no_grad():
        for ep in eps:
            obs, _ = to_blocks(ep, model.frameskip)  # (T, 3, Hi, Wi)
            T = obs.shape[0]
            emb.append(embed(obs).float().numpy())  # (T, D)
            states.append(
                np.asarray(ep["states"][: (T - 1) * model.frameskip + 1 : model.frameskip])
            )
            looks.append(np.tile([[ep["factors"][k] for k in look_names]], (T, 1)))  # (T, V)
            if source is not None:  # the same states in the default look
                source.reset(seed=0)
                frames = np.stack([source.render_state(s) for s in states[-1]])  # (T, Hi, Wi, 3)
                src = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
                paired.append(embed(src).float().numpy())  # (T, D)
    S = states[0].shape[1]
    names = list(STATE_NAMES.get(env_name, ()))
    names = names if len(names) == S else [f"s{i}" for i in range(S)]
    states, names = angle_features(states, names, ANGLES.get(env_name, ()))
    result: dict[str, Any] = {
        "checkpoint": str(cfg.checkpoint),
        "env": env_name,
        "looks": cfg.looks,
        "episodes": cfg.episodes,
        "frames": int(sum(len(e) for e in emb)),
        "alpha": cfg.alpha,
        "augment": (meta.get("train") or {}).get("augment", "none"),
        "embedding": "pixel part (proprio excluded)" if model.proprio_dim else "whole",
        "state_r2": probe_table(emb, states, names, cfg.alpha),
        "state_r2_mlp": probe_table(emb, states, names, cfg.alpha, kind="mlp"),
        "look_r2": probe_table(emb, looks, look_names, cfg.alpha) if look_names else {},
        "look_distance": look_distance(emb, paired, cfg.seed) if paired else None,
    }
    result["wall_seconds"] = round(time.perf_counter() - t0, 2)
    out = cfg.out or cfg.checkpoint / f"probe_{cfg.looks}.json"
    atomic_write_json(out, result)
    result["out"] = str(out)
    return result


def format_table(result: dict[str, Any]) -> str:
    """The probes as a two-column text table (variable, held-out R²)."""

    def cell(r2: float | None) -> str:
        return "n/a" if r2 is None else f"{r2:.3f}"

    mlp = result.get("state_r2_mlp") or {}
    lines = [f"{'variable':<14} {'kind':<6} R² linear  R² mlp (held out)"]
    for kind in ("state", "look"):
        for name, r2 in result[f"{kind}_r2"].items():
            nonlinear = cell(mlp.get(name)) if kind == "state" and mlp else ""
            lines.append(f"{name:<14} {kind:<6} {cell(r2):<9}  {nonlinear}")
    if result.get("look_distance") is not None:
        lines.append(
            f"look distance (two looks of one state / two states): {result['look_distance']}"
        )
    return "\n".join(lines)


def probe_section(run_dir: str | Path) -> str:
    """HTML for the probe results (``probe_*.json``) in ``run_dir`` ('' when there are none)."""
    import html
    import json

    rows = []
    for path in sorted(Path(run_dir).glob("probe_*.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        cells = {**r.get("state_r2", {}), **r.get("look_r2", {})}
        mlp = r.get("state_r2_mlp") or {}
        text = ", ".join(
            f"{k} {'n/a' if v is None else f'{v:.2f}'}"
            + (f" (mlp {mlp[k]:.2f})" if mlp.get(k) is not None else "")
            for k, v in cells.items()
        )
        dist = r.get("look_distance")
        rows.append(
            f"<tr><td>{html.escape(str(r.get('looks')))}</td><td>{html.escape(text)}</td>"
            f"<td>{'' if dist is None else dist}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<h3>Probes (held-out R²: state should be high, look near 0)</h3><table><tr>"
        "<th>looks</th><th>R² per variable</th><th>look distance</th></tr>"
        + "".join(rows)
        + "</table>"
    )
