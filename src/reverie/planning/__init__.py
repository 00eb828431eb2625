"""Planning toward goals: objectives, the CEM / MPPI / gradient planners, and the MPC loop.

    from reverie.planning import CEM, CEMConfig, LatentGoalFactory, MPCConfig, run_episode
    planner = CEM(CEMConfig(), action_dim=model.action_dim)
    result = run_episode(env, planner, LatentGoalFactory(model), goal_state, MPCConfig())

``make_planner(name, action_dim, horizon=5, seed=0)`` builds one by name (``PLANNERS``).
"""

from __future__ import annotations

from reverie.planning.cem import CEM, CEMConfig
from reverie.planning.gradient import GradientConfig, GradientPlanner
from reverie.planning.mpc import (
    EpisodeResult,
    LatentGoalFactory,
    MPCConfig,
    ObjectiveFactory,
    OracleFactory,
    PlanContext,
    RandomPlanner,
    ReplanEvent,
    StepEvent,
    episode_steps,
    run_episode,
    shift_plan,
)
from reverie.planning.mppi import MPPI, MPPIConfig
from reverie.planning.objective import (
    LatentGoalObjective,
    Objective,
    Planner,
    StateGoalObjective,
)

PLANNERS = ("cem", "mppi", "gradient", "random")

__all__ = [
    "CEM",
    "MPPI",
    "PLANNERS",
    "CEMConfig",
    "EpisodeResult",
    "GradientConfig",
    "GradientPlanner",
    "LatentGoalFactory",
    "LatentGoalObjective",
    "MPCConfig",
    "MPPIConfig",
    "Objective",
    "ObjectiveFactory",
    "OracleFactory",
    "PlanContext",
    "Planner",
    "RandomPlanner",
    "ReplanEvent",
    "StateGoalObjective",
    "StepEvent",
    "episode_steps",
    "make_planner",
    "run_episode",
    "shift_plan",
]


def make_planner(
    name: str,
    action_dim: int,
    horizon: int = 5,
    seed: int = 0,
    action_low: float = -1.0,
    action_high: float = 1.0,
) -> Planner:
    """A planner with its default settings by name; unknown names list the known ones."""
    bounds = {"action_low": action_low, "action_high": action_high}
    if name == "cem":
        return CEM(CEMConfig(horizon=horizon, seed=seed, **bounds), action_dim)
    if name == "mppi":
        return MPPI(MPPIConfig(horizon=horizon, seed=seed, **bounds), action_dim)
    if name == "gradient":
        return GradientPlanner(GradientConfig(horizon=horizon, seed=seed, **bounds), action_dim)
    if name == "random":
        return RandomPlanner(horizon, action_dim, seed=seed, **bounds)
    raise ValueError(f"unknown planner {name!r}; known: {', '.join(PLANNERS)}")
