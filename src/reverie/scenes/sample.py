"""Random scenes of the family: what ``reverie collect --scenes random`` draws per episode.

    from reverie.scenes.sample import random_scene
    spec = random_scene(np.random.default_rng(seed), n_objects=2)   # placed, inside RANGES

Kinds uniformly; colours distinct (so a frame names each object); size, light and gravity
uniform over their ranges; mass and frictions log-uniform (they span more than a decade); half
the objects bouncy (restitution uniform), half dead; cubes at a random yaw.
"""

from __future__ import annotations

import math
from typing import Any

from reverie.io import ReverieError
from reverie.scenes.layout import place
from reverie.scenes.spec import COLOURS, KINDS, MAX_OBJECTS, RANGES, Light, ObjectSpec, SceneSpec


def random_scene(rng: Any, n_objects: int | None = None) -> SceneSpec:
    """A scene drawn from the family's ranges (``np.random.Generator`` ``rng``): ``n_objects``
    objects (None: 1 to ``MAX_OBJECTS``) of random kinds and distinct colours, placed apart."""
    n = int(rng.integers(1, MAX_OBJECTS + 1)) if n_objects is None else n_objects
    if not 1 <= n <= MAX_OBJECTS:
        raise ReverieError(f"a scene holds 1 to {MAX_OBJECTS} objects, got {n}")
    colours = rng.choice(list(COLOURS), size=n, replace=False)

    def draw(key: str, log: bool = False) -> float:
        lo, hi = RANGES[key]
        if log:
            return round(float(math.exp(rng.uniform(math.log(lo), math.log(hi)))), 4)
        return round(float(rng.uniform(lo, hi)), 4)

    objects = tuple(
        ObjectSpec(
            kind=str(rng.choice(KINDS)),
            colour=str(c),
            size=draw("size"),
            mass=draw("mass", log=True),
            friction=draw("friction", log=True),
            restitution=draw("restitution") if rng.random() < 0.5 else 0.0,
            yaw=round(float(rng.uniform(-math.pi, math.pi)), 4),
        )
        for c in colours
    )
    spec = SceneSpec(
        objects,
        table_friction=draw("table_friction", log=True),
        gravity=draw("gravity"),
        light=Light(draw("light"), draw("ambient")),
    )
    return place(spec, seed=int(rng.integers(2**31)))
