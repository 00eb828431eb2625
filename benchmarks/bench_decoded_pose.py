"""Is it the dynamics or the cost? Push-T planning through a ``--state-aux`` model's pose read-out.

    .venv/bin/python benchmarks/bench_decoded_pose.py --checkpoint runs/abl/proprio-saux
    .venv/bin/python benchmarks/bench_decoded_pose.py --checkpoint RUN --costs latent,reach

A checkpoint trained with ``reverie train --state-aux W`` keeps its linear pose head (pixel
embedding -> agent and T position, the T's angle as sin/cos) in its train state. This script
reads it back and asks two questions on the held-out pairs ``reverie eval`` uses (same seeds,
same CEM and MPC loop):

1. **Open loop.** From each pair's start frame, the model rolls out the expert's own five action
   blocks (25 env steps: exactly the horizon-5 plan that reaches the goal). The pose decoded
   from each predicted embedding is compared with the true pose at that block, beside the pose
   decoded from the true frame (the read-out's own error) and the start pose held still (the
   copy baseline). Medians over pairs, per block: pusher and T position error in units, T angle
   error in degrees.
2. **Closed loop.** CEM plans with a cost on the *decoded* poses instead of the latent distance:
   ``latent`` (the usual summed squared L2 to the goal embedding, the same-run baseline),
   ``margin`` (the success test's errors over their tolerances, max plus 0.1 × sum) and
   ``reach`` (the oracle's Push-T default: margin over the T plus the pusher's distance to the
   best contact, ``planning.objective.state_cost``), each summed over the horizon. The goal pose
   is decoded from the goal image. If ``reach`` on decoded poses approaches the oracle's 88%,
   the model's dynamics suffice and the latent cost is what limits planning; if it stays near the
   latent row, the predicted dynamics are the limit.

The pose head was trained on true states, so these rows use privileged labels (a diagnostic,
not a pixels-only result). Push-T only. Measured on one core beside another job (50 pairs, CEM
300 × 30, lite model): 10–12 minutes per cost row (``reach`` spends about a second per replan on
its approach term); a 256-wide predictor takes about twice as long.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange, repeat
from torch import Tensor

from reverie.checkpoint import load_checkpoint, load_train_state
from reverie.envs import make
from reverie.envs import pusht as P
from reverie.evaluate import EvalConfig, make_pairs, planning_autocast
from reverie.hardware import machine_line
from reverie.io import ReverieError, atomic_write_json
from reverie.models.jepa import StateHead
from reverie.planning import CEM, CEMConfig, LatentGoalFactory, MPCConfig, run_episode
from reverie.planning.mpc import PlanContext, proprio_for
from reverie.planning.objective import MARGIN_TIE_BREAK, REACH_WEIGHT, reduce_horizon
from reverie.planning.options import PlannerOptions
from reverie.probe import STATE_NAMES
from reverie.stats import wilson

COSTS = ("latent", "margin", "reach")
POSE = ("agent_x", "agent_y", "block_x", "block_y")  # then the angle, from block_angle_sin/cos


# ----------------------------------------------------------------------------- the pose costs
def wrap(a: Tensor) -> Tensor:
    """Wrap angles to [-pi, pi) (``pusht.wrap_angle`` in torch)."""
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def pose_margins(pose: Tensor, goal: Tensor) -> Tensor:
    """(..., 5) poses [ax, ay, bx, by, theta] and goal -> (..., 3) ``PushTEnv.success_margin``."""
    pusher = torch.linalg.vector_norm(pose[..., 0:2] - goal[..., 0:2], dim=-1) / P.POS_TOL
    block = torch.linalg.vector_norm(pose[..., 2:4] - goal[..., 2:4], dim=-1) / P.POS_TOL
    angle = torch.rad2deg(wrap(pose[..., 4] - goal[..., 4]).abs()) / P.ANGLE_TOL_DEG
    return torch.stack([pusher, block, angle], -1)


def approach_margin(pose: Tensor, goal: Tensor) -> Tensor:
    """(..., 5) -> (...): ``PushTEnv.approach_margin`` batched (``pusht.push_contacts``)."""
    cp = torch.as_tensor(P.CONTACT_POINTS, dtype=pose.dtype)  # (K, 2) body frame
    cn = torch.as_tensor(P.CONTACT_NORMALS, dtype=pose.dtype)
    com, theta = pose[..., 2:4], pose[..., 4]
    c, s = torch.cos(theta)[..., None], torch.sin(theta)[..., None]  # (..., 1)
    points = torch.stack([c * cp[:, 0] - s * cp[:, 1], s * cp[:, 0] + c * cp[:, 1]], -1)
    points = points + com[..., None, :]  # (..., K, 2) world contact points
    inward = -torch.stack([c * cn[:, 0] - s * cn[:, 1], s * cn[:, 0] + c * cn[:, 1]], -1)
    spots = points - inward * (P.AGENT_RADIUS + 3.0)
    lever = points - com[..., None, :]
    torque = lever[..., 0] * inward[..., 1] - lever[..., 1] * inward[..., 0]
    twist = torch.cat([inward, (P.ANGLE_WEIGHT * torque / P.RHO2)[..., None]], -1)  # (..., K, 3)
    err_a = wrap(goal[..., 4] - theta)
    want = torch.cat([goal[..., 2:4] - com, (P.ANGLE_WEIGHT * err_a)[..., None]], -1)  # (..., 3)
    align = (twist * want[..., None, :]).sum(-1) / (
        torch.linalg.vector_norm(twist, dim=-1) * torch.linalg.vector_norm(want, dim=-1)[..., None]
    ).clamp_min(1e-12)
    lo, hi = P.AGENT_RADIUS + 2, P.WORLD - P.AGENT_RADIUS - 2
    inside = ((spots > lo) & (spots < hi)).all(-1)
    best = torch.where(inside, align, torch.full_like(align, -math.inf)).argmax(-1)  # (...)
    spot = torch.gather(spots, -2, best[..., None, None].expand(*best.shape, 1, 2))[..., 0, :]
    dist = torch.linalg.vector_norm(pose[..., 0:2] - spot, dim=-1) / P.POS_TOL
    m = pose_margins(pose, goal)
    placed = (m[..., 1] <= 1.0) & (m[..., 2] <= 1.0)
    return torch.where(placed, torch.zeros_like(dist), dist)


def pose_cost(pose: Tensor, goal: Tensor, cost: str) -> Tensor:
    """(..., 5) -> (...): ``planning.objective.state_cost`` (``margin`` | ``reach``) on poses."""
    m = pose_margins(pose, goal)
    if cost == "margin":
        return m.max(-1).values + MARGIN_TIE_BREAK * m.sum(-1)
    if cost != "reach":
        raise ValueError(f"pose cost must be margin or reach, got {cost!r}")
    placed = m[..., 1:].max(-1).values  # the pusher's own error (entry 0) stays out of the max
    return placed + MARGIN_TIE_BREAK * m.sum(-1) + REACH_WEIGHT * approach_margin(pose, goal)


# ------------------------------------------------------------------------- the pose read-out
class PoseReader:
    """A ``--state-aux`` checkpoint's pose head: embeddings (..., D) -> poses (..., 5)."""

    def __init__(self, run: Path, model: Any, env_name: str) -> None:
        state, _ = load_train_state(run)
        saved = (state.get("task") or {}).get("state_head")
        if saved is None:
            raise ReverieError(f"{run} was not trained with --state-aux: it has no pose head")
        pixel_dim = model.config.encoder.embed_dim
        width = len(STATE_NAMES[env_name])
        self.head = StateHead(torch.zeros(2, width), env_name, pixel_dim)
        self.head.load_state_dict(saved)
        self.head.eval()
        names = self.head.names
        self.cols = [names.index(n) for n in POSE]
        self.sin, self.cos = names.index("block_angle_sin"), names.index("block_angle_cos")
        self.pixel_dim = pixel_dim

    @torch.no_grad()
    def __call__(self, z: Tensor) -> Tensor:
        head = self.head
        with torch.autocast(z.device.type, enabled=False):  # poses in fp32 under bf16 planning
            f = head(z[..., : self.pixel_dim].float()) * head.std + head.mean  # (..., V) raw
        theta = torch.atan2(f[..., self.sin], f[..., self.cos])
        return torch.cat([f[..., self.cols], theta[..., None]], -1)


