"""CEM, MPPI and the gradient planner on analytic costs: they find a known minimum, are seeded,
respect the action bounds, and profit from a warm start.

    .venv/bin/python -m pytest tests/planning/test_planners.py -q
"""

from __future__ import annotations

import pytest
import torch

from reverie.planning import (
    CEM,
    MPPI,
    CEMConfig,
    GradientConfig,
    GradientPlanner,
    MPPIConfig,
    RandomPlanner,
    make_planner,
)

H, A = 5, 4


class Quadratic:
    """cost = ||actions - target||² summed over (H, A); B problems with their own targets."""

    differentiable = True

    def __init__(self, target: torch.Tensor) -> None:
        self.target = target  # (B, H, A)
        self.batch_size = target.shape[0]
        self.low, self.high = float("inf"), float("-inf")  # range of every candidate scored

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        self.low = min(self.low, float(actions.detach().min()))
        self.high = max(self.high, float(actions.detach().max()))
        return (actions - self.target[:, None]).pow(2).sum((-1, -2))  # (B, N)


def targets(seed: int = 123, scale: float = 0.8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(2, H, A, generator=g) * 2 - 1) * scale  # (B=2, H, A), inside the bounds


def build(name: str, seed: int = 0, **overrides):
    if name == "cem":
        return CEM(CEMConfig(horizon=H, seed=seed, **overrides), A)
    if name == "mppi":
        return MPPI(MPPIConfig(horizon=H, seed=seed, **overrides), A)
    return GradientPlanner(GradientConfig(horizon=H, seed=seed, **overrides), A)


PLANNERS = ["cem", "mppi", "gradient"]
TOL = {"cem": 0.05, "mppi": 0.05, "gradient": 0.03}


@pytest.mark.parametrize("name", PLANNERS)
def test_finds_known_minimum_for_each_problem(name: str) -> None:
    target = targets()
    actions, info = build(name).plan(Quadratic(target))
    assert actions.shape == (2, H, A)
    err = (actions - target).abs().amax(dim=(1, 2))  # per problem
    assert torch.all(err < TOL[name]), f"{name} error per problem {err.tolist()}"
    assert info["best_cost"][-1] < info["best_cost"][0]


@pytest.mark.parametrize("name", PLANNERS)
def test_seeded_and_pure(name: str) -> None:
    target = targets()
    torch.manual_seed(999)
    global_state = torch.random.get_rng_state()
    a1, _ = build(name, seed=7, iterations=3).plan(Quadratic(target))
    assert torch.equal(torch.random.get_rng_state(), global_state), "planner used the global RNG"
    a2, _ = build(name, seed=7, iterations=3).plan(Quadratic(target))
    a3, _ = build(name, seed=8, iterations=3).plan(Quadratic(target))
    assert torch.equal(a1, a2)
    assert not torch.allclose(a1, a3)
    planner = build(name, seed=7, iterations=3)
    planner.plan(Quadratic(target))
    planner.reseed(7)  # reseeding restarts the stream
    assert torch.equal(planner.plan(Quadratic(target))[0], a1)


@pytest.mark.parametrize("name", [*PLANNERS, "gradient-tanh"])
def test_actions_stay_in_bounds(name: str) -> None:
    target = targets(scale=2.0)  # many target entries lie outside [-0.5, 0.7]
    objective = Quadratic(target)
    extra = {"squash": "tanh", "iterations": 150} if name == "gradient-tanh" else {}
    planner = build(name.split("-")[0], action_low=-0.5, action_high=0.7, **extra)
    actions, _ = planner.plan(objective)
    assert float(actions.min()) >= -0.5 and float(actions.max()) <= 0.7
    assert objective.low >= -0.5 and objective.high <= 0.7  # every candidate scored, too
    # The constrained optimum is the target clipped to the box (sampling planners sit a little
    # inside a bound: half their clipped samples pile onto it, the rest fall inside).
    assert (actions - target.clamp(-0.5, 0.7)).abs().max() < 0.1


