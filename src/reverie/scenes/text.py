"""Text → ``SceneSpec``: a closed-vocabulary grammar (lark, Earley) with a synonym table.

    from reverie.scenes.text import parse_prompt
    result = parse_prompt("a heavy red cube and two bouncy blue balls on an icy table")
    result.spec          # SceneSpec: 3 objects, placed without overlaps; table friction 0.05
    result.ignored       # words not understood, reported, never mapped: ("dragon",)
    result.warnings      # values clamped to the family's ranges, each naming the range

How a prompt is read:

1. *Words.* The prompt is lower-cased and split into words and commas. A word that is in no
   entry of the vocabulary below is dropped and reported in ``ignored`` (so is a description
   that names no object: "a green dragon" ignores 'dragon' and reports 'a green' as unused).
2. *Grammar.* The known words are parsed by ``GRAMMAR``: a scene is items joined by ``and``,
   ``,`` or ``with``; an item is an object group (``[count] adjective* kind [relation]``), a table
   clause (``on [the] adjective* table``) or a world clause (``low gravity``, ``bright light``).
   Counts: a, an, one, two, three, four, a pair of, a couple of, digits; beyond ``MAX_OBJECTS``
   is an error naming the count.
3. *Meaning.* Adjectives are effects on an object's parameters (``OBJECT_WORDS``: sizes scale the
   size, and the mass with its cube; materials set friction, bounciness and scale mass), applied
   in the order written, then clamped to the family's ranges with a warning.
4. *Relations.* left of, right of, behind, in front of, on (stacked), near; the target is a new
   object ("left of a blue ball"), one already named ("left of the cube"), or ``it`` (the object
   just named). "itself" and cycles are one-line errors; ``layout.place`` solves the rest into
   collision-free positions (seeded, so the same prompt gives the same world).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from reverie.io import ReverieError
from reverie.scenes.layout import place
from reverie.scenes.spec import (
    DEFAULTS,
    MAX_OBJECTS,
    Light,
    ObjectSpec,
    Relation,
    SceneSpec,
    clamp,
)

# ----------------------------------------------------------------------------------- vocabulary
#: kind synonyms → kind (plurals are listed: the vocabulary is closed, nothing is stemmed).
KIND_WORDS: dict[str, str] = {
    **dict.fromkeys(["cube", "cubes", "box", "boxes", "block", "blocks", "dice"], "cube"),
    **dict.fromkeys(["ball", "balls", "sphere", "spheres", "orb", "orbs"], "ball"),
    **dict.fromkeys(
        ["cylinder", "cylinders", "can", "cans", "puck", "pucks", "drum", "drums"], "cylinder"
    ),
}
#: colour words → a colour of ``spec.COLOURS``.
COLOUR_WORDS: dict[str, str] = {
    "red": "red",
    "crimson": "red",
    "scarlet": "red",
    "green": "green",
    "lime": "green",
    "blue": "blue",
    "navy": "blue",
    "yellow": "yellow",
    "golden": "yellow",
    "gold": "yellow",
    "orange": "orange",
    "purple": "purple",
    "violet": "purple",
    "pink": "pink",
    "magenta": "pink",
    "white": "white",
    "cyan": "cyan",
    "turquoise": "cyan",
    "aqua": "cyan",
}
#: Object adjectives → effects: ``size``/``mass`` entries multiply, the others set the value.
#: A size word scales the mass by its cube too (same material, bigger body).
OBJECT_WORDS: dict[str, dict[str, float]] = {
    "tiny": {"size": 0.6},
    "small": {"size": 0.75},
    "little": {"size": 0.75},
    "medium": {"size": 1.0},
    "large": {"size": 1.3},
    "big": {"size": 1.3},
    "huge": {"size": 1.7},
    "giant": {"size": 1.7},
    "heavy": {"mass": 3.0},
    "light": {"mass": 0.3},
    "lightweight": {"mass": 0.3},
    "bouncy": {"restitution": 0.8},
    "bouncing": {"restitution": 0.8},
    "elastic": {"restitution": 0.8},
    "springy": {"restitution": 0.8},
    "rubber": {"restitution": 0.7, "friction": 1.0},
    "rubbery": {"restitution": 0.7, "friction": 1.0},
    "dead": {"restitution": 0.0},
    "clay": {"restitution": 0.0, "friction": 0.8, "mass": 1.5},
    "wooden": {"friction": 0.6},
    "wood": {"friction": 0.6},
    "metal": {"mass": 4.0, "friction": 0.35},
    "metallic": {"mass": 4.0, "friction": 0.35},
    "steel": {"mass": 4.0, "friction": 0.35},
    "iron": {"mass": 4.0, "friction": 0.35},
    "plastic": {"mass": 0.5, "friction": 0.4},
    "foam": {"mass": 0.2, "friction": 0.8},
    "slippery": {"friction": 0.1},
    "smooth": {"friction": 0.2},
    "icy": {"friction": 0.05},
    "greasy": {"friction": 0.08},
    "rough": {"friction": 1.2},
    "sticky": {"friction": 1.4},
    "grippy": {"friction": 1.3},
}
#: Table adjectives → table friction.
TABLE_WORDS: dict[str, float] = {
    "icy": 0.05,
    "frozen": 0.05,
    "ice": 0.05,
    "slippery": 0.08,
    "glass": 0.15,
    "polished": 0.15,
    "smooth": 0.2,
    "metal": 0.3,
    "wooden": 0.5,
    "wood": 0.5,
    "normal": 0.5,
    "rough": 1.0,
    "rubber": 1.2,
    "sticky": 1.4,
    "sandpaper": 1.5,
}
TABLE_NOUNS = ("table", "tabletop", "desk", "surface")
#: World words: gravity (m/s²) and light (diffuse level).
GRAVITY_WORDS: dict[str, float] = {
    "low": 4.9,
    "weak": 4.9,
    "normal": 9.81,
    "earth": 9.81,
    "high": 14.7,
    "strong": 14.7,
    "heavy": 14.7,
    "moon": 1.62,
    "lunar": 1.62,
    "zero": 0.0,
    "jupiter": 24.8,
}
LIGHT_WORDS: dict[str, float] = {"dim": 0.25, "dark": 0.2, "soft": 0.4, "bright": 0.8}
LIGHT_NOUNS = ("light", "lighting", "lights")
COUNT_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "a pair of": 2,
    "a couple of": 2,
    "pair of": 2,
    "couple of": 2,
}
RELATION_WORDS: dict[str, str] = {
    "left of": "left_of",
    "to the left of": "left_of",
    "on the left of": "left_of",
    "right of": "right_of",
    "to the right of": "right_of",
    "on the right of": "right_of",
    "behind": "behind",
    "in front of": "in_front_of",
    "on": "on",
    "on top of": "on",
    "atop": "on",
    "near": "near",
    "next to": "near",
    "beside": "near",
    "close to": "near",
    "by": "near",
}
#: Words that carry no parameter but are understood (never reported as ignored).
SEPARATORS = ("and", "with", "plus", ",", "there is", "there are", "under", "put", "place")
FILLER = (*SEPARATORS, "the", "of", "in", "is", "are", "sits", "stands")
PRONOUNS = ("it", "them", "itself", "themselves")
#: Most known words (and commas) one prompt may have (4 objects need far fewer).
MAX_WORDS = 32
#: A colour when a prompt gives none, per kind (so a bare "a ball" is still a definite world).
DEFAULT_COLOUR = {"cube": "red", "ball": "blue", "cylinder": "green"}


def _alt(words: Iterable[str]) -> str:
    """A lark regexp terminal matching any of ``words`` as whole words (longest first)."""
    ws = sorted(set(words), key=len, reverse=True)
    return "/(?:" + "|".join(re.escape(w).replace(r"\ ", " ") for w in ws) + r")(?![a-z])/"


GRAMMAR = rf"""
start: _SEP* item (_SEP* item)* _SEP*
?item: group | table | world | orphan
group: quant? (ADJ | COLOUR)* KIND (_COP? relation)?
orphan.-5: quant? (ADJ | COLOUR)+ | quant
table: ON? DET? TADJ* TABLE
world: GADJ GRAVITY | IN? DET? LADJ LIGHTN | IN DET? DARK
relation: REL target
target: tgroup | PRONOUN
tgroup: quant? (ADJ | COLOUR)* KIND
quant: COUNT | DIGITS | DET
COUNT: {_alt(COUNT_WORDS)}
DIGITS: /[0-9]+/
DET: /(?:the|a|an)(?![a-z])/
ADJ: {_alt(OBJECT_WORDS)}
COLOUR: {_alt(COLOUR_WORDS)}
KIND: {_alt(KIND_WORDS)}
REL: {_alt(RELATION_WORDS)}
ON: /on(?![a-z])/
IN: /in(?![a-z])/
TADJ: {_alt(TABLE_WORDS)}
TABLE: {_alt(TABLE_NOUNS)}
GADJ: {_alt(GRAVITY_WORDS)}
GRAVITY: /gravity(?![a-z])/
LADJ: {_alt(LIGHT_WORDS)}
LIGHTN: {_alt(LIGHT_NOUNS)}
DARK: /dark(?![a-z])/
PRONOUN: {_alt(PRONOUNS)}
_SEP: {_alt(SEPARATORS)}
_COP: /(?:is|are|sits|stands)(?![a-z])/
%ignore " "
"""

_PARSER = Lark(GRAMMAR, parser="earley", lexer="dynamic", ambiguity="resolve")

KNOWN_WORDS = frozenset(
    w
    for table in (
        KIND_WORDS,
        COLOUR_WORDS,
        OBJECT_WORDS,
        TABLE_WORDS,
        TABLE_NOUNS,
        GRAVITY_WORDS,
        LIGHT_WORDS,
        LIGHT_NOUNS,
        COUNT_WORDS,
        RELATION_WORDS,
        FILLER,
        PRONOUNS,
        ("gravity", "dark"),
    )
    for phrase in table
    for w in phrase.split()
)


@dataclass(frozen=True)
class ParseResult:
    """What a prompt became: the spec, the words not understood, the clamping warnings."""

    spec: SceneSpec
    ignored: tuple[str, ...] = ()
    """Words (or unused descriptions) the grammar did not use, in prompt order."""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    """Values clamped into the family's ranges, each naming its range."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "ignored": list(self.ignored),
            "warnings": list(self.warnings),
        }


