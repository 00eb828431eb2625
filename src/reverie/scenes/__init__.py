"""Describable worlds: ``SceneSpec`` (versioned JSON), text → spec, image → spec, spec → MJCF.

    from reverie.scenes import parse_prompt, save_spec
    result = parse_prompt("a heavy red cube and two bouncy blue balls on an icy table")
    save_spec(result.spec, "runs/scene.json")
    env = reverie.envs.make("tabletop", scene=result.spec)

Only this package knows scene details; the tabletop env asks it for its MJCF (``mjcf.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reverie.scenes.spec import (
    COLOURS,
    KINDS,
    MAX_OBJECTS,
    RANGES,
    SPEC_VERSION,
    Camera,
    Light,
    ObjectSpec,
    Relation,
    SceneSpec,
    clamp,
    load_spec,
    save_spec,
    spec_from_dict,
)

__all__ = [
    "COLOURS",
    "KINDS",
    "MAX_OBJECTS",
    "RANGES",
    "SPEC_VERSION",
    "Camera",
    "Light",
    "ObjectSpec",
    "Relation",
    "SceneSpec",
    "clamp",
    "load_spec",
    "parse_prompt",
    "save_spec",
    "spec_from_dict",
]


if TYPE_CHECKING:
    from reverie.scenes.text import ParseResult


def parse_prompt(prompt: str, seed: int = 0) -> ParseResult:
    """Text → ``ParseResult`` (see ``reverie.scenes.text.parse_prompt``; imported on first use,
    so ``import reverie.scenes`` does not build the grammar)."""
    from reverie.scenes.text import parse_prompt as _parse

    return _parse(prompt, seed=seed)
