"""Receding-horizon control (MPC) in a real Reverie env: plan, execute a block, replan.

Each replan asks an *objective factory* for an objective built from what the agent knows now (the
frames at the last block boundaries and, for the oracle, the true state), plans H model steps,
executes the first ``execute_blocks`` blocks (each block = ``frameskip`` raw env actions, one
``env.step`` each) and checks the env's own success test on the true state after every env step.
The same loop runs a world model (``LatentGoalFactory``) and the oracle (``OracleFactory``).

    env.reset(seed=s, options={"state": start, "goal": goal})
    factory = LatentGoalFactory(model)                       # or OracleFactory(planning_env, 5)
    result = run_episode(env, CEM(CEMConfig(), model.action_dim), factory, goal, MPCConfig())
    result.success, result.steps, result.plan_ms
    for event in episode_steps(env, planner, factory, goal, MPCConfig()):   # the same, streamed
        ...                                     # ReplanEvent per plan, StepEvent per env step
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from reverie.io import ReverieError
from reverie.planning.objective import (
    ORACLE_COSTS,
    LatentGoalObjective,
    Objective,
    Planner,
    StateGoalObjective,
    check_bounds,
)

WARM_STARTS = ("shift", "none")


@dataclass(frozen=True)
class MPCConfig:
    """Settings of the receding-horizon loop."""

    budget: int = 50
    """Env steps allowed per episode; success at any step within it counts."""
    frameskip: int = 5
    """Raw env actions per planned action (the model's action block)."""
    execute_blocks: int = 1
    """Planned blocks executed before replanning (<= the planner's horizon)."""
    history: int = 1
    """Frames (at block boundaries, newest last) handed to the objective factory as context."""
    warm_start: str = "shift"
    """``shift``: start each search from the previous plan moved forward by the executed blocks
    (last block repeated); ``none``: start from the bounds' centre."""
    record_frames: bool = False
    """Keep every observed frame (for videos) and executed raw action; costs memory (50 × 12 KB
    at 64 px)."""

    def __post_init__(self) -> None:
        for name in ("budget", "frameskip", "execute_blocks", "history"):
            if getattr(self, name) < 1:
                raise ValueError(f"MPC {name} must be >= 1, got {getattr(self, name)}")
        if self.warm_start not in WARM_STARTS:
            raise ValueError(f"warm_start must be one of {WARM_STARTS}, got {self.warm_start!r}")


@dataclass
class PlanContext:
    """What an objective factory may use at a replan."""

    frames: list[np.ndarray]  # uint8 (Hi, Wi, 3) at the last block boundaries, oldest first
    state: np.ndarray  # the true current state (only the oracle should look at it)
    goal_state: np.ndarray
    goal_frame: np.ndarray  # uint8 (Hi, Wi, 3)
    step: int  # env steps taken so far
    # True states at the same block boundaries as ``frames``: a proprio model reads the agent's
    # own entries of them (``LatentGoalFactory(proprio=...)``), nothing else may.
    states: list[np.ndarray] = field(default_factory=list)


class ObjectiveFactory(Protocol):
    def __call__(self, ctx: PlanContext) -> Objective: ...


@dataclass
class EpisodeResult:
    """One closed-loop episode. ``frames`` (if recorded) start with the initial observation."""

    success: bool
    steps: int  # env steps taken (up to the first success, or until every extra rule held too)
    plan_ms: list[float]  # wall time per replan, objective construction (encoding) included
    plan_cost: list[float | None]  # the planner's final best cost per replan (None: not reported)
    final_distance: float  # env.goal_distance at the end
    min_distance: float  # closest the agent came to the goal
    replans: int
    frames: list[np.ndarray] | None = field(default=None, repr=False)
    actions: list[np.ndarray] | None = field(default=None, repr=False)  # raw, one per env step
    # Extra success rules (``rules=``): the first env step each held (0: at the start; None:
    # never), latched like the env's own test.
    rule_steps: dict[str, int | None] = field(default_factory=dict)
    success_step: int | None = None  # the first env step the env's own test held (None: never)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready record (no frames, no actions)."""
        out = asdict(self)
        out.pop("frames")
        out.pop("actions")
        return out


def shift_plan(plan: Tensor, blocks: int, fill: str = "repeat") -> Tensor:
    """(B, H, A') plan -> the plan ``blocks`` steps later; the tail repeats the last step (or 0)."""
    if fill not in ("repeat", "zero"):
        raise ValueError(f"fill must be 'repeat' or 'zero', got {fill!r}")
    H = plan.shape[1]
    blocks = min(blocks, H)
    tail = plan[:, -1:].expand(-1, blocks, -1) if fill == "repeat" else plan[:, :blocks] * 0
    return torch.cat([plan[:, blocks:], tail], dim=1)


class LatentGoalFactory:
    """Objectives from a world model: encodes the context frames and the goal frame (one batch).

    Puts ``model`` in eval mode (BatchNorm must use its running statistics, not the statistics of
    the handful of frames encoded here). Use ``differentiable=True`` with the gradient planner.
    """

    def __init__(
        self,
        model: Any,
        reduce: str = "sum",
        distance: str = "sq_l2",
        differentiable: bool = False,
        proprio: Sequence[int] = (),
    ) -> None:
        if hasattr(model, "eval"):
            model.eval()
        self.model, self.reduce, self.distance = model, reduce, distance
        self.differentiable = differentiable
        self.proprio = list(proprio)  # state entries a proprio model senses (proprio_indices)
        if bool(getattr(model, "proprio_dim", 0)) != bool(self.proprio):
            raise ValueError(
                "a proprio world model needs proprio= (see proprio_indices), a pixels-only one none"
            )

    def __call__(self, ctx: PlanContext) -> LatentGoalObjective:
        frames = np.stack([*ctx.frames, ctx.goal_frame])  # (k'+1, Hi, Wi, 3)
        obs = torch.from_numpy(rearrange(frames, "t h w c -> t c h w").copy())
        proprio = None
        if self.proprio:
            if ctx.goal_state is None or len(ctx.states) != len(ctx.frames):
                raise ValueError(
                    "a proprio world model plans toward a goal state (its pusher's position), "
                    "not a goal image alone"
                )
            states = np.stack([*ctx.states, ctx.goal_state])[:, self.proprio]  # (k'+1, P)
            proprio = torch.from_numpy(states).float()
        params = getattr(self.model, "parameters", None)
        param = next(params(), None) if params is not None else None
        if param is not None:
            obs = obs.to(param.device)
        # Encoding needs no gradients even for the gradient planner (only actions are optimised).
        with torch.inference_mode():
            z = self.model.encode(obs) if proprio is None else self.model.encode(obs, proprio)
        return LatentGoalObjective(
            self.model,
            z[None, :-1],
            z[None, -1],
            reduce=self.reduce,
            distance=self.distance,
            differentiable=self.differentiable,
        )


def proprio_for(model: Any, env: Any) -> tuple[int, ...]:
    """The state entries of ``env`` a proprio world model senses (() for a pixels-only one);
    refuses an env without the proprioception the model was trained with, in one line."""
    P = int(getattr(model, "proprio_dim", 0))
    if not P:
        return ()
    indices = tuple(env.proprio_indices(len(env.get_state())))
    if len(indices) != P:
        name = getattr(env, "short_name", type(env).__name__)
        raise ReverieError(
            f"this world model was trained with proprioception ({P} numbers) and {name} "
            f"senses {len(indices) or 'none'}: use a pixels-only checkpoint for {name}"
        )
    return indices


class OracleFactory:
    """Objectives scored by the true simulator from the current true state (the oracle baseline).

    ``env`` may be the acting env (the objective restores its state) or a twin with the same
    factors; it must share the acting env's physics.
    """

    def __init__(
        self, env: Any, frameskip: int, reduce: str = "sum", cost: str = "distance"
    ) -> None:
        if cost not in ORACLE_COSTS:
            raise ValueError(f"oracle cost must be one of {ORACLE_COSTS}, got {cost!r}")
        self.env, self.frameskip, self.reduce, self.cost = env, frameskip, reduce, cost

    def __call__(self, ctx: PlanContext) -> StateGoalObjective:
        return StateGoalObjective(
            self.env, ctx.state, ctx.goal_state, self.frameskip, self.reduce, cost=self.cost
        )


class RandomPlanner:
    """Baseline: uniform random action blocks, ignoring the objective (seeded, pure)."""

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        action_low: float = -1.0,
        action_high: float = 1.0,
        seed: int = 0,
    ) -> None:
        check_bounds(action_low, action_high)
        self.horizon, self.action_dim = horizon, action_dim
        self.low, self.high = action_low, action_high
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.gen = torch.Generator().manual_seed(int(seed))

    def plan(
        self, objective: Objective, init_mean: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        B = int(getattr(objective, "batch_size", 1))
        u = torch.rand((B, self.horizon, self.action_dim), generator=self.gen)
        return self.low + (self.high - self.low) * u, {}


@dataclass
class ReplanEvent:
    """``episode_steps`` planned: what the planner chose and what it thought of it."""

    replan: int  # 1 for the first plan of the episode
    step: int  # env steps taken before this plan
    plan: Tensor  # (1, H, A'), detached
    info: dict[str, Any]  # the planner's own report
    plan_ms: float  # objective construction (encoding) + search
    cost: float | None  # the planner's final best cost (None: not reported)


@dataclass
class StepEvent:
    """``episode_steps`` took one env step (success is tested on the true state every step)."""

    step: int  # env steps taken so far, this one included
    obs: np.ndarray  # uint8 (Hi, Wi, 3) after the step
    state: np.ndarray  # the true state after the step
    action: np.ndarray  # the raw action taken
    block: int  # index of the executing block within the latest plan
    block_end: bool  # the block's last step: it completed, or the episode ends inside it
    success: bool
    distance: float  # NaN without a goal state


def episode_steps(
    env: Any,
    planner: Planner,
    make_objective: ObjectiveFactory,
    goal_state: np.ndarray | None,
    config: MPCConfig = MPCConfig(),
    goal_frame: np.ndarray | None = None,
    rules: dict[str, Callable[[np.ndarray, np.ndarray], bool]] | None = None,
) -> Generator[ReplanEvent | StepEvent, None, EpisodeResult]:
    """The closed loop as a stream: a ``ReplanEvent`` per plan, a ``StepEvent`` per env step.

    The one receding-horizon loop: ``run_episode`` drains it, the viewer draws its events as they
    come. Returns the ``EpisodeResult`` (``StopIteration.value``). A consumer may look at the env
    between events but must not step it. See ``run_episode`` for the arguments.
    """
    rules = dict(rules or {})
    if rules and goal_state is None:
        raise ValueError("extra success rules need a goal_state")
    if goal_state is None:
        if goal_frame is None:
            raise ValueError("run_episode needs a goal_state or a goal_frame")
    else:
        goal_state = np.asarray(goal_state, np.float64)
    raw_dim = int(np.prod(env.action_space.shape))
    if planner.action_dim != raw_dim * config.frameskip:
        raise ValueError(
            f"planner action_dim {planner.action_dim} != env action size {raw_dim} x frameskip "
            f"{config.frameskip}"
        )
    if config.execute_blocks > planner.horizon:
        raise ValueError(
            f"execute_blocks {config.execute_blocks} > planner horizon {planner.horizon}"
        )

    def measure(state: np.ndarray) -> tuple[float, bool]:
        if goal_state is None:
            return float("nan"), False
        return float(env.goal_distance(state, goal_state)), bool(env.is_success(state, goal_state))

    if goal_state is not None:
        env.set_goal(goal_state)
    if goal_frame is None:
        goal_frame = env.render_state(goal_state)
    obs = env.render()
    state = env.get_state()
    history: deque[np.ndarray] = deque([obs], maxlen=config.history)
    state_history: deque[np.ndarray] = deque([state], maxlen=config.history)
    frames = [obs] if config.record_frames else None
    actions: list[np.ndarray] | None = [] if config.record_frames else None
    rule_steps: dict[str, int | None] = {name: None for name in rules}

    def latch(state: np.ndarray, step: int) -> bool:
        """Record the rules that hold now; True once every rule has held at some step."""
        for name, rule in rules.items():
            if rule_steps[name] is None and rule(state, goal_state):
                rule_steps[name] = step
        return all(s is not None for s in rule_steps.values())

    distance, success = measure(state)
    settled = latch(state, 0)
    success_step: int | None = 0 if success else None
    min_distance, steps = distance, 0
    plan_ms: list[float] = []
    plan_cost: list[float | None] = []
    previous: Tensor | None = None
    # Run until the env's test and every extra rule have each held once (success is latched).
    while not (success and settled) and steps < config.budget:
        # Step 1. plan from what is known now, warm-started from the shifted previous plan.
        init = None
        if previous is not None and config.warm_start == "shift":
            init = shift_plan(previous, config.execute_blocks)
        ctx = PlanContext(
            list(history), state, goal_state, goal_frame, steps, states=list(state_history)
        )
        t0 = time.perf_counter()
        objective = make_objective(ctx)
        plan, info = planner.plan(objective, init_mean=init)  # (1, H, A')
        plan_ms.append((time.perf_counter() - t0) * 1000)
        plan_cost.append(float(info["best_cost"][-1]) if info.get("best_cost") else None)
        previous = plan.detach()
        yield ReplanEvent(len(plan_ms), steps, previous, info, plan_ms[-1], plan_cost[-1])
        # Step 2. execute the first blocks, one raw action per env step, testing success each step.
        blocks = rearrange(
            plan[0, : config.execute_blocks].detach().cpu().double(),
            "h (f a) -> h f a",
            f=config.frameskip,
        ).numpy()
        for b, block in enumerate(blocks):
            for j, raw in enumerate(block):
                obs, _, _, _, info = env.step(raw)
                steps += 1
                state = info["state"]
                distance, now = measure(state)
                if now and not success:
                    success_step = steps
                success = success or now
                settled = latch(state, steps)
                min_distance = min(min_distance, distance)  # NaN stays NaN without a goal state
                if frames is not None:
                    frames.append(obs)
                if actions is not None:
                    actions.append(np.asarray(raw, np.float32))
                done = (success and settled) or steps >= config.budget
                end = done or j == len(block) - 1
                yield StepEvent(steps, obs, state, raw, b, end, success, distance)
                if done:
                    break
            # Step 3. the frame at each block boundary joins the context history.
            history.append(obs)
            state_history.append(state)
            if (success and settled) or steps >= config.budget:
                break
    return EpisodeResult(
        success=success,
        steps=steps,
        plan_ms=plan_ms,
        plan_cost=plan_cost,
        final_distance=float(distance),
        min_distance=float(min_distance),
        replans=len(plan_ms),
        frames=frames,
        actions=actions,
        rule_steps=rule_steps,
        success_step=success_step,
    )


def run_episode(
    env: Any,
    planner: Planner,
    make_objective: ObjectiveFactory,
    goal_state: np.ndarray | None,
    config: MPCConfig = MPCConfig(),
    goal_frame: np.ndarray | None = None,
    rules: dict[str, Callable[[np.ndarray, np.ndarray], bool]] | None = None,
) -> EpisodeResult:
    """Run one closed-loop episode from the env's *current* state (the caller resets it).

    Sets ``env``'s goal to ``goal_state`` (so ``info`` agrees), renders the goal frame if none is
    given, and replans every ``execute_blocks * frameskip`` env steps until success or the budget.
    ``goal_state=None`` plans toward ``goal_frame`` alone (a goal image from outside the simulator):
    nothing can test success then, so the episode runs the whole budget and distances are NaN.
    ``rules`` (name -> ``rule(state, goal_state)``) are extra success tests scored on the same
    rollout (Push-T's published rule): each is latched at the first step it holds, and the
    episode runs on past the env's own success until every rule has held (or the budget ends),
    so a stricter rule is not cut short. ``result.rule_steps`` says when each held.
    """
    events = episode_steps(env, planner, make_objective, goal_state, config, goal_frame, rules)
    while True:
        try:
            next(events)
        except StopIteration as stop:
            return stop.value
