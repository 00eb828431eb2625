"""``world_from``: one door from a prompt, a spec file or a frame (PNG) to a World.

PYTHONPATH=src .venv/bin/python -m pytest tests/scenes/test_world.py -q
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reverie.envs import make
from reverie.io import ReverieError
from reverie.scenes.spec import save_spec
from reverie.scenes.world import world_from


def test_prompt_scene_and_image_agree(tmp_path: Path) -> None:
    w = world_from(prompt="a yellow cube left of a pink ball and a dragon")
    assert w.source == "prompt" and w.ignored == ("dragon",) and not w.to_dict()["out_of_range"]
    save_spec(w.spec, tmp_path / "s.json")
    assert world_from(scene=tmp_path / "s.json").spec == w.spec
    env = make("tabletop", scene=w.spec)
    frame, _ = env.reset(seed=0)
    Image.fromarray(frame).save(tmp_path / "f.png")
    seen = world_from(image=tmp_path / "f.png").spec
    assert sorted(o.label for o in seen.objects) == sorted(o.label for o in w.spec.objects)
    for a in w.spec.objects:
        (b,) = [o for o in seen.objects if o.colour == a.colour]
        assert np.hypot(*np.subtract(a.pose, b.pose)) < 0.02


def test_bad_input_one_line(tmp_path: Path) -> None:
    with pytest.raises(ReverieError, match="exactly one"):
        world_from()
    with pytest.raises(ReverieError, match="exactly one"):
        world_from(prompt="a cube", scene=tmp_path / "s.json")
    with pytest.raises(ReverieError, match="empty"):
        world_from(prompt="  ")
    with pytest.raises(ReverieError, match="image not found"):
        world_from(image=tmp_path / "missing.png")
    (tmp_path / "bad.png").write_text("not a png")
    with pytest.raises(ReverieError, match="cannot read the image"):
        world_from(image=tmp_path / "bad.png")
