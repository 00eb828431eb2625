"""What each world trains best with, in one table beside the presets (not on the env classes).

    from reverie.recipes import recipe
    recipe("tworoom")["lam"]        # 0.003: the SIGReg weight Two-Room was measured best at

Keys (all optional; a missing key means "the preset's value"):
  preset     the training preset ``reverie train`` / ``reverie demo`` use without ``--preset``.
  lam        SIGReg weight λ for ``reverie train`` when ``--lam`` is not given.
  episodes   episodes ``reverie collect`` (without ``--episodes``) and ``reverie demo`` collect.
  steps      training steps ``reverie train`` (without ``--preset`` or ``--steps``) and ``reverie
             demo`` run (an upper bound when a time budget is set).
  minutes    the wall-clock training budget that goes with ``steps`` (``reverie train`` without
             ``--minutes``, and the demo), so the main job ends on time on any CPU.
  augment    the look augmentation ``reverie train`` applies when ``--augment`` is not given.

Why Two-Room's λ is 0.003: SIGReg pushes every 1-D projection of the batch toward N(0, 1); a
world whose visible state is a flat 2-D sheet satisfies that only by folding the sheet through
all 64 dimensions, and the latent goal distance saturates (Spearman(latent, true distance) 0.49 at
0.1 vs 0.99 at 0.003, CEM success 38% vs 82%; ``benchmarks/bench_geometry.py``). A world of angles
wants more room: Reacher's two angles (a torus, which no 2-D sheet embeds) collapse to effective
rank 2.5 at λ ≤ 0.01 (8-12% success), while at 0.1 every far pair sits at a 64-d Gaussian's typical
distance (≈ √128 = 11.3: Spearman 0.47, 54%); 0.03 keeps rank ~9 and the distance growing (Spearman
0.79, 68% on the same 50 pairs, 2026-12-03; 0.05 already spreads it: Spearman 0.55, 48%, and
on another CPU class 0.03 planned 73% over 100 pairs, 2026-12-04). Longer training (16,000 steps),
a 6-step rollout loss and a 256-wide predictor all lost to these 8,000 steps. Push-T and Tabletop
keep the preset's 0.1.

Why Push-T's training stops at 60 minutes: the benchmark targets allow one CPU-hour of training,
and 20,000 steps of the cpu preset take about that on one core of the bf16 classes (far longer in
fp32 on an AVX2-only CPU); the cap keeps ``reverie train`` with no flags inside the hour on any
machine, the steps being the upper bound (BENCHMARKS.md, "Benchmark suite").

Why Two-Room trains the ``lite`` preset: on the same 50 held-out pairs it plans as well as ``cpu``
(80% [67, 89] vs 82% [69, 90]: the cpu model's failures are among lite's) from a
quarter of the encoder's conv FLOPs and a fifth of the predictor's, so it trains ~2x faster and
replans ~3x faster in fp32: the demo ends on time on CPUs without bf16 (BENCHMARKS.md).

Why Two-Room augments the look: under the same 5-minute budget the ``look`` augmentation
planned at 82% in the source look against 78% without it (it costs ~1.2x per step, so it got
1,180 steps against 1,436), and at 76% / 68% / 72% under the ``visual`` / ``visual-unseen`` /
``both`` looks against 6% / - / - (BENCHMARKS.md, "Look invariance"). Push-T's models were too
weak to tell, so the others stay unaugmented.
"""

from __future__ import annotations

from typing import Any

# fmt: off
RECIPES: dict[str, dict[str, Any]] = {
    "tworoom":  {"preset": "lite", "lam": 0.003, "episodes": 1000, "steps": 4000, "minutes": 5.0,
                 "augment": "look"},
    "pusht":    {"episodes": 2000, "steps": 20000, "minutes": 60.0},
    "reacher":  {"lam": 0.03, "episodes": 1000, "steps": 8000},
    "tabletop": {"episodes": 1000, "steps": 8000},
}
# fmt: on


def recipe(env: str | None) -> dict[str, Any]:
    """The recipe of ``env`` (short name or Gymnasium id); {} for an unknown or absent env."""
    if env is None:
        return {}
    from reverie.envs import resolve

    try:
        return dict(RECIPES.get(resolve(env), {}))
    except ValueError:
        return {}
