"""Relations → positions: collision-free placements on the table that satisfy every relation.

    from reverie.scenes.layout import place, check_layout
    spec = place(spec, seed=0)       # every object gets a pose; relations hold; nothing overlaps

Objects without a pose are drawn by seeded rejection sampling inside the family's position range
(``RANGES["x"], RANGES["y"]``), all at once, so a chain of relations is solved jointly. Screen
directions follow the camera, which looks along +y: *left of* is smaller x, *behind* larger y.
``on`` stacks an object on its target (same xy; it is then not a collision). A set of relations
no placement satisfies (a cycle of *left of*, an object on two things) is refused in one line
naming the relations.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from reverie.io import ReverieError
from reverie.scenes.spec import RANGES, ObjectSpec, SceneSpec

GAP = 0.02  # m, the least clearance between two objects (and their relation margin)
NEAR = 0.09  # m, "near": clearance at most this
ROW = 0.12  # m, left/right of: |dy| at most this (the same row); behind/in front: |dx| at most
TRIES = 200  # batches of candidate layouts
BATCH = 512  # candidate layouts per batch

OPPOSITE = {"left_of": "right_of", "right_of": "left_of", "behind": "in_front_of"}
OPPOSITE["in_front_of"] = "behind"


def relation_ok(kind: str, a: ObjectSpec, b: ObjectSpec, pa: np.ndarray, pb: np.ndarray) -> bool:
    """Whether object ``a`` at ``pa`` stands ``kind`` object ``b`` at ``pb`` (``pa``, ``pb``:
    (..., 2) arrays; broadcasts, returning an array then)."""
    d = pa - pb
    clear = a.radius + b.radius + GAP
    dist = np.linalg.norm(d, axis=-1)
    if kind == "left_of":
        return (d[..., 0] <= -clear) & (np.abs(d[..., 1]) <= ROW)
    if kind == "right_of":
        return (d[..., 0] >= clear) & (np.abs(d[..., 1]) <= ROW)
    if kind == "behind":
        return (d[..., 1] >= clear) & (np.abs(d[..., 0]) <= ROW)
    if kind == "in_front_of":
        return (d[..., 1] <= -clear) & (np.abs(d[..., 0]) <= ROW)
    if kind == "near":
        return (dist >= clear) & (dist <= clear + NEAR)
    if kind == "on":
        return dist <= 1e-9
    raise ReverieError(f"unknown relation {kind!r}")


def support(spec: SceneSpec, i: int) -> int | None:
    """Index of the object ``i`` is stacked on, or None when it stands on the table."""
    rel = spec.objects[i].relation
    return rel.target if rel is not None and rel.kind == "on" else None


def base_height(spec: SceneSpec, i: int) -> float:
    """Height of object ``i``'s bottom above the table top (0 unless stacked)."""
    seen = {i}
    h, j = 0.0, support(spec, i)
    while j is not None:
        if j in seen:
            raise ReverieError(f"object {i} ({spec.objects[i].label}) is stacked on itself")
        seen.add(j)
        h += 2 * spec.objects[j].size
        j = support(spec, j)
    return h


def _check_consistent(spec: SceneSpec) -> None:
    """One-line errors for relation sets that are contradictory on their face."""
    rel = {
        (i, o.relation.target): o.relation.kind for i, o in enumerate(spec.objects) if o.relation
    }
    for (a, b), kind in rel.items():
        back = rel.get((b, a))
        if back is not None and back != OPPOSITE.get(kind, kind if kind == "near" else None):
            la, lb = spec.objects[a].label, spec.objects[b].label
            raise ReverieError(
                f"contradiction: the {la} is {kind.replace('_', ' ')} the {lb}, and the {lb} "
                f"is {back.replace('_', ' ')} the {la}"
            )
    for i in range(len(spec.objects)):
        base_height(spec, i)  # raises on a stacking cycle
    tops = [support(spec, i) for i in range(len(spec.objects))]
    for j in set(t for t in tops if t is not None):
        on_j = [i for i, t in enumerate(tops) if t == j]
        if len(on_j) > 1:
            raise ReverieError(
                f"contradiction: {len(on_j)} objects stacked on the one {spec.objects[j].label}"
            )


def _ok_pairs(spec: SceneSpec, pos: np.ndarray) -> np.ndarray:
    """(N,) whether each candidate layout ``pos`` (N, K, 2) meets every relation and clearance."""
    objs = spec.objects
    ok = np.ones(pos.shape[0], bool)
    for i, o in enumerate(objs):
        if o.relation is not None:
            t = o.relation.target
            ok &= relation_ok(o.relation.kind, o, objs[t], pos[:, i], pos[:, t])
    for i in range(len(objs)):
        for j in range(i):
            if support(spec, i) == j or support(spec, j) == i:
                continue
            if base_height(spec, i) or base_height(spec, j):
                continue  # a stacked object's clearance is its support's
            clear = objs[i].radius + objs[j].radius + GAP
            ok &= np.linalg.norm(pos[:, i] - pos[:, j], axis=-1) >= clear
    return ok


def place(spec: SceneSpec, seed: int = 0) -> SceneSpec:
    """``spec`` with a pose for every object (given poses are kept; stacked objects take their
    support's xy). Raises ``ReverieError`` when no placement meets the relations."""
    _check_consistent(spec)
    k = len(spec.objects)
    rng = np.random.default_rng(seed)
    (x0, x1), (y0, y1) = RANGES["x"], RANGES["y"]
    fixed = np.array([o.pose is not None for o in spec.objects])
    given = np.array([o.pose if o.pose is not None else (0.0, 0.0) for o in spec.objects])
    for _ in range(TRIES):
        pos = np.stack(
            [rng.uniform(x0, x1, (BATCH, k)), rng.uniform(y0, y1, (BATCH, k))], axis=-1
        )  # [N, K, 2]
        pos[:, fixed] = given[fixed]
        for _ in range(k):  # stacked objects share their support's xy (supports come first)
            for j in range(k):
                if support(spec, j) is not None and not fixed[j]:
                    pos[:, j] = pos[:, support(spec, j)]
        good = np.flatnonzero(_ok_pairs(spec, pos))
        if good.size:
            best = pos[good[0]]
            objects = tuple(
                dataclasses.replace(o, pose=(round(float(p[0]), 4), round(float(p[1]), 4)))
                for o, p in zip(spec.objects, best)
            )
            return dataclasses.replace(spec, objects=objects)
    described = "; ".join(
        f"{o.label} {o.relation.kind.replace('_', ' ')} {spec.objects[o.relation.target].label}"
        for o in spec.objects
        if o.relation is not None
    )
    raise ReverieError(
        "cannot place the objects on the table without overlaps"
        + (f" so that: {described}" if described else "")
    )


def check_layout(spec: SceneSpec) -> list[str]:
    """Problems of a placed spec (overlaps, unmet relations); empty when it is sound."""
    if not spec.placed:
        return ["not every object has a pose"]
    pos = np.array([o.pose for o in spec.objects])[None]  # [1, K, 2]
    problems = []
    for i, o in enumerate(spec.objects):
        if o.relation is not None:
            t = o.relation.target
            if not relation_ok(o.relation.kind, o, spec.objects[t], pos[:, i], pos[:, t])[0]:
                problems.append(f"{o.label} is not {o.relation.kind} {spec.objects[t].label}")
    if not _ok_pairs(dataclasses.replace(spec), pos)[0] and not problems:
        problems.append("objects overlap")
    return problems
