"""Tests of physics clips in scenes of the family: held-out scenes, edits on the scene's objects.

.venv/bin/python -m pytest tests/physics/test_scene_clips.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from reverie.envs.tabletop import TABLE_TOP
from reverie.io import ReverieError
from reverie.physics.clips import (
    CATEGORIES,
    SCENE_TRIES,
    GenerateConfig,
    generate_clips,
    load_clips,
    make_pair,
    pair_scene,
    reproduce_pair,
)
from reverie.physics.scene import _slide_speed, make_env
from reverie.scenes.spec import COLOURS, ObjectSpec, SceneSpec, spec_from_dict


@pytest.fixture(scope="module")
def scene_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 pairs per category (15), 16 frames of 32 px, each in its own held-out random scene."""
    out = tmp_path_factory.mktemp("scene-clips")
    cfg = GenerateConfig(out=out, pairs_per_category=3, size=32, frames=16, scenes="random")
    return generate_clips(cfg, progress=False)


def _states(root: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(root / "clips.h5", "r") as f:
        return f[key]["states_possible"][()], f[key]["states_impossible"][()]


def test_each_pair_records_its_held_out_scene(scene_clips: Path) -> None:
    manifest = json.loads((scene_clips / "manifest.json").read_text())
    assert manifest["scenes"] == "random"
    assert [p["category"] for p in manifest["pairs"]] == [c for c in CATEGORIES for _ in range(3)]
    scenes = []
    for p in manifest["pairs"]:
        spec = spec_from_dict(p["scene"])
        assert len(spec.objects) == 2
        # The scene is one the pair's own seed draws (never collect's [episode_seed, 16]).
        assert spec in [pair_scene(p["seed"], k) for k in range(SCENE_TRIES)]
        scenes.append(spec)
    assert len(set(scenes)) == len(scenes)  # a new world per pair


def test_scene_pairs_identical_before_violation_and_different_after(scene_clips: Path) -> None:
    clips = load_clips(scene_clips)
    for k, pair in enumerate(clips.pairs):
        v = pair["violation_frame"]
        np.testing.assert_array_equal(clips.possible[k, :v], clips.impossible[k, :v])
        diff = np.abs(clips.possible[k, v:].astype(int) - clips.impossible[k, v:]).max(-1)
        assert (diff > 40).sum((1, 2)).max() >= 3, pair


def test_a_pair_is_reproduced_from_its_recorded_scene(scene_clips: Path) -> None:
    clips = load_clips(scene_clips)
    for k in (0, 7):
        arrays = reproduce_pair(scene_clips, k)
        np.testing.assert_array_equal(arrays["possible"], clips.possible[k])
        np.testing.assert_array_equal(arrays["impossible"], clips.impossible[k])


def test_the_edits_act_on_the_scene_objects(scene_clips: Path) -> None:
    manifest = json.loads((scene_clips / "manifest.json").read_text())
    seen = set()
    for p in manifest["pairs"]:
        spec, i = spec_from_dict(p["scene"]), p["object"]
        pos, imp = _states(scene_clips, p["key"])
        env = make_env(32, spec)
        z_pos, z_imp = env.object_positions(pos[-1])[i, 2], env.object_positions(imp[-1])[i, 2]
        if p["variant"] == "sink_through_table":  # the scene's contact <pair> is switched off
            assert z_imp < TABLE_TOP - 0.02 < z_pos, p
        if p["variant"] == "recolour_in_view":  # to a named colour that no object wears
            name = p["violation"]["colour"]
            assert name in COLOURS and name not in {o.colour for o in spec.objects}
        seen.add(p["variant"])
        env.close()
    assert {"sink_through_table", "recolour_in_view"} <= seen


def test_training_scenes_come_from_a_family_dataset(tmp_path: Path) -> None:
    from reverie.data.collect import CollectConfig, collect

    data = collect(
        CollectConfig(
            env="tabletop",
            episodes=2,
            out=tmp_path / "data",
            size=32,
            episode_steps=4,
            scenes="random",
        ),
        progress=False,
    )
    with h5py.File(data / "shard_00000.h5", "r") as f:
        trained = [spec_from_dict(json.loads(f[k].attrs["scene"])) for k in sorted(f)]
    cfg = GenerateConfig(
        out=tmp_path / "clips",
        pairs_per_category=1,
        size=32,
        frames=16,
        scenes=str(data),
        categories=("permanence", "immutability"),
    )
    manifest = json.loads((generate_clips(cfg, progress=False) / "manifest.json").read_text())
    assert all(spec_from_dict(p["scene"]) in trained for p in manifest["pairs"])


def test_slides_are_slowed_on_an_icy_table_only() -> None:
    icy = SceneSpec(
        (ObjectSpec("cube", "red", friction=0.05), ObjectSpec("ball", "blue", friction=0.05)),
        table_friction=0.05,
    )
    env = make_env(16, icy)
    # v² = 2·μ·g·d with μ = √(0.05·0.05), g = 9.81, d = 0.35 m: it stops within the table.
    assert _slide_speed(env, 0, 2.0) == pytest.approx(np.sqrt(2 * 0.05 * 9.81 * 0.35), rel=1e-3)
    env.close()
    default = make_env(16)
    assert _slide_speed(default, 0, 2.0) == 2.0
    default.close()


def test_bad_scene_input_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--scene-objects must be 2"):
        GenerateConfig(out=tmp_path, scenes="random", scene_objects=3)
    with pytest.raises(ReverieError, match="neither none, random nor a dataset"):
        generate_clips(GenerateConfig(out=tmp_path / "x", scenes=str(tmp_path / "nope")))
    three = SceneSpec(tuple(ObjectSpec("ball", c) for c in ("red", "blue", "green")))
    with pytest.raises(ReverieError, match="two-object scenes; this scene has 3"):
        make_pair("gravity", 1, size=16, frames=16, scene=three)
