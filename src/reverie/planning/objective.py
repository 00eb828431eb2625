"""Planning seams: the ``Objective`` and ``Planner`` protocols and the two goal costs.

An objective scores a batch of candidate action sequences for ``B`` independent problems:
``objective(actions (B, N, H, A')) -> costs (B, N)``, lower is better. Planners (``cem.py``,
``mppi.py``, ``gradient.py``) only ever call it, so the same planner searches a world model's
latent space or the true simulator.

    z_ctx = model.encode(frames)[None]            # (1, k', D): current frame and its history
    z_goal = model.encode(goal_frame)[None]       # (1, D)
    objective = LatentGoalObjective(model, z_ctx, z_goal)          # summed over the horizon
    actions, info = CEM(CEMConfig(), model.action_dim).plan(objective)   # (1, H, A')

Costs are *squared* L2 distances between embeddings (``sq_l2``, the same quantity the predictor is
trained to shrink; ``l2`` is available), summed over every horizon step by default. Summing rewards
sequences that get close early and stay close, which keeps CEM from plans that park against a wall
and lunge at the end (measured on Two-Room: 58% success with the final-step cost, 100% summed).
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from einops import rearrange, repeat
from torch import Tensor

REDUCTIONS = ("sum", "final", "sum+final")
DISTANCES = ("sq_l2", "l2")
#: What the oracle scores each true state by (``StateGoalObjective(cost=...)``):
#: ``distance`` the env's ``goal_distance``; ``tolerance`` the sum of the success test's errors,
#: each over its tolerance (``env.success_margin``); ``margin`` the largest of them (<= 1 exactly
#: where the success test passes) plus a 0.1 × sum tie-break, so progress on every error counts;
#: ``reach`` is ``margin`` over what is pushed plus 0.5 × ``env.approach_margin`` (how far the
#: pusher is from pushing, for envs whose cost is flat until contact: Push-T, Tabletop); the
#: pusher's own goal error (``env.pusher_margins``: Push-T's) counts in the tie-break sum only.
#: An env with several objects (``env.approach_margins``: Tabletop) places them one at a time
#: instead (``_staged_reach``).
ORACLE_COSTS = ("distance", "tolerance", "margin", "reach")
MARGIN_TIE_BREAK = 0.1
REACH_WEIGHT = 0.5
#: ``reach`` over several objects: the cost of each object still to place, above the most one
#: object's margin plus approach can add on the 0.8 m table (28 + 0.5 x 34 tolerances).
STAGE_COST = 50.0


@runtime_checkable
class Objective(Protocol):
    """``__call__(actions (B, N, H, A')) -> costs (B, N)``; ``batch_size`` is B.

    Optional attributes planners honour: ``device`` (where candidates are sampled; CPU if absent)
    and ``differentiable`` (``True`` when costs carry gradients to the actions).
    """

    batch_size: int

    def __call__(self, actions: Tensor) -> Tensor: ...


class Planner(Protocol):
    """``plan(objective, init_mean (B, H, A') | None) -> (actions (B, H, A'), info)``."""

    horizon: int
    action_dim: int

    def plan(
        self, objective: Objective, init_mean: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Any]]: ...


def _check_reduce(reduce: str) -> None:
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")


def state_cost(env: Any, state: np.ndarray, goal: np.ndarray, cost: str) -> float:
    """One true state's oracle cost (see ``ORACLE_COSTS``); lower is better, 0 at the goal."""
    if cost == "distance":
        return float(env.goal_distance(state, goal))
    m = np.asarray(env.success_margin(state, goal), np.float64)
    if cost == "tolerance":
        return float(m.sum())
    if cost == "margin":
        return float(m.max() + MARGIN_TIE_BREAK * m.sum())
    if hasattr(env, "approach_margins"):  # several objects (Tabletop): one at a time
        return _staged_reach(m, np.asarray(env.approach_margins(state, goal), np.float64))
    # reach: the pusher's own goal error (Push-T's entry 0) stays out of the max, so walking to
    # where it can push is never traded for walking to where it should end; it still counts in
    # the tie-break sum, which is all that is left once the objects are placed.
    placed = np.delete(m, getattr(env, "pusher_margins", ()))
    margin = float(placed.max() + MARGIN_TIE_BREAK * m.sum())
    return margin + REACH_WEIGHT * float(env.approach_margin(state, goal))


def _staged_reach(margins: np.ndarray, approach: np.ndarray) -> float:
    """``reach`` for several objects, placed one at a time: ``STAGE_COST`` per object still out
    of tolerance, plus every object's margin (so shoving one object away to reach another
    costs), plus ``REACH_WEIGHT`` x the pusher's distance to the spot behind the nearest object
    still to place that is on the table (``approach`` is inf for one that fell off).

    The single-object form (the largest margin plus the approach to the worst object) jumps up
    when the worst object changes, so the search refused to finish the first one (Tabletop
    oracle 84% on 50 pairs, every failure still at its start or stopped part way). Here placing
    an object always lowers the cost (by ``STAGE_COST``, more than any approach adds), the min
    is continuous while the pusher chooses which object to work on, and knocking an object off
    the table never pays (it stays counted)."""
    todo = margins > 1.0
    base = STAGE_COST * float(todo.sum()) + float(margins.sum())
    pushable = todo & np.isfinite(approach)
    if not pushable.any():
        return base
    return base + REACH_WEIGHT * float(approach[pushable].min())


def reduce_horizon(step_costs: Tensor, reduce: str) -> Tensor:
    """(B, N, H) per-step costs -> (B, N): summed over the horizon (``sum``), the final step only
    (``final``), or the sum plus a terminal term weighted by H (``sum+final``)."""
    if reduce == "sum":
        return step_costs.sum(-1)
    if reduce == "final":
        return step_costs[..., -1]
    return step_costs.sum(-1) + step_costs.shape[-1] * step_costs[..., -1]


class LatentGoalObjective:
    """Distance from a world model's predicted embeddings to a goal embedding.

    ``model`` follows the WorldModel API (``rollout(z_context (B, k', D), actions (B, H, A'))``
    -> ``(B, H, D)``, ``action_dim``). The B problems' contexts are repeated N times and rolled out
    as one ``(B*N)`` batch. With ``differentiable=False`` (CEM, MPPI) the rollout runs under
    ``torch.inference_mode``; the gradient planner needs ``differentiable=True``.
    """

    def __init__(
        self,
        model: Any,
        z_context: Tensor,
        z_goal: Tensor,
        reduce: str = "sum",
        distance: str = "sq_l2",
        differentiable: bool = False,
    ) -> None:
        _check_reduce(reduce)
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        if z_context.dim() != 3 or z_context.shape[1] < 1:
            shape = tuple(z_context.shape)
            raise ValueError(f"z_context must be (B, k', D) with k' >= 1, got {shape}")
        B, _, D = z_context.shape
        if tuple(z_goal.shape) != (B, D):
            raise ValueError(f"z_goal must be (B, D) = ({B}, {D}), got {tuple(z_goal.shape)}")
        self.model = model
        # Clone outside inference mode: inference tensors (from an encode under inference_mode)
        # cannot be saved for backward, which the differentiable rollout needs.
        self.z_context = z_context.detach().clone()  # (B, k', D)
        self.z_goal = z_goal.detach().clone()  # (B, D)
        self.reduce, self.distance, self.differentiable = reduce, distance, differentiable
        self.batch_size = B
        self.device = z_context.device
        self._contexts: dict[int, Tensor] = {}  # N -> (B*N, k', D), reused across iterations

    def _context(self, N: int) -> Tensor:
        if N not in self._contexts:
            self._contexts[N] = repeat(self.z_context, "b k d -> (b n) k d", n=N).contiguous()
        return self._contexts[N]

    def step_costs(self, actions: Tensor) -> Tensor:
        """(B, N, H, A') -> per-step distances (B, N, H)."""
        B, N, _, A = actions.shape
        if self.batch_size != B:
            raise ValueError(f"actions batch {B} != objective batch {self.batch_size}")
        if self.model.action_dim != A:
            raise ValueError(f"action size {A} != model action_dim {self.model.action_dim}")
        mode = contextlib.nullcontext() if self.differentiable else torch.inference_mode()
        with mode:
            flat = rearrange(actions, "b n h a -> (b n) h a")
            z = self.model.rollout(self._context(N), flat.to(self.z_context.dtype))  # (B*N, H, D)
            # Distances in fp32 even under bf16 autocast: candidates differ by small margins.
            z = rearrange(z.float(), "(b n) h d -> b n h d", b=B)
            sq = (z - self.z_goal.float()[:, None, None, :]).pow(2).sum(-1)  # (B, N, H)
            return sq if self.distance == "sq_l2" else sq.clamp_min(1e-12).sqrt()

    def __call__(self, actions: Tensor) -> Tensor:
        """(B, N, H, A') -> costs (B, N)."""
        return reduce_horizon(self.step_costs(actions), self.reduce)


class StateGoalObjective:
    """The oracle cost: the same shape, scored by the true simulator in true-state space.

    For each candidate the env is put into ``start_state``; each planned action of size
    ``A' = A * frameskip`` is split into ``frameskip`` raw actions executed in order (the dataset's
    concatenation order) through the physics hook ``_step_world`` (no rendering), and
    ``env.goal_distance(state, goal_state)`` (``cost="distance"``; or a tolerance-scaled cost,
    see ``ORACLE_COSTS``) is taken after every planned step, summed over the horizon
    (``reduce="sum"``) or final-only. The env's state is restored afterwards, so the env that acts
    in the episode can also be the one that plans. One problem only (B = 1).
    """

    differentiable = False
    batch_size = 1

    def __init__(
        self,
        env: Any,
        start_state: np.ndarray,
        goal_state: np.ndarray,
        frameskip: int = 1,
        reduce: str = "sum",
        cost: str = "distance",
    ) -> None:
        _check_reduce(reduce)
        if frameskip < 1:
            raise ValueError(f"frameskip must be >= 1, got {frameskip}")
        if cost not in ORACLE_COSTS:
            raise ValueError(f"oracle cost must be one of {ORACLE_COSTS}, got {cost!r}")
        self.env, self.cost = env, cost
        self.start_state = np.asarray(start_state, np.float64).copy()
        self.goal_state = np.asarray(goal_state, np.float64).copy()
        self.frameskip, self.reduce = frameskip, reduce
        self.raw_action_dim = int(np.prod(env.action_space.shape))
        self.action_dim = self.raw_action_dim * frameskip
        self._low = np.asarray(env.action_space.low, np.float64)
        self._high = np.asarray(env.action_space.high, np.float64)

    def __call__(self, actions: Tensor) -> Tensor:
        """(1, N, H, A') -> costs (1, N)."""
        B, N, H, A = actions.shape
        if B != 1:
            raise ValueError(f"StateGoalObjective plans one problem (B = 1), got B = {B}")
        if self.action_dim != A:
            raise ValueError(
                f"action size {A} != raw action size {self.raw_action_dim} x frameskip "
                f"{self.frameskip}"
            )
        raw = rearrange(
            actions[0].detach().cpu().double(), "n h (f a) -> n h f a", f=self.frameskip
        )
        raw = np.clip(raw.numpy(), self._low, self._high)  # what env.step would execute
        env, goal = self.env, self.goal_state
        vectorised = hasattr(env, "batch_step_world") and hasattr(env, "batch_goal_distance")
        if vectorised and self.cost == "distance":
            # Vectorised physics (Two-Room): all N candidates advance together, exactly as the
            # env's own step would move each of them.
            states = np.repeat(self.start_state[None], N, axis=0)  # (N, S)
            batch_costs = np.empty((N, H))
            for h in range(H):
                for f in range(self.frameskip):
                    states = env.batch_step_world(states, raw[:, h, f])
                batch_costs[:, h] = env.batch_goal_distance(states, goal)
            return reduce_horizon(torch.from_numpy(batch_costs), self.reduce)[None].float()
        saved = env.get_state()
        step_costs = np.empty((N, H))
        try:
            for n in range(N):
                env.set_state(self.start_state)
                for h in range(H):
                    for f in range(self.frameskip):
                        env._step_world(raw[n, h, f])
                    step_costs[n, h] = state_cost(env, env.get_state(), goal, self.cost)
        finally:
            env.set_state(saved)
        costs = reduce_horizon(torch.from_numpy(step_costs), self.reduce)  # (N,)
        return costs[None].float()  # (1, N)


# ----------------------------------------------------------------------- shared planner helpers
def check_bounds(low: float, high: float) -> None:
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"action bounds must be finite with low < high, got [{low}, {high}]")


def start_mean(
    objective: Objective,
    init_mean: Tensor | None,
    horizon: int,
    action_dim: int,
    low: float,
    high: float,
) -> Tensor:
    """The search's start (B, H, A'): the warm start clipped to the bounds, else their centre."""
    device = getattr(objective, "device", torch.device("cpu"))
    B = int(getattr(objective, "batch_size", 1))
    if init_mean is None:
        return torch.full((B, horizon, action_dim), (low + high) / 2, device=device)
    if tuple(init_mean.shape) != (B, horizon, action_dim):
        raise ValueError(
            f"init_mean must be (B, H, A') = ({B}, {horizon}, {action_dim}), "
            f"got {tuple(init_mean.shape)}"
        )
    return init_mean.detach().to(device=device, dtype=torch.float32).clamp(low, high).clone()


class SeededGenerators:
    """One ``torch.Generator`` per device, all from one seed: planners never touch global RNG."""

    def __init__(self, seed: int) -> None:
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.seed = int(seed)
        self._gens: dict[str, torch.Generator] = {}

    def __call__(self, device: torch.device | str) -> torch.Generator:
        key = str(torch.device(device))
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=key).manual_seed(self.seed)
        return self._gens[key]


class SeededPlanner:
    """Plumbing shared by the sampling planners: config, sizes, seeded generators per device."""

    def __init__(self, config: Any, action_dim: int) -> None:
        if action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        self.config, self.action_dim, self.horizon = config, action_dim, config.horizon
        self.generators = SeededGenerators(config.seed)

    def reseed(self, seed: int) -> None:
        """Restart the planner's random stream (evaluation reseeds per episode)."""
        self.generators.reseed(seed)