class PoseObjective:
    """CEM objective: roll the model out, decode each step's pose, score it against the goal's."""

    differentiable = False
    batch_size = 1

    def __init__(self, model: Any, reader: PoseReader, z_ctx: Tensor, goal: Tensor, cost: str):
        self.model, self.reader, self.cost = model, reader, cost
        self.z_ctx, self.goal = z_ctx, goal  # (1, k', D), (5,)
        self.device = z_ctx.device
        self._ctx: dict[int, Tensor] = {}

    def __call__(self, actions: Tensor) -> Tensor:
        B, N = actions.shape[:2]
        if N not in self._ctx:
            self._ctx[N] = repeat(self.z_ctx, "b k d -> (b n) k d", n=N).contiguous()
        flat = rearrange(actions, "b n h a -> (b n) h a").to(self.z_ctx.dtype)
        z = self.model.rollout(self._ctx[N], flat)  # (N, H, D)
        pose = self.reader(z)  # (N, H, 5) fp32
        step = pose_cost(pose, self.goal, self.cost)  # (N, H)
        return reduce_horizon(step[None], "sum")  # (1, N)


class PoseFactory:
    """Objective factory: encodes context and goal frames as ``LatentGoalFactory`` does."""

    def __init__(self, model: Any, reader: PoseReader, cost: str, proprio: tuple[int, ...]):
        self.latent = LatentGoalFactory(model, proprio=proprio)
        self.model, self.reader, self.cost = model, reader, cost

    def __call__(self, ctx: PlanContext) -> PoseObjective:
        base = self.latent(ctx)  # encodes context + goal in one batch
        goal = self.reader(base.z_goal[0])  # (5,)
        return PoseObjective(self.model, self.reader, base.z_context, goal, self.cost)


