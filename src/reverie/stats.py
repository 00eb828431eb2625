"""Small statistics shared by the evaluations: the Wilson interval of a success proportion, and
McNemar's exact test for two planners scored on the same pairs.

from reverie.stats import mcnemar, wilson
wilson(18, 20)                  # (69.9, 97.21): % as `reverie eval` reports its success rate
wilson(18, 20, percent=False)   # (0.699, 0.9721): fractions, as the physics suite reports
mcnemar(1, 7)                   # 0.0703: 1 pair only A solved, 7 only B: not yet significant
"""

from __future__ import annotations

import math


def wilson(successes: int, n: int, z: float = 1.96, percent: bool = True) -> tuple[float, float]:
    """Wilson score interval of ``successes / n`` (z = 1.96: 95%).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0/n or n/n, which
    matters for the small episode counts evaluation runs. ``percent`` gives % rounded to 2 places;
    otherwise fractions rounded to 4. With no trials the interval is everything."""
    if n == 0:
        lo, hi = 0.0, 1.0
    else:
        p = successes / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    if percent:
        return (round(100 * lo, 2), round(100 * hi, 2))
    return (round(lo, 4), round(hi, 4))


def mcnemar(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value for paired successes (rounded to 4 places).

    ``only_a`` pairs were solved by A and not B, ``only_b`` by B and not A; pairs both solved or
    both failed carry no information about which is better. Under "A and B are equally good" each
    discordant pair is a fair coin, so the p-value is twice the smaller binomial tail (at most 1).
    On the same 50 held-out pairs, two runs 10 points apart (say 3 vs 8 discordant) give
    p = 0.23: such a gap is not evidence of a better lever."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a}, {only_b}")
    n, k = only_a + only_b, min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return round(min(1.0, 2.0 * tail), 4)
