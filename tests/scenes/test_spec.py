"""SceneSpec: validation, clamping, versioned JSON, atomic save, the `reverie world` commands.

PYTHONPATH=src .venv/bin/python -m pytest tests/scenes/test_spec.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reverie.cli import main
from reverie.io import ReverieError
from reverie.scenes import ObjectSpec, Relation, SceneSpec, clamp, load_spec, save_spec
from reverie.scenes.sample import random_scene
from reverie.scenes.spec import SPEC_VERSION, spec_from_dict


def _spec() -> SceneSpec:
    return SceneSpec(
        (
            ObjectSpec("cube", "red", pose=(0.1, 0.0), mass=0.5),
            ObjectSpec("ball", "blue", restitution=0.8, relation=Relation("left_of", 0)),
        ),
        table_friction=0.05,
        prompt="test",
    )


def test_save_load_round_trip(tmp_path: Path) -> None:
    spec = _spec()
    path = save_spec(spec, tmp_path / "s.json")
    assert json.loads(path.read_text())["version"] == SPEC_VERSION
    back, warnings = load_spec(path)
    assert back == spec and warnings == []
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temp file left


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d.update(version=SPEC_VERSION + 1), "newer than this Reverie reads"),
        (lambda d: d.pop("version"), "no integer 'version'"),
        (lambda d: d["objects"][0].update(kind="dragon"), "unknown object kind 'dragon'"),
        (lambda d: d["objects"][0].update(colour="mauve"), "unknown colour 'mauve'"),
        (lambda d: d["objects"][0].update(wings=2), "unexpected keyword argument 'wings'"),
        (lambda d: d["objects"][0].update(mass="heavy"), "'mass' must be a finite number"),
        (lambda d: d.update(objects=[]), "1 to 4 objects"),
        (lambda d: d.update(objects=d["objects"] * 3), "1 to 4 objects"),
        (lambda d: d["objects"][1].update(relation={"kind": "left_of", "target": 1}), "itself"),
        (lambda d: d["objects"][1].update(relation={"kind": "under", "target": 0}), "relation"),
    ],
)
def test_malformed_refused_in_one_line(tmp_path: Path, edit, message: str) -> None:
    d = _spec().to_dict()
    edit(d)
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ReverieError, match=message) as e:
        load_spec(tmp_path / "bad.json")
    assert "\n" not in str(e.value)


def test_not_json_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ReverieError, match="not valid JSON"):
        load_spec(tmp_path / "bad.json")
    with pytest.raises(ReverieError, match="JSON object"):
        spec_from_dict([1, 2])


def test_clamp_names_the_range() -> None:
    spec = SceneSpec((ObjectSpec("ball", "red", mass=9.0, pose=(0.6, 0.0)),), gravity=1.6)
    out, warnings = clamp(spec)
    assert out.objects[0].mass == 2.0 and out.objects[0].pose == (0.25, 0.0)
    assert out.gravity == 4.9
    assert len(warnings) == 3
    assert any("mass 9 outside the family's training range [0.05, 2]" in w for w in warnings)
    assert clamp(out)[1] == []


def test_random_scene_seeded_and_in_range() -> None:
    a = random_scene(np.random.default_rng(5), 3)
    assert a == random_scene(np.random.default_rng(5), 3)
    assert len(a.objects) == 3 and a.placed and clamp(a)[1] == []
    assert len({o.colour for o in a.objects}) == 3


def test_world_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.json"
    assert main(["world", "save", "a heavy red cube and a dragon", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ignored: 'dragon'" in text and out.is_file()
    assert main(["world", "show", str(out)]) == 0
    assert "red cube" in capsys.readouterr().out
    assert main(["world", "load", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == SPEC_VERSION
    assert (
        main(["world", "export", str(out), "--format", "mjcf", "--out", str(tmp_path / "s.xml")])
        == 0
    )
    assert (tmp_path / "s.xml").read_text().count("<body") >= 3
    assert main(["world", "save", "five cubes", "--out", str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "maximum of 4" in err and "Traceback" not in err
    (tmp_path / "v.json").write_text(json.dumps({"version": 99, "objects": []}))
    assert main(["world", "show", str(tmp_path / "v.json")]) == 1
    assert "version 99" in capsys.readouterr().err