# ---------------------------------------------------------------------------------- the checks
def encode_frames(model: Any, frames: np.ndarray, states: np.ndarray, proprio: tuple) -> Tensor:
    obs = torch.from_numpy(rearrange(frames, "t h w c -> t c h w").copy())
    if not proprio:
        return model.encode(obs)
    return model.encode(obs, torch.from_numpy(states[:, list(proprio)]).float())


def open_loop(model: Any, reader: PoseReader, env: Any, pairs: list, proprio: tuple) -> dict:
    """Per block 1..H: median pose errors of the rollout, the read-out and the copy baseline."""
    F = model.frameskip
    rows: dict[str, list[np.ndarray]] = {"rollout": [], "readout": [], "copy": []}
    for pair in pairs:
        acts, states = pair["expert_actions"], pair["expert_states"]
        H = len(acts) // F
        blocks = torch.from_numpy(
            rearrange(acts[: H * F], "(h f) a -> 1 h (f a)", f=F).astype(np.float32)
        )
        at = states[np.arange(H + 1) * F]  # (H+1, S) states at block boundaries
        frames = np.stack([env.render_state(s) for s in at])
        z = encode_frames(model, frames, at, proprio)  # (H+1, D)
        pred = model.rollout(z[None, :1], blocks)[0]  # (H, D)
        true = torch.from_numpy(at[1:][:, [0, 1, 4, 5, 6]]).float()
        start = torch.from_numpy(at[:1][:, [0, 1, 4, 5, 6]]).float().expand_as(true)
        for name, pose in (("rollout", reader(pred)), ("readout", reader(z[1:])), ("copy", start)):
            m = pose_margins(pose, true) * torch.tensor([P.POS_TOL, P.POS_TOL, P.ANGLE_TOL_DEG])
            rows[name].append(m.numpy())  # (H, 3): pusher units, T units, T degrees
    out = {}
    for name, values in rows.items():
        med = np.median(np.stack(values), axis=0)  # (H, 3)
        out[name] = {
            k: [round(float(v), 2) for v in med[:, j]]
            for j, k in enumerate(("pusher", "block", "angle_deg"))
        }
    return out


