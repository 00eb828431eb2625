"""Prompt → SceneSpec: a golden table of prompts, unknown words, contradictions, placement.

PYTHONPATH=src .venv/bin/python -m pytest tests/scenes/test_text.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from reverie.io import ReverieError
from reverie.scenes.layout import check_layout
from reverie.scenes.text import parse_prompt

# One object as (kind, colour, size, mass, friction, restitution); sizes and masses rounded.
D = 0.045, 0.25, 0.5, 0.0  # default size, mass, friction, restitution


def obj(kind: str, colour: str, size=D[0], mass=D[1], friction=D[2], bounce=D[3]) -> tuple:
    return (kind, colour, round(size, 4), round(mass, 4), friction, bounce)


RED_CUBE = obj("cube", "red")
BLUE_BALL = obj("ball", "blue")
GREEN_CYL = obj("cylinder", "green")

# prompt -> (objects in order, table friction, gravity, ignored words, relations {i: (kind, j)})
GOLDEN: list[tuple[str, list[tuple], float, float, tuple[str, ...], dict]] = [
    (
        "a heavy red cube and two bouncy blue balls on an icy table",
        [
            obj("cube", "red", mass=0.75),
            obj("ball", "blue", bounce=0.8),
            obj("ball", "blue", bounce=0.8),
        ],
        0.05,
        9.81,
        (),
        {},
    ),
    ("a red cube", [RED_CUBE], 0.5, 9.81, (), {}),
    ("a cube", [RED_CUBE], 0.5, 9.81, (), {}),
    ("a ball", [BLUE_BALL], 0.5, 9.81, (), {}),
    ("a cylinder", [GREEN_CYL], 0.5, 9.81, (), {}),
    ("one green box", [obj("cube", "green")], 0.5, 9.81, (), {}),
    ("two spheres", [BLUE_BALL, BLUE_BALL], 0.5, 9.81, (), {}),
    ("three yellow blocks", [obj("cube", "yellow")] * 3, 0.5, 9.81, (), {}),
    ("four orbs", [BLUE_BALL] * 4, 0.5, 9.81, (), {}),
    ("a pair of pink cans", [obj("cylinder", "pink")] * 2, 0.5, 9.81, (), {}),
    ("a couple of white pucks", [obj("cylinder", "white")] * 2, 0.5, 9.81, (), {}),
    ("2 cyan cubes", [obj("cube", "cyan")] * 2, 0.5, 9.81, (), {}),
    ("a tiny red ball", [obj("ball", "red", size=0.027, mass=0.054)], 0.5, 9.81, (), {}),
    ("a small cube", [obj("cube", "red", size=0.03375, mass=0.10547)], 0.5, 9.81, (), {}),
    ("a big blue cube", [obj("cube", "blue", size=0.0585, mass=0.54925)], 0.5, 9.81, (), {}),
    (
        "a large heavy cylinder",
        [obj("cylinder", "green", size=0.0585, mass=1.64775)],
        0.5,
        9.81,
        (),
        {},
    ),
    ("a light ball", [obj("ball", "blue", mass=0.075)], 0.5, 9.81, (), {}),
    ("a rubber ball", [obj("ball", "blue", friction=1.0, bounce=0.7)], 0.5, 9.81, (), {}),
    ("a metal cube", [obj("cube", "red", mass=1.0, friction=0.35)], 0.5, 9.81, (), {}),
    ("a wooden cylinder", [obj("cylinder", "green", friction=0.6)], 0.5, 9.81, (), {}),
    ("a plastic box", [obj("cube", "red", mass=0.125, friction=0.4)], 0.5, 9.81, (), {}),
    ("a foam ball", [obj("ball", "blue", mass=0.05, friction=0.8)], 0.5, 9.81, (), {}),
    ("an icy cube", [obj("cube", "red", friction=0.05)], 0.5, 9.81, (), {}),
    ("a sticky ball", [obj("ball", "blue", friction=1.4)], 0.5, 9.81, (), {}),
    (
        "a crimson sphere and a navy drum",
        [obj("ball", "red"), obj("cylinder", "blue")],
        0.5,
        9.81,
        (),
        {},
    ),
    ("a cube on a wooden table", [RED_CUBE], 0.5, 9.81, (), {}),
    ("a ball on a rough table", [BLUE_BALL], 1.0, 9.81, (), {}),
    ("a ball on a glass table", [BLUE_BALL], 0.15, 9.81, (), {}),
    ("a cube under low gravity", [RED_CUBE], 0.5, 4.9, (), {}),
    ("a ball with strong gravity", [BLUE_BALL], 0.5, 14.7, (), {}),
    ("a red cube left of a blue ball", [RED_CUBE, BLUE_BALL], 0.5, 9.81, (), {0: ("left_of", 1)}),
    ("a cube to the right of a ball", [RED_CUBE, BLUE_BALL], 0.5, 9.81, (), {0: ("right_of", 1)}),
    ("a ball behind a cube", [BLUE_BALL, RED_CUBE], 0.5, 9.81, (), {0: ("behind", 1)}),
    (
        "a ball in front of a cylinder",
        [BLUE_BALL, GREEN_CYL],
        0.5,
        9.81,
        (),
        {0: ("in_front_of", 1)},
    ),
    ("a ball on a cube", [BLUE_BALL, RED_CUBE], 0.5, 9.81, (), {0: ("on", 1)}),
    ("a cube near a ball", [RED_CUBE, BLUE_BALL], 0.5, 9.81, (), {0: ("near", 1)}),
    ("a cube and a ball next to it", [RED_CUBE, BLUE_BALL], 0.5, 9.81, (), {1: ("near", 0)}),
    (
        "a cube and a ball, the cube is behind the ball",
        [RED_CUBE, BLUE_BALL],
        0.5,
        9.81,
        (),
        {0: ("behind", 1)},
    ),
    (
        "two balls beside a cylinder",
        [BLUE_BALL, BLUE_BALL, GREEN_CYL],
        0.5,
        9.81,
        (),
        {0: ("near", 2), 1: ("near", 2)},
    ),
    # unknown words: reported, never mapped
    ("a red dragon and a ball", [BLUE_BALL], 0.5, 9.81, ("dragon", "a red"), {}),
    ("a green dragon and a cube", [RED_CUBE], 0.5, 9.81, ("dragon", "a green"), {}),
    ("a cube and a unicorn", [RED_CUBE], 0.5, 9.81, ("unicorn",), {}),
    ("a shiny red cube", [RED_CUBE], 0.5, 9.81, ("shiny",), {}),
    ("a grey ball", [BLUE_BALL], 0.5, 9.81, ("grey",), {}),
    ("please put a cube on the table", [RED_CUBE], 0.5, 9.81, ("please",), {}),
    ("a ball on a marble table", [BLUE_BALL], 0.5, 9.81, ("marble",), {}),
    ("a cube and a teapot on an icy table", [RED_CUBE], 0.05, 9.81, ("teapot",), {}),
    (
        "a huge bouncy ball and a robot",
        [obj("ball", "blue", size=0.07, mass=1.22825, bounce=0.8)],
        0.5,
        9.81,
        ("robot",),
        {},
    ),
    ("a ball under martian low gravity", [BLUE_BALL], 0.5, 4.9, ("martian",), {}),
    ("three fluffy cubes", [RED_CUBE] * 3, 0.5, 9.81, ("fluffy",), {}),
    ("a cube, a lamp, and a ball", [RED_CUBE, BLUE_BALL], 0.5, 9.81, ("lamp",), {}),
]


@pytest.mark.parametrize("prompt,objects,table,gravity,ignored,relations", GOLDEN)
def test_golden(prompt, objects, table, gravity, ignored, relations) -> None:
    r = parse_prompt(prompt)
    got = [
        (o.kind, o.colour, round(o.size, 4), round(o.mass, 4), o.friction, o.restitution)
        for o in r.spec.objects
    ]
    if objects is not None:
        assert got == objects
    assert r.spec.table_friction == table
    assert r.spec.gravity == gravity
    assert r.ignored == ignored
    got_rel = {
        i: (o.relation.kind, o.relation.target) for i, o in enumerate(r.spec.objects) if o.relation
    }
    assert got_rel == relations
    assert check_layout(r.spec) == []  # placed, apart, relations hold


def test_golden_table_is_big_enough() -> None:
    assert len(GOLDEN) >= 40
    assert sum(1 for g in GOLDEN if g[4]) >= 10


def test_out_of_range_clamped_with_warning() -> None:
    r = parse_prompt("a huge heavy metal cube under moon gravity")
    (o,) = r.spec.objects
    assert o.size == 0.07 and o.mass == 2.0 and r.spec.gravity == 4.9
    assert any("size" in w and "[0.025, 0.07]" in w for w in r.warnings)
    assert any("mass" in w and "[0.05, 2]" in w for w in r.warnings)
    assert any("gravity" in w and "[4.9, 14.7]" in w for w in r.warnings)
    assert parse_prompt("a cube").warnings == ()


@pytest.mark.parametrize(
    "prompt,message",
    [
        ("a ball left of itself", "cannot be left of itself"),
        ("five cubes", "beyond the family's maximum of 4"),
        ("3 cubes and two balls", "at most 4"),
        ("a cube left of a ball and the ball left of the cube", "contradiction"),
        ("two balls on a cube", "stacked on the one"),
        ("a red blue cube", "cannot be red and blue"),
        ("an icy table", "names no object"),
        ("dragons everywhere", "names no object"),
        ("a cube on the ball on the cylinder", "cannot read the prompt"),
    ],
)
def test_bad_prompts_one_line(prompt: str, message: str) -> None:
    with pytest.raises(ReverieError, match=message) as e:
        parse_prompt(prompt)
    assert "\n" not in str(e.value)


def test_relations_solved_on_screen_axes() -> None:
    r = parse_prompt("a red cube left of a blue ball, and a green cylinder behind the ball")
    cube, ball, cyl = (o.pose for o in r.spec.objects)
    assert cube[0] < ball[0] and cyl[1] > ball[1]
    stacked = parse_prompt("a ball on a cube").spec.objects
    assert stacked[0].pose == stacked[1].pose


def test_same_prompt_same_world_seed_changes_layout() -> None:
    a, b = parse_prompt("two cubes and a ball"), parse_prompt("two cubes and a ball")
    assert a.spec == b.spec
    assert parse_prompt("two cubes and a ball", seed=1).spec != a.spec


def test_long_prompts_refused_not_slow() -> None:
    with pytest.raises(ReverieError, match="at most 32"):
        parse_prompt("big " * 40 + "cube")
    # unknown words are dropped before parsing, so they never cost parse time
    assert parse_prompt("blah " * 200 + "a cube").ignored == ("blah",) * 200


@pytest.mark.parametrize("seed", range(5))
def test_placements_never_overlap(seed: int) -> None:
    """Checked apart from the solver's own test: centre distances exceed the two reaches."""
    import itertools

    spec = parse_prompt("two big cubes, a large cylinder and a huge ball", seed=seed).spec
    for a, b in itertools.combinations(spec.objects, 2):
        assert np.hypot(a.pose[0] - b.pose[0], a.pose[1] - b.pose[1]) > a.radius + b.radius
