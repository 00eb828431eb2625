"""One door into a world: a prompt, a spec file or a frame → ``World`` (spec + what was not used).

    from reverie.scenes.world import world_from
    world = world_from(prompt="two bouncy balls on an icy table")
    world = world_from(scene="runs/scene.json")
    world = world_from(image="goal.png")         # fit by rendering (``reverie.scenes.fit``)
    world.to_dict()     # {"spec", "lines", "ignored", "warnings", "source"}: what a page shows

``reverie play --prompt/--scene/--image`` and the page's prompt box come through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reverie.io import ReverieError
from reverie.scenes.spec import SceneSpec, clamp, describe, load_spec

MAX_PROMPT_CHARS = 500


@dataclass(frozen=True)
class World:
    """A scene and how it was made."""

    spec: SceneSpec
    source: str
    """prompt | scene | image."""
    ignored: tuple[str, ...] = ()
    """Words of the prompt not understood (never mapped)."""
    warnings: tuple[str, ...] = ()
    """Values clamped into the family's training ranges (the page's out-of-range badge)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "lines": describe(self.spec),
            "ignored": list(self.ignored),
            "warnings": list(self.warnings),
            "out_of_range": bool(self.warnings),
            "source": self.source,
        }


def world_from(
    prompt: str | None = None,
    scene: str | Path | None = None,
    image: str | Path | np.ndarray | None = None,
    seed: int = 0,
) -> World:
    """Exactly one of ``prompt``, ``scene`` (a spec JSON path) or ``image`` (a PNG path or a
    uint8 frame) → ``World``; bad input raises a one-line ``ReverieError``."""
    given = [x is not None for x in (prompt, scene, image)]
    if sum(given) != 1:
        raise ReverieError("give exactly one of a prompt, a scene spec file or an image")
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ReverieError("the prompt is empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ReverieError(f"the prompt is longer than {MAX_PROMPT_CHARS} characters")
        from reverie.scenes.text import parse_prompt

        r = parse_prompt(prompt, seed=seed)
        return World(r.spec, "prompt", r.ignored, r.warnings)
    if scene is not None:
        spec, warnings = load_spec(scene)
        return World(spec, "scene", (), tuple(warnings))
    from reverie.scenes.fit import fit_image

    frame = image if isinstance(image, np.ndarray) else _read_png(Path(image))  # type: ignore[arg-type]
    spec, warnings = clamp(fit_image(frame, seed=seed).spec)
    return World(spec, "image", (), tuple(warnings))


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ReverieError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise ReverieError(f"cannot read the image {path}: {e}") from None