def closed_loop(
    model: Any, reader: PoseReader, pairs: list, cost: str, cfg: EvalConfig, proprio: tuple
) -> dict:
    env = make("pusht", size=model.image_size)
    low, high = float(env.action_space.low.min()), float(env.action_space.high.max())
    p = cfg.planning
    planner = CEM(
        CEMConfig(
            samples=p.samples,
            iterations=p.iterations,
            elites=p.elites,
            horizon=p.horizon,
            seed=cfg.seed,
            action_low=low,
            action_high=high,
        ),
        model.action_dim,
    )
    factory: Any = (
        LatentGoalFactory(model, proprio=proprio)
        if cost == "latent"
        else PoseFactory(model, reader, cost, proprio)
    )
    mpc = MPCConfig(budget=cfg.budget, frameskip=model.frameskip, history=model.history)
    rules = {"published": env.published_success}
    _, autocast = planning_autocast(model, cfg.precision)
    ours = published = 0
    ms: list[float] = []
    for i, pair in enumerate(pairs):
        env.reset(seed=pair["seed"], options={"state": pair["start"], "goal": pair["goal"]})
        planner.reseed(cfg.seed * 100_003 + i)  # as reverie eval seeds each episode
        with torch.inference_mode(), autocast:
            result = run_episode(env, planner, factory, pair["goal"], mpc, rules=rules)
        ours += result.success
        published += result.rule_steps["published"] is not None
        ms += result.plan_ms
    n = len(pairs)
    return {
        "success_rate": round(100.0 * ours / n, 2),
        "ci95": wilson(ours, n),
        "published_success_rate": round(100.0 * published / n, 2),
        "plan_ms_median": round(float(np.median(ms)), 1),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="a --state-aux Push-T run")
    p.add_argument("--episodes", type=int, default=50, help="held-out pairs (reverie eval's)")
    p.add_argument("--seed", type=int, default=0, help="pair seed (reverie eval --seed)")
    p.add_argument("--costs", default=",".join(COSTS), help=f"closed-loop rows from {COSTS}")
    p.add_argument("--samples", type=int, default=300, help="CEM candidates (reverie eval's)")
    p.add_argument("--iterations", type=int, default=30, help="CEM refits per replan")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="JSON (default CHECKPOINT/decoded_pose.json)")
    args = p.parse_args(argv)
    costs = [c for c in args.costs.split(",") if c]
    bad = [c for c in costs if c not in COSTS]
    if bad or min(args.episodes, args.threads, args.samples, args.iterations) < 1:
        p.error(
            f"--costs from {COSTS} (got {bad}); --episodes --threads --samples --iterations >= 1"
        )
    torch.set_num_threads(args.threads)
    print(machine_line(), flush=True)
    try:
        model, meta = load_checkpoint(args.checkpoint)
        if meta.get("env") != "pusht":
            raise ReverieError(f"{args.checkpoint} is a {meta.get('env')} model: Push-T only")
        model.eval()
        reader = PoseReader(args.checkpoint, model, "pusht")
    except (ReverieError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    search = PlannerOptions(args.samples, args.iterations, min(30, args.samples))
    cfg = EvalConfig(
        checkpoint=args.checkpoint, episodes=args.episodes, seed=args.seed, planning=search
    )
    env = make("pusht", size=model.image_size)
    proprio = proprio_for(model, env)
    pairs, _ = make_pairs(env, cfg.episodes, cfg.seed, cfg.goal_steps)
    t0 = time.perf_counter()
    with torch.inference_mode():
        loop = open_loop(model, reader, env, pairs, proprio)
    print(
        f"open loop: the expert's {len(loop['rollout']['block'])} blocks, median error "
        f"over {len(pairs)} pairs (pusher units / T units / T degrees) per block"
    )
    for name, row in loop.items():
        cells = "  ".join(
            f"{a:6.1f}/{b:5.1f}/{c:5.1f}"
            for a, b, c in zip(row["pusher"], row["block"], row["angle_deg"], strict=True)
        )
        print(f"  {name:8s} {cells}")
    result: dict[str, Any] = {"checkpoint": str(args.checkpoint), "open_loop": loop, "rows": {}}
    print("| cost on | success (ours) | 95% CI | published rule | CEM ms |")
    print("|---|---|---|---|---|")
    for cost in costs:
        row = closed_loop(model, reader, pairs, cost, cfg, proprio)
        result["rows"][cost] = row
        lo, hi = row["ci95"]
        print(
            f"| {cost} | {row['success_rate']:.0f}% | [{lo:.0f}, {hi:.0f}] | "
            f"{row['published_success_rate']:.0f}% | {row['plan_ms_median']:.0f} |",
            flush=True,
        )
    result["machine"] = machine_line()
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    out = args.out or args.checkpoint / "decoded_pose.json"
    atomic_write_json(out, result)
    print(f"wrote {out} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