@dataclass
class _Group:
    """An object group while reading: its count, descriptive words, kind and relation."""

    count: int
    words: list[str]
    kind: str
    definite: bool = False
    relation: tuple[str, Any] | None = None  # (relation kind, _Group | pronoun)
    indices: list[int] = field(default_factory=list)


def _words(prompt: str) -> list[str]:
    """Lower-cased words and commas; other punctuation separates like a comma."""
    text = re.sub(r"[.;:!?]", ",", prompt.lower())
    text = re.sub(r"[^a-z0-9, '-]", " ", text).replace("-", " ").replace(",", " , ")
    return text.split()


def _read_group(tree: Tree) -> _Group:
    count, definite, words, kind, relation = 1, False, [], "", None
    for child in tree.children:
        if isinstance(child, Tree) and child.data == "quant":
            tok = child.children[0]
            if tok.type == "DIGITS":
                count = int(tok)
            elif tok.type == "DET":
                definite = str(tok) == "the"
            else:
                count = COUNT_WORDS[" ".join(str(tok).split())]
        elif isinstance(child, Tree) and child.data == "relation":
            rel_tok, target = child.children
            rel = RELATION_WORDS[" ".join(str(rel_tok).split())]
            (inner,) = target.children
            relation = (rel, _read_group(inner) if isinstance(inner, Tree) else str(inner))
        elif isinstance(child, Token) and child.type == "KIND":
            kind = KIND_WORDS[str(child)]
        elif isinstance(child, Token):
            words.append(str(child))
    return _Group(count, words, kind, definite, relation)


