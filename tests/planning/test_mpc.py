"""The receding-horizon loop in real envs: success tested after every env step, budget and replan
bookkeeping, context history and warm starts, the oracle reaching expert goals on every env that
exists, and a pixel-reading world model reaching a goal image on Two-Room.

    .venv/bin/python -m pytest tests/planning/test_mpc.py -q
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from einops import rearrange

from reverie.planning import (
    CEM,
    CEMConfig,
    LatentGoalFactory,
    MPCConfig,
    OracleFactory,
    PlanContext,
    run_episode,
    shift_plan,
)


def has_env(name: str) -> bool:
    return importlib.util.find_spec(f"reverie.envs.{name}") is not None


needs_tworoom = pytest.mark.skipif(not has_env("tworoom"), reason="tworoom env not written yet")


def tworoom():
    from reverie.envs import make

    return make("tworoom")


class FixedPlanner:
    """Always plans the same raw action for every step; records the warm starts it is given."""

    def __init__(self, raw_action: list[float], frameskip: int, horizon: int = 3) -> None:
        self.horizon, self.action_dim = horizon, len(raw_action) * frameskip
        self.plan_value = torch.tensor(raw_action * frameskip).expand(1, horizon, -1).clone()
        self.init_means: list[torch.Tensor | None] = []

    def plan(self, objective, init_mean=None):
        self.init_means.append(init_mean)
        return self.plan_value + 0.01 * len(self.init_means), {}  # differs per replan


class SpyFactory:
    def __init__(self) -> None:
        self.contexts: list[PlanContext] = []

    def __call__(self, ctx: PlanContext):
        self.contexts.append(ctx)
        return None  # FixedPlanner ignores the objective


def test_shift_plan() -> None:
    plan = torch.arange(6.0).reshape(1, 3, 2)  # (B, H, A)
    assert shift_plan(plan, 1).tolist() == [[[2, 3], [4, 5], [4, 5]]]
    assert shift_plan(plan, 2, fill="zero").tolist() == [[[4, 5], [0, 0], [0, 0]]]


@needs_tworoom
def test_success_is_checked_after_every_env_step() -> None:
    env = tworoom()
    start, goal = np.array([40.0, 112.0, 0, 0]), np.array([60.0, 112.0, 0, 0])
    env.reset(seed=0, options={"state": start, "goal": goal})
    # One step at full speed moves 8 units: 12 from the goal, inside the 16-unit success radius,
    # in the middle of the first 5-step block.
    result = run_episode(env, FixedPlanner([1.0, 0.0], 5), SpyFactory(), goal, MPCConfig())
    assert result.success and result.steps == 1 and result.replans == 1
    assert result.min_distance == pytest.approx(12.0, abs=0.01)


@needs_tworoom
def test_extra_rules_are_latched_and_run_past_the_envs_success() -> None:
    env = tworoom()
    start, goal = np.array([40.0, 112.0, 0, 0]), np.array([60.0, 112.0, 0, 0])

    def within(radius: float):
        return lambda s, g: float(np.hypot(*(s[:2] - g[:2]))) < radius

    # 16-unit success after step 1 (12 away); the stricter 5-unit rule holds at step 2 (4 away,
    # 8 units a step), so the loop runs on to it; a rule that never holds runs the budget out.
    env.reset(seed=0, options={"state": start, "goal": goal})
    rules = {"strict": within(5.0)}
    result = run_episode(
        env, FixedPlanner([1.0, 0.0], 5), SpyFactory(), goal, MPCConfig(), rules=rules
    )
    assert result.success and result.success_step == 1
    assert result.rule_steps == {"strict": 2} and result.steps == 2
    env.reset(seed=0, options={"state": start, "goal": goal})
    never = {"never": lambda s, g: False}
    config = MPCConfig(budget=12)
    result = run_episode(env, FixedPlanner([1.0, 0.0], 5), SpyFactory(), goal, config, rules=never)
    assert result.success and result.success_step == 1  # latched: it flew past the goal
    assert result.rule_steps == {"never": None} and result.steps == 12
    assert json.loads(json.dumps(result.to_json()))["rule_steps"] == {"never": None}
    # Without rules the loop still stops at the first success.
    env.reset(seed=0, options={"state": start, "goal": goal})
    plain = run_episode(env, FixedPlanner([1.0, 0.0], 5), SpyFactory(), goal, config)
    assert plain.steps == 1 and plain.rule_steps == {}
    with pytest.raises(ValueError, match="need a goal_state"):
        run_episode(
            env, FixedPlanner([1.0, 0.0], 5), SpyFactory(), None, config, env.render(), rules=never
        )


@needs_tworoom
def test_budget_replans_and_frames() -> None:
    env = tworoom()
    start, goal = np.array([150.0, 112.0, 0, 0]), np.array([200.0, 112.0, 0, 0])
    env.reset(seed=0, options={"state": start, "goal": goal})
    config = MPCConfig(budget=23, frameskip=5, record_frames=True)
    result = run_episode(env, FixedPlanner([-1.0, 0.0], 5), SpyFactory(), goal, config)
    assert not result.success and result.steps == 23
    assert result.replans == 5 and len(result.plan_ms) == 5  # ceil(23 / 5)
    assert len(result.frames) == 24 and result.frames[0].shape == (64, 64, 3)
    assert result.final_distance > result.min_distance == pytest.approx(50.0, abs=0.01)
    record = result.to_json()
    assert "frames" not in record and json.loads(json.dumps(record))["steps"] == 23
    assert record["plan_cost"] == [None] * 5  # FixedPlanner reports no cost
    # Already at the goal: no planning, no steps.
    env.reset(seed=0, options={"state": goal, "goal": goal})
    done = run_episode(env, FixedPlanner([1.0, 0.0], 5), SpyFactory(), goal, config)
    assert done.success and done.steps == 0 and done.replans == 0


@needs_tworoom
def test_context_history_and_warm_start() -> None:
    env = tworoom()
    start, goal = np.array([30.0, 40.0, 0, 0]), np.array([200.0, 200.0, 0, 0])
    env.reset(seed=0, options={"state": start, "goal": goal})
    planner, factory = FixedPlanner([0.5, 0.5], frameskip=2, horizon=3), SpyFactory()
    config = MPCConfig(budget=12, frameskip=2, execute_blocks=2, history=3)
    run_episode(env, planner, factory, goal, config)
    ctxs = factory.contexts
    assert [c.step for c in ctxs] == [0, 4, 8]
    assert [len(c.frames) for c in ctxs] == [1, 3, 3]  # a frame per executed block, at most 3
    for c in ctxs:  # the newest context frame shows the true current state
        assert np.array_equal(c.frames[-1], env.render_state(c.state))
        assert np.array_equal(c.goal_frame, env.render_state(goal))
    assert planner.init_means[0] is None
    previous = planner.plan_value + 0.01  # what the first replan returned
    assert torch.equal(planner.init_means[1], shift_plan(previous, 2))
    cold = MPCConfig(budget=12, frameskip=2, execute_blocks=2, warm_start="none")
    env.reset(seed=0, options={"state": start, "goal": goal})
    planner = FixedPlanner([0.5, 0.5], frameskip=2, horizon=3)
    run_episode(env, planner, SpyFactory(), goal, cold)
    assert all(m is None for m in planner.init_means)


@needs_tworoom
def test_mismatched_planner_raises() -> None:
    env = tworoom()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="frameskip"):
        run_episode(env, FixedPlanner([1.0, 0.0], 3), SpyFactory(), env.goal, MPCConfig())
    with pytest.raises(ValueError, match="execute_blocks"):
        config = MPCConfig(execute_blocks=4)
        run_episode(env, FixedPlanner([1.0, 0.0], 5), SpyFactory(), env.goal, config)
    with pytest.raises(ValueError, match="budget"):
        MPCConfig(budget=0)


# ------------------------------------------------------------------------ closed loop, for real
def expert_pair(env, seed: int, steps: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation protocol's pair: a start and the state the expert reaches from it."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    start = env.get_state()
    for _ in range(steps):
        env.step(env.expert_action(rng))
    return start, env.get_state()


def oracle_episodes(name: str, episodes: int = 3) -> list:
    """Oracle MPC (a small CEM, 64 x 5, on the true simulator) on the first held-out-style pairs."""
    from reverie.envs import make

    env = make(name)
    frameskip, results = 5, []
    raw_dim = int(np.prod(env.action_space.shape))
    low, high = float(env.action_space.low.min()), float(env.action_space.high.max())
    for seed in range(1000, 1020):
        start, goal = expert_pair(env, seed)
        if env.is_success(start, goal):
            continue  # evaluation replaces such pairs too
        env.reset(seed=seed, options={"state": start, "goal": goal})
        config = CEMConfig(
            samples=64, iterations=5, elites=8, seed=seed, action_low=low, action_high=high
        )
        planner = CEM(config, raw_dim * frameskip)
        result = run_episode(
            env, planner, OracleFactory(env, frameskip), goal, MPCConfig(frameskip=frameskip)
        )
        results.append((result, env.goal_distance(start, goal)))
        if len(results) == episodes:
            break
    return results


def env_param(name: str, *marks):
    missing = pytest.mark.skipif(not has_env(name), reason=f"no {name} env yet")
    return pytest.param(name, marks=[missing, *marks])


@pytest.mark.parametrize("name", [env_param("tworoom"), env_param("reacher")])
def test_oracle_mpc_reaches_expert_goals(name: str) -> None:
    results = oracle_episodes(name)
    solved = sum(r.success for r, _ in results)
    assert len(results) == 3 and solved == 3, f"oracle solved {solved}/{len(results)} on {name}"


# Contact-rich envs: the goal distance is flat until the agent touches an object, so a 25-step
# lookahead with a small CEM solves only some pairs (measured: tabletop 1/3 with 64 x 5 and with
# 200 x 8). Demand at least one success; random actions essentially never meet these tests.
PUSHT_GAP = pytest.mark.xfail(
    strict=False,
    reason="pusht.goal_distance ignores the pusher but is_success requires it at its goal",
)


@pytest.mark.slow
@pytest.mark.parametrize("name", [env_param("pusht", PUSHT_GAP), env_param("tabletop")])
def test_oracle_mpc_progresses_on_contact_envs(name: str) -> None:
    results = oracle_episodes(name)
    solved = sum(r.success for r, _ in results)
    ratio = np.mean([r.min_distance / max(d0, 1e-9) for r, d0 in results])
    assert solved >= 1, (
        f"oracle solved {solved}/{len(results)} on {name}, closing {1 - ratio:.0%} of the distance"
    )


class PixelPointModel:
    """A hand-made Two-Room world model: reads the agent's position from the pixels (centroid of
    red pixels, in units of one full-speed step) and moves it by the summed raw actions (the
    unit-mass dynamics without walls). Exercises encoding, history and frameskip in the loop."""

    def __init__(self, frameskip: int, size: int = 64) -> None:
        self.frameskip, self.action_dim, self.history, self.embed_dim = (
            frameskip,
            2 * frameskip,
            1,
            2,
        )
        centres = (torch.arange(size) + 0.5) * (224.0 / size) / 8.0  # pixel centres, in steps
        self.gy, self.gx = torch.meshgrid(centres, centres, indexing="ij")

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        obs = obs.float()  # (..., 3, Hi, Wi)
        # Agent pixels are red (R - G ~ 200); floor and wall are grey (|R - G| < 10).
        red = ((obs[..., 0, :, :] - obs[..., 1, :, :] - 20) / 150).clamp(0, 1)  # (..., Hi, Wi)
        mass = red.sum((-1, -2))
        return torch.stack(
            [(red * self.gx).sum((-1, -2)) / mass, (red * self.gy).sum((-1, -2)) / mass], -1
        )  # (..., 2)

    def rollout(self, z_context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raw = rearrange(actions, "b h (f a) -> b h f a", f=self.frameskip).sum(2)  # (B, H, 2)
        return z_context[:, -1:] + torch.cumsum(raw, dim=1)  # (B, H, 2)


@needs_tworoom
def test_world_model_factory_reaches_goal_image() -> None:
    env = tworoom()
    model = PixelPointModel(frameskip=5)
    frame = torch.from_numpy(
        rearrange(env.render_state(np.array([56.0, 80, 0, 0])), "h w c -> c h w").copy()
    )
    assert torch.allclose(model.encode(frame), torch.tensor([7.0, 10.0]), atol=0.1)
    for start, goal in [((40.0, 60.0), (90.0, 170.0)), ((200.0, 200.0), (150.0, 30.0))]:
        start_state, goal_state = np.array([*start, 0, 0]), np.array([*goal, 0, 0])
        env.reset(seed=0, options={"state": start_state, "goal": goal_state})
        planner = CEM(CEMConfig(seed=0), model.action_dim)
        result = run_episode(
            env, planner, LatentGoalFactory(model), goal_state, MPCConfig(frameskip=5, history=2)
        )
        assert result.success, f"{start} -> {goal}: final distance {result.final_distance:.1f}"
        assert result.steps <= 25  # ~120 units at 8 per step


@needs_tworoom
@pytest.mark.skipif(
    not has_env("tworoom") or importlib.util.find_spec("reverie.models") is None,
    reason="world model not written yet",
)
@pytest.mark.parametrize("planner_name", ["cem", "mppi", "gradient"])
def test_real_world_model_runs_in_the_loop(planner_name: str) -> None:
    # API compatibility with models/world_model.py (untrained: success is not the point here).
    from reverie.models.world_model import WorldModel, WorldModelConfig
    from reverie.planning import MPPI, GradientConfig, GradientPlanner, MPPIConfig

    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig.default(action_dim=2 * 5, frameskip=5))
    model.train()  # the factory must switch BatchNorm to its running statistics
    env = tworoom()
    env.reset(seed=3)
    small = {"samples": 16, "iterations": 3, "horizon": 2}  # API check only: keep it cheap
    planner = {
        "cem": lambda: CEM(CEMConfig(elites=4, **small), model.action_dim),
        "mppi": lambda: MPPI(MPPIConfig(**small), model.action_dim),
        "gradient": lambda: GradientPlanner(GradientConfig(**small), model.action_dim),
    }[planner_name]()
    factory = LatentGoalFactory(model, differentiable=planner_name == "gradient")
    assert not model.training
    result = run_episode(
        env, planner, factory, env.goal, MPCConfig(budget=10, frameskip=5, history=model.history)
    )
    assert result.replans == 2 and result.steps == 10 and len(result.plan_ms) == 2
    assert len(result.plan_cost) == 2 and all(np.isfinite(c) for c in result.plan_cost)
    assert all(p.grad is None for p in model.parameters())
