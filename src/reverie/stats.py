"""Small statistics shared by the evaluations: the Wilson interval of a success proportion.

from reverie.stats import wilson
wilson(18, 20)                  # (69.9, 97.21): % as `reverie eval` reports its success rate
wilson(18, 20, percent=False)   # (0.699, 0.9721): fractions, as the physics suite reports
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