def first_below(costs: list[float], threshold: float) -> int:
    """Iterations a search needed before its best cost fell below ``threshold``."""
    return next((i for i, c in enumerate(costs) if c < threshold), len(costs))


@pytest.mark.parametrize("name", PLANNERS)
def test_warm_start_needs_fewer_iterations(name: str) -> None:
    target = targets()
    near = target + 0.05  # e.g. the previous plan, shifted: best cost 20 * 0.05² = 0.05
    iterations = {"cem": 30, "mppi": 30, "gradient": 100}[name]
    cold, cold_info = build(name, iterations=iterations).plan(Quadratic(target))
    warm, warm_info = build(name, iterations=iterations).plan(Quadratic(target), init_mean=near)
    threshold = 0.1
    n_cold = first_below(cold_info["best_cost"], threshold)
    n_warm = first_below(warm_info["best_cost"], threshold)
    assert n_cold >= 3 and n_warm <= 1, f"iterations to cost < {threshold}: {n_warm} vs {n_cold}"
    # Stopped early, the warm-started search is also the closer one.
    few = {"cem": 3, "mppi": 3, "gradient": 10}[name]
    cold, _ = build(name, iterations=few).plan(Quadratic(target))
    warm, _ = build(name, iterations=few).plan(Quadratic(target), init_mean=near)
    cold_err, warm_err = (cold - target).pow(2).mean(), (warm - target).pow(2).mean()
    assert warm_err < cold_err, f"warm {warm_err:.4f} vs cold {cold_err:.4f}"


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_warm_std_trusts_the_warm_start(name: str) -> None:
    target = targets()
    near = target + 0.05
    cold, _ = build(name, iterations=3).plan(Quadratic(target))
    warm, _ = build(name, iterations=3, warm_std=0.1).plan(Quadratic(target), init_mean=near)
    cold_err, warm_err = (cold - target).pow(2).mean(), (warm - target).pow(2).mean()
    assert warm_err < 0.2 * cold_err, f"warm {warm_err:.5f} vs cold {cold_err:.5f}"


def test_info_has_one_entry_per_iteration() -> None:
    actions, info = build("cem", iterations=4).plan(Quadratic(targets()))
    assert set(info) == {"elite_cost", "best_cost", "std"}
    assert all(len(v) == 4 for v in info.values())
    assert info["std"][-1] < info["std"][0]
    _, info = build("gradient", iterations=6).plan(Quadratic(targets()))
    best = info["best_cost"]
    assert all(b1 <= b0 for b0, b1 in zip(best, best[1:])), "best-so-far must not increase"


def test_cem_keeps_a_perfect_warm_start() -> None:
    # The mean is scored as candidate 0 and the elites' spread shrinks towards it.
    target = targets()
    actions, info = build("cem", iterations=10).plan(Quadratic(target), init_mean=target)
    assert info["best_cost"][0] == 0.0
    assert (actions - target).abs().max() < 0.05


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="elites"):
        CEMConfig(samples=10, elites=20)
    with pytest.raises(ValueError, match="bounds"):
        CEMConfig(action_low=1.0, action_high=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        MPPIConfig(temperature=0.0)
    with pytest.raises(ValueError, match="squash"):
        GradientConfig(squash="sigmoid")
    with pytest.raises(ValueError, match="init_mean"):
        build("cem").plan(Quadratic(targets()), init_mean=torch.zeros(1, H, A))
    with pytest.raises(ValueError, match="unknown planner"):
        make_planner("beam", A)

    class NotDifferentiable(Quadratic):
        differentiable = False

    with pytest.raises(ValueError, match="differentiable"):
        build("gradient").plan(NotDifferentiable(targets()))


def test_make_planner_and_random_baseline() -> None:
    for name in ("cem", "mppi", "gradient", "random"):
        planner = make_planner(name, A, horizon=3)
        assert planner.horizon == 3 and planner.action_dim == A
    rand = RandomPlanner(H, A, action_low=-0.2, action_high=0.3, seed=1)
    a, _ = rand.plan(Quadratic(targets()))
    assert a.shape == (2, H, A) and a.min() >= -0.2 and a.max() <= 0.3
    assert a.std() > 0.05
