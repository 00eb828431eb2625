"""The planner options every command shares: ``--samples --iterations --elites --horizon``.

Commands that plan (``eval``, ``plan``, ``shift``, ``play``, ...) compose one ``PlannerOptions``
field into their config; ``reverie.cliargs`` turns its fields into top-level flags, so the same
option means the same thing everywhere. A command with other defaults (``play`` searches fewer
candidates to stay interactive) passes its own instance as the field's default.

    @dataclass(frozen=True)
    class EvalConfig:
        planning: PlannerOptions = PlannerOptions()
    cfg.planning.samples
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlannerOptions:
    """Search budget and horizon of a sampling planner (defaults: the public protocol's)."""

    samples: int = 300
    """N: candidate action sequences per iteration (CEM, MPPI; the gradient planner's restarts
    are min(samples, 16))."""
    iterations: int = 30
    """Refits (CEM), updates (MPPI) or optimizer steps (gradient) per replan."""
    elites: int = 30
    """CEM: lowest-cost candidates the sampling distribution is refit to (<= samples)."""
    horizon: int = 5
    """H: planned model steps (action blocks) per replan."""

    def __post_init__(self) -> None:
        for name in ("samples", "iterations", "elites", "horizon"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"--{name} must be an integer >= 1, got {value!r}")
        if self.elites > self.samples:
            raise ValueError(f"--elites ({self.elites}) must be <= --samples ({self.samples})")
