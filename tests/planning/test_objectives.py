"""Goal objectives: latent costs checked by hand on an exactly linear world model, summed vs
final-step reduction, gradients only when asked for, and the oracle's true-simulator cost.

    .venv/bin/python -m pytest tests/planning/test_objectives.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from reverie.planning import (
    CEM,
    CEMConfig,
    GradientConfig,
    GradientPlanner,
    LatentGoalObjective,
    StateGoalObjective,
)


class LinearModel(nn.Module):
    """z_{t+1} = z_t + W a_t exactly (history 1), so every cost can be computed by hand."""

    def __init__(self, W: torch.Tensor) -> None:
        super().__init__()
        self.W = nn.Parameter(W.clone())  # (D, A)
        self.embed_dim, self.action_dim, self.history, self.frameskip = W.shape[0], W.shape[1], 1, 1
        self.rollout_batches: list[int] = []

    def rollout(self, z_context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        self.rollout_batches.append(actions.shape[0])
        steps = torch.cumsum(actions @ self.W.T, dim=1)  # (B, H, D)
        return z_context[:, -1:] + steps


def test_costs_match_hand_computation() -> None:
    model = LinearModel(torch.eye(2))
    z0, goal = torch.zeros(1, 1, 2), torch.tensor([[3.0, 0.0]])
    # Candidate 0 walks (1, 0) three times: z = (1,0), (2,0), (3,0) -> squared distances 4, 1, 0.
    # Candidate 1 stands still: squared distances 9, 9, 9.
    actions = torch.zeros(1, 2, 3, 2)
    actions[0, 0, :, 0] = 1.0
    summed = LatentGoalObjective(model, z0, goal)(actions)
    final = LatentGoalObjective(model, z0, goal, reduce="final")(actions)
    l2 = LatentGoalObjective(model, z0, goal, distance="l2")(actions)
    terminal = LatentGoalObjective(model, z0, goal, reduce="sum+final")(actions)
    assert summed.tolist() == [[5.0, 27.0]]
    assert final.tolist() == [[0.0, 9.0]]
    assert torch.allclose(l2, torch.tensor([[3.0, 9.0]]))
    assert terminal.tolist() == [[5.0 + 3 * 0.0, 27.0 + 3 * 9.0]]  # the sum + H x the final step
    assert model.rollout_batches == [2, 2, 2, 2]  # one (B*N) rollout per call


def test_batched_problems_keep_their_own_context_and_goal() -> None:
    model = LinearModel(torch.eye(2))
    z0 = torch.tensor([[[0.0, 0.0]], [[10.0, 10.0]]])  # (B=2, k'=1, D)
    goal = torch.tensor([[1.0, 0.0], [10.0, 11.0]])
    actions = torch.zeros(2, 3, 1, 2)  # (B, N=3, H=1, A)
    actions[:, 1, 0] = torch.tensor([1.0, 0.0])
    actions[:, 2, 0] = torch.tensor([0.0, 1.0])
    costs = LatentGoalObjective(model, z0, goal)(actions)
    assert costs.tolist() == [[1.0, 0.0, 2.0], [1.0, 2.0, 0.0]]
    assert model.rollout_batches == [6]


def test_summed_cost_prefers_getting_there_early() -> None:
    # Both reductions are minimised by any sequence that ends at the goal; only the summed one
    # demands full speed from the first step.
    model = LinearModel(torch.eye(2))
    z0, goal = torch.zeros(1, 1, 2), torch.tensor([[2.0, 0.0]])
    config = CEMConfig(samples=200, iterations=20, elites=20, horizon=4, seed=0)
    summed, _ = CEM(config, 2).plan(LatentGoalObjective(model, z0, goal))
    final, _ = CEM(config, 2).plan(LatentGoalObjective(model, z0, goal, reduce="final"))
    hand = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])  # summed optimum
    assert (summed - hand).abs().max() < 0.1
    assert abs(float(final[0, :, 0].sum()) - 2.0) < 0.1  # ends at the goal ...
    assert float(final[0, 0, 0]) < 0.9  # ... without rushing the first step


def test_cem_scores_all_candidates_in_one_rollout_per_iteration() -> None:
    model = LinearModel(torch.eye(2))
    z0, goal = torch.zeros(2, 1, 2), torch.ones(2, 2)  # B = 2 problems
    config = CEMConfig(samples=50, iterations=4, elites=5, horizon=3)
    CEM(config, 2).plan(LatentGoalObjective(model, z0, goal))
    assert model.rollout_batches == [2 * 50] * 4  # no per-candidate or per-problem loop


def test_gradients_only_when_differentiable() -> None:
    model = LinearModel(torch.eye(2))
    with torch.inference_mode():  # the MPC loop encodes under inference mode
        z0, goal = torch.zeros(1, 1, 2), torch.tensor([[2.0, -1.0]])
    actions = torch.zeros(1, 4, 3, 2, requires_grad=True)
    assert not LatentGoalObjective(model, z0, goal)(actions).requires_grad
    objective = LatentGoalObjective(model, z0, goal, differentiable=True)
    assert objective(actions).requires_grad
    planned, _ = GradientPlanner(GradientConfig(horizon=3, seed=0), 2).plan(objective)
    expected = torch.tensor([1.0, -1.0])  # summed cost: rush to (2, -1) within the bounds
    assert (planned[0, 0] - expected).abs().max() < 0.05
    assert model.W.grad is None, "planning must not accumulate gradients into the model"


def test_bad_shapes_raise() -> None:
    model = LinearModel(torch.eye(2))
    with pytest.raises(ValueError, match="z_goal"):
        LatentGoalObjective(model, torch.zeros(1, 1, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="z_context"):
        LatentGoalObjective(model, torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="reduce"):
        LatentGoalObjective(model, torch.zeros(1, 1, 2), torch.zeros(1, 2), reduce="mean")
    objective = LatentGoalObjective(model, torch.zeros(1, 1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="batch"):
        objective(torch.zeros(2, 3, 1, 2))
    with pytest.raises(ValueError, match="action size"):
        objective(torch.zeros(1, 3, 1, 5))


# ------------------------------------------------------------------------------- oracle objective
def tworoom():
    pytest.importorskip("reverie.envs.tworoom")
    from reverie.envs import make

    env = make("tworoom")
    env.reset(seed=0)
    return env


def test_state_objective_matches_stepping_the_env() -> None:
    env = tworoom()
    start = np.array([40.0, 60.0, 0.0, 0.0])
    goal = np.array([100.0, 60.0, 0.0, 0.0])
    env.set_state(start)
    frameskip = 3
    g = torch.Generator().manual_seed(0)
    actions = torch.rand(1, 4, 2, 2 * frameskip, generator=g) * 2.4 - 1.2  # some out of bounds
    objective = StateGoalObjective(env, start, goal, frameskip=frameskip)
    summed = objective(actions)
    final = StateGoalObjective(env, start, goal, frameskip=frameskip, reduce="final")(actions)
    assert summed.shape == (1, 4)
    assert np.array_equal(env.get_state(), start), "the objective must restore the env's state"
    for n in range(4):  # by hand, through the public step(): raw actions in concatenation order
        env.reset(options={"state": start, "goal": goal})
        dists = []
        for h in range(2):
            for f in range(frameskip):
                env.step(actions[0, n, h, 2 * f : 2 * f + 2].numpy())
            dists.append(env.goal_distance(env.get_state(), goal))
        assert summed[0, n].item() == pytest.approx(sum(dists), rel=1e-5)
        assert final[0, n].item() == pytest.approx(dists[-1], rel=1e-5)


def test_state_objective_rejects_bad_input() -> None:
    env = tworoom()
    objective = StateGoalObjective(env, env.get_state(), env.get_state(), frameskip=2)
    with pytest.raises(ValueError, match="B = 1"):
        objective(torch.zeros(2, 3, 1, 4))
    with pytest.raises(ValueError, match="frameskip"):
        objective(torch.zeros(1, 3, 1, 2))


def test_oracle_costs_scale_errors_by_their_tolerances() -> None:
    from reverie.envs import make
    from reverie.planning.objective import MARGIN_TIE_BREAK, state_cost

    env = make("pusht")
    goal = np.array([100.0, 100.0, 0, 0, 256.0, 256.0, 0.0, 0, 0, 0])  # pusher clear of the T
    s = goal.copy()
    s[0] += 10.0  # pusher 10 units off (0.5 of its tolerance)
    s[5] += 30.0  # T 30 units off (1.5)
    s[6] = np.radians(10.0)  # T 10° off (0.5)
    assert state_cost(env, s, goal, "distance") == pytest.approx(50.0)
    assert state_cost(env, s, goal, "tolerance") == pytest.approx(2.5)
    assert state_cost(env, s, goal, "margin") == pytest.approx(1.5 + MARGIN_TIE_BREAK * 2.5)
    # The objective scores rollouts with the cost it was given; an unknown one is refused.
    actions = torch.zeros(1, 3, 2, 2)  # (B, N, H, A'), frameskip 1: the world stays at rest
    for cost, want in (("distance", 50.0), ("tolerance", 2.5)):
        costs = StateGoalObjective(env, s, goal, frameskip=1, cost=cost)(actions)
        assert costs.shape == (1, 3) and costs[0, 0].item() == pytest.approx(2 * want, rel=1e-4)
    with pytest.raises(ValueError, match="oracle cost must be one of"):
        StateGoalObjective(env, s, goal, cost="units")