def _object(group: _Group) -> ObjectSpec:
    """An object of ``group``'s kind with its words applied in order (unclamped)."""
    colours = [COLOUR_WORDS[w] for w in group.words if w in COLOUR_WORDS]
    if len(set(colours)) > 1:
        raise ReverieError(
            f"contradiction: one {group.kind} cannot be {' and '.join(dict.fromkeys(colours))}"
        )
    values = dict(DEFAULTS)
    for w in group.words:
        for key, v in OBJECT_WORDS.get(w, {}).items():
            if key == "size":
                values["size"] *= v
                values["mass"] *= v**3
            elif key == "mass":
                values["mass"] *= v
            else:
                values[key] = v
    colour = colours[0] if colours else DEFAULT_COLOUR[group.kind]
    return ObjectSpec(group.kind, colour, **{k: round(v, 5) for k, v in values.items()})


def _said(relation: str) -> str:
    return relation.replace("_", " ")


def _matches(group: _Group, o: ObjectSpec) -> bool:
    colours = {COLOUR_WORDS[w] for w in group.words if w in COLOUR_WORDS}
    return o.kind == group.kind and (not colours or o.colour in colours)


def parse_prompt(prompt: str, seed: int = 0) -> ParseResult:
    """Read ``prompt`` into a placed, clamped ``SceneSpec`` (see the module docstring).

    Raises ``ReverieError`` (one line) for a prompt that names no object, more than
    ``MAX_OBJECTS`` objects, or contradictory relations or colours."""
    words = _words(prompt)
    ignored = [w for w in words if w != "," and w not in KNOWN_WORDS and not w.isdigit()]
    kept_words = [w for w in words if w == "," or w in KNOWN_WORDS or w.isdigit()]
    if len(kept_words) > MAX_WORDS:  # Earley's cost grows fast with long ambiguous runs
        raise ReverieError(
            f"the prompt has {len(kept_words)} known words; at most {MAX_WORDS} are read"
        )
    kept = " ".join(kept_words)
    if not kept.strip(" ,"):
        raise ReverieError(
            f"the prompt names no object (kinds: cube, ball, cylinder); ignored: {ignored}"
        )
    try:
        tree = _PARSER.parse(kept)
    except UnexpectedInput as e:
        bad = kept[e.pos_in_stream :].split()[:1] if e.pos_in_stream is not None else []
        where = f" at {bad[0]!r}" if bad else " at its end"
        raise ReverieError(f"cannot read the prompt{where} (in {kept!r})") from None
    except LarkError as e:
        raise ReverieError(f"cannot read the prompt: {e}") from None

    table_friction, gravity, light = 0.5, 9.81, Light()
    groups: list[_Group] = []
    for item in tree.children:
        if item.data == "group":
            groups.append(_read_group(item))
        elif item.data == "orphan":  # a description whose noun was not understood
            said = [str(t) for t in item.scan_values(lambda _: True)]
            if len(said) > 1 or said[0] not in COUNT_WORDS:  # a bare "a": its noun is reported
                ignored.append(" ".join(said))
        elif item.data == "table":
            for t in item.children:
                if t.type == "TADJ":
                    table_friction = TABLE_WORDS[str(t)]
        elif item.data == "world":
            first, *rest = (str(t) for t in item.children)
            if first in GRAVITY_WORDS and rest == ["gravity"]:
                gravity = GRAVITY_WORDS[first]
            elif first == "in":
                light = dataclasses.replace(light, diffuse=LIGHT_WORDS["dark"])
            else:
                light = dataclasses.replace(light, diffuse=LIGHT_WORDS[first])

    # Step 1. objects, group by group (a relation's new target follows its subject).
    objects: list[ObjectSpec] = []
    relations: dict[int, tuple[str, int]] = {}
    order: list[_Group] = []

    def add(group: _Group) -> None:
        if group.count > MAX_OBJECTS:
            raise ReverieError(
                f"{group.count} {group.kind}s is beyond the family's maximum of "
                f"{MAX_OBJECTS} objects"
            )
        if group.count < 1:
            raise ReverieError(f"a scene needs at least one {group.kind}, got {group.count}")
        group.indices = list(range(len(objects), len(objects) + group.count))
        objects.extend(_object(group) for _ in range(group.count))
        order.append(group)

    for g in groups:
        if g.definite:  # "the cube" at the top level names one already mentioned, if any
            same = [i for i, o in enumerate(objects) if _matches(g, o)]
            if same:
                g.indices = same[:1]
                order.append(g)
            else:
                add(g)
        else:
            add(g)
        if g.relation is None:
            continue
        rel, target = g.relation
        if isinstance(target, str):
            if target in ("itself", "themselves"):
                raise ReverieError(f"contradiction: a {g.kind} cannot be {_said(rel)} itself")
            prev = [h for h in order if h is not g]
            if not prev:
                raise ReverieError(f"'{target}' refers to nothing before the {g.kind}")
            t = prev[-1].indices[-1]
        else:
            same = [i for i, o in enumerate(objects) if i not in g.indices and _matches(target, o)]
            if target.definite and same:
                t = same[0]
            elif target.definite and any(_matches(target, objects[i]) for i in g.indices):
                raise ReverieError(f"contradiction: a {g.kind} cannot be {_said(rel)} itself")
            else:
                add(target)
                t = target.indices[0]
        for i in g.indices:
            if i == t:
                raise ReverieError(f"contradiction: a {g.kind} cannot be {_said(rel)} itself")
            relations[i] = (rel, t)
    if not objects:
        raise ReverieError(
            "the prompt names no object (kinds: cube, ball, cylinder)"
            + (f"; ignored: {', '.join(repr(w) for w in ignored)}" if ignored else "")
        )
    if len(objects) > MAX_OBJECTS:
        raise ReverieError(
            f"the prompt names {len(objects)} objects; the family holds at most {MAX_OBJECTS}"
        )

    # Step 2. relations, clamping, placement.
    objects = [
        dataclasses.replace(o, relation=Relation(*relations[i])) if i in relations else o
        for i, o in enumerate(objects)
    ]
    spec = SceneSpec(
        tuple(objects),
        table_friction=table_friction,
        gravity=gravity,
        light=light,
        prompt=prompt.strip(),
    )
    spec, warnings = clamp(spec)
    return ParseResult(place(spec, seed=seed), tuple(ignored), tuple(warnings))
