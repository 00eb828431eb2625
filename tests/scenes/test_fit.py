"""Image → SceneSpec: rendered frames of held-out scenes give back their objects.

PYTHONPATH=src .venv/bin/python -m pytest tests/scenes/test_fit.py -q
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from reverie.envs import make
from reverie.io import ReverieError
from reverie.scenes.fit import fit_image
from reverie.scenes.spec import Camera, Light, ObjectSpec, SceneSpec


def test_recovers_kind_colour_position() -> None:
    spec = SceneSpec(
        (
            ObjectSpec("cube", "yellow", pose=(-0.12, 0.05), yaw=0.3),
            ObjectSpec("ball", "purple", pose=(0.15, -0.1), size=0.05),
        )
    )
    env = make("tabletop", scene=spec)
    frame, _ = env.reset(seed=1)
    fit = fit_image(frame).spec
    assert sorted(o.label for o in fit.objects) == ["purple ball", "yellow cube"]
    got = {o.colour: o for o in fit.objects}
    for o in spec.objects:
        assert np.hypot(*np.subtract(got[o.colour].pose, o.pose)) < 0.02


def test_empty_or_bad_frame_refused() -> None:
    env = make("tabletop", scene=SceneSpec((ObjectSpec("cube", "red", pose=(0, 0)),)))
    env.reset(seed=0)
    env.hide_object(0)
    with pytest.raises(ReverieError, match="no object"):
        fit_image(env.render())
    with pytest.raises(ReverieError, match="square RGB"):
        fit_image(np.zeros((10, 20, 3), np.uint8))


def test_default_light_assumed() -> None:
    """The fit is made for the family's standard light; document what it assumes."""
    assert dataclasses.asdict(Light()) == {"diffuse": 0.55, "ambient": 0.25}
    assert Camera() == Camera(0.0, 0.0, 0.0)
