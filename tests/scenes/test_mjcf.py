"""Scene → env and → MJCF: the env builds from a spec, the default scene is untouched, and the
exported MJCF reloads with the same bodies, masses, frictions and trajectory.

PYTHONPATH=src .venv/bin/python -m pytest tests/scenes/test_mjcf.py -q
"""

from __future__ import annotations

import mujoco
import numpy as np

from reverie.envs import make
from reverie.envs.tabletop import TABLE_TOP
from reverie.scenes import ObjectSpec, SceneSpec
from reverie.scenes.mjcf import export_mjcf
from reverie.scenes.text import parse_prompt

PROMPT = "a heavy red cube, a bouncy blue ball and a small green cylinder on an icy table"


def test_env_builds_from_spec() -> None:
    spec = parse_prompt(PROMPT).spec
    env = make("tabletop", scene=spec)
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and env.n_objects == 3
    assert info["state"].shape == (4 + 13 * 3,)  # pusher 2+2, per object qpos 7 + qvel 6
    pos = env.object_positions()
    for o, p in zip(spec.objects, pos):
        np.testing.assert_allclose(p, [*o.pose, TABLE_TOP + o.size], atol=1e-9)
    masses = env.model.body_mass[env._bodies]
    np.testing.assert_allclose(masses, [o.mass for o in spec.objects])
    # the scene's colour is drawn: the red cube's pixels are red
    assert np.allclose(env.model.geom_rgba[env._geoms[0], :3], spec.objects[0].rgb)
    for _ in range(5):
        obs, _, _, _, info = env.step(env.action_space.sample())
    assert np.all(np.isfinite(info["state"]))


def test_icy_table_slides_farther() -> None:
    """The table's friction reaches the contact (MuJoCo's max-mixing alone would hide it)."""

    def slide(table: float) -> float:
        spec = SceneSpec((ObjectSpec("cube", "red", pose=(-0.2, 0.0)),), table_friction=table)
        env = make("tabletop", scene=spec)
        env.reset(seed=0)
        env.launch(0, np.array([1.0, 0.0, 0.0]))
        for _ in range(10):
            env.step(np.zeros(2))
        return float(env.object_positions()[0, 0] + 0.2)

    # same object, only the table differs: MuJoCo's default (larger friction wins) would make
    # an icy table under a 0.5 object no different from a 0.5 table
    assert slide(0.05) > 2 * slide(0.5) > 2 * slide(1.5)


def test_set_scene_changes_state_layout() -> None:
    env = make("tabletop", scene=parse_prompt("a cube").spec)
    env.reset(seed=0)
    env.set_scene(parse_prompt("four balls").spec)
    _, info = env.reset(seed=0)
    assert env.n_objects == 4 and info["state"].shape == (4 + 13 * 4,)


def test_default_scene_unchanged() -> None:
    env = make("tabletop")
    assert env.scene is None and env.object_names == ("cube", "ball")
    assert env.model.npair == 0 and env.model.nexclude == 0


def test_mjcf_round_trip() -> None:
    spec = parse_prompt(PROMPT).spec
    env = make("tabletop", scene=spec)
    env.reset(seed=0)
    model = mujoco.MjModel.from_xml_string(export_mjcf(spec))
    data = mujoco.MjData(model)
    names = [model.body(i).name for i in range(model.nbody)]
    assert names == [
        n for n in (env.model.body(i).name for i in range(env.model.nbody)) if n != "occluder"
    ]
    for name in env.object_names:
        np.testing.assert_allclose(model.body(name).mass, env.model.body(name).mass)
        np.testing.assert_allclose(model.geom(name).friction, env.model.geom(name).friction)
    np.testing.assert_allclose(model.pair_friction, env.model.pair_friction)
    np.testing.assert_allclose(model.opt.gravity, env.model.opt.gravity)
    # same trajectory under the same controls (the exporter's model from the env's start state)
    state = env.get_state()
    data.qpos[:] = state[: model.nq]
    data.qvel[:] = state[model.nq : model.nq + model.nv]
    mujoco.mj_forward(model, data)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.uniform(-1, 1, 2)
        env.step(a)
        data.ctrl[:] = a
        mujoco.mj_step(model, data, nstep=env.frame_skip)
    np.testing.assert_allclose(data.qpos, env.get_state()[: model.nq], atol=1e-6)


def test_export_primitive_geoms_only() -> None:
    model = mujoco.MjModel.from_xml_string(export_mjcf(parse_prompt("a cube and a ball").spec))
    allowed = {mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_SPHERE}
    allowed |= {mujoco.mjtGeom.mjGEOM_CYLINDER, mujoco.mjtGeom.mjGEOM_PLANE}
    assert {mujoco.mjtGeom(t) for t in model.geom_type} <= allowed
    assert model.nmesh == 0


def test_planar_worlds_export_approximate_mjcf(tmp_path) -> None:
    import pytest

    from reverie.cli import main
    from reverie.io import ReverieError
    from reverie.scenes.planar import export_planar

    for world, bodies in (("pusht", {"agent", "T"}), ("tworoom", {"agent"})):
        xml = export_planar(world)
        assert "APPROXIMATE" in xml
        model = mujoco.MjModel.from_xml_string(xml)
        assert {model.body(i).name for i in range(1, model.nbody)} == bodies
        joints = {mujoco.mjtJoint(t) for t in model.jnt_type}
        assert mujoco.mjtJoint.mjJNT_FREE not in joints  # planar: slides (and a hinge)
        data = mujoco.MjData(model)
        data.ctrl[:] = [1.0, 0.0]
        mujoco.mj_step(model, data, nstep=20)
        assert data.qvel[0] > 0  # the pusher follows its command
    assert main(["world", "export", "pusht", "--out", str(tmp_path / "p.xml")]) == 0
    with pytest.raises(ReverieError, match="no planar export"):
        export_planar("reacher")


def test_default_scene_xml_byte_identical() -> None:
    """Scenes must not change the default world: its MJCF is the one before scenes existed
    (sha256 of main's ``_build_xml`` output at size 64). A deliberate change of the default
    scene updates these hashes, and the data it invalidates."""
    import hashlib

    expected = {
        2: "09d68ae74d6991997273ec3d6c783254d76fe1c17da03732bdd7bdd9b7c4a4eb",
        3: "211c73562b4792500844a3178d943e95e3367bc910f0f9b203578eda4389f699",
    }
    for n, digest in expected.items():
        xml = make("tabletop", n_objects=n)._build_xml()
        assert hashlib.sha256(xml.encode()).hexdigest() == digest


def test_bouncy_ball_bounces_dead_ball_does_not() -> None:
    def rebound(restitution: float) -> float:
        spec = SceneSpec((ObjectSpec("ball", "blue", restitution=restitution, pose=(0, 0)),))
        env = make("tabletop", scene=spec)
        env.reset(seed=0)
        rest = TABLE_TOP + spec.objects[0].size
        env.set_object_pose(0, [0.0, 0.0, rest + 0.3])
        heights = []
        for _ in range(20):
            env.step(np.zeros(2))
            heights.append(env.object_positions()[0, 2] - rest)
        first_low = int(np.argmin(heights[:8]))
        return max(heights[first_low:])

    assert rebound(0.9) > 0.03 > 0.005 > rebound(0.0)
    env = make("tabletop", scene=parse_prompt("a bouncy ball").spec)
    assert env.model.pair_solref[0, 1] == env.model.geom_solref[env._geoms[0], 1] < 0.5
