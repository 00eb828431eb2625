"""Collection: manifest contents, resumption after a crash, corruption detection, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from reverie.data import collect as collect_mod
from reverie.data.collect import CollectConfig, collect
from reverie.data.format import FORMAT_VERSION, load_manifest, read_shard, verify_shards
from reverie.io import ReverieError


def small(out: Path, **kw) -> CollectConfig:
    args = dict(env="tworoom", episodes=12, out=out, episode_steps=20, shard_episodes=4)
    return CollectConfig(**{**args, **kw})


def contents(root: Path) -> dict[int, dict]:
    out = {}
    for shard in load_manifest(root)["shards"]:
        out.update(read_shard(root / shard["file"]))
    return out


def test_manifest_describes_the_data(tmp_path: Path) -> None:
    root = collect(small(tmp_path / "d"), progress=False)
    m = load_manifest(root)
    assert m["format_version"] == FORMAT_VERSION and m["complete"]
    assert m["env"] == "tworoom" and m["env_id"] == "reverie/TwoRoom-v0"
    assert m["episodes"] == 12 and m["frames"] == 12 * 21 and len(m["shards"]) == 3
    assert m["action_space"]["shape"] == [2] and m["state_dim"] == 4
    ep = read_shard(root / m["shards"][0]["file"])[0]
    assert ep["obs"].shape == (21, 64, 64, 3) and ep["obs"].dtype == np.uint8
    assert ep["actions"].shape == (20, 2) and ep["states"].shape == (21, 4)


def test_interrupted_collection_resumes_to_the_same_dataset(tmp_path, monkeypatch) -> None:
    reference = contents(collect(small(tmp_path / "ref"), progress=False))

    real = collect_mod._collect_shard
    calls = {"n": 0}

    def crash_on_second(job):
        calls["n"] += 1
        if calls["n"] == 2:
            (job[0].out / ".shard_00001.h5.half.tmp").write_bytes(b"partial")  # a torn write
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(collect_mod, "_collect_shard", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        collect(small(tmp_path / "run"), progress=False)
    partial = load_manifest(tmp_path / "run")
    assert not partial["complete"] and len(partial["shards"]) == 1
    monkeypatch.setattr(collect_mod, "_collect_shard", real)

    root = collect(small(tmp_path / "run"), progress=False)
    assert not list(root.glob("*.tmp"))
    resumed = contents(root)
    assert sorted(resumed) == sorted(reference)
    for i in reference:
        for key in ("obs", "actions", "states"):
            np.testing.assert_array_equal(resumed[i][key], reference[i][key])


def test_parallel_workers_give_the_same_data(tmp_path: Path) -> None:
    one = contents(collect(small(tmp_path / "a"), progress=False))
    two = contents(collect(small(tmp_path / "b", workers=2), progress=False))
    for i in one:
        np.testing.assert_array_equal(one[i]["obs"], two[i]["obs"])


def test_corrupted_shard_is_named(tmp_path: Path) -> None:
    root = collect(small(tmp_path / "d"), progress=False)
    shard = root / "shard_00001.h5"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ReverieError, match="shard_00001.h5"):
        verify_shards(root, load_manifest(root))
    shard.unlink()
    with pytest.raises(ReverieError, match="missing.*shard_00001.h5"):
        verify_shards(root, load_manifest(root))


def test_other_settings_in_same_dir_refused(tmp_path: Path) -> None:
    collect(small(tmp_path / "d"), progress=False)
    with pytest.raises(ReverieError, match="other settings"):
        collect(small(tmp_path / "d", policy="random"), progress=False)


def test_fewer_episodes_refused_without_touching_the_data(tmp_path: Path) -> None:
    # Re-running with fewer --episodes used to delete the shards beyond the new count.
    root = collect(small(tmp_path / "d"), progress=False)  # 12 episodes in 3 shards
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    for fewer in (4, 10):  # whole shards beyond it; a shard cut in half
        with pytest.raises(ReverieError, match="already holds 12 episodes"):
            collect(small(root, episodes=fewer), progress=False)
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before
    grown = collect(small(root, episodes=14), progress=False)  # growing stays in place
    assert load_manifest(grown)["episodes"] == 14 and set(contents(grown)) == set(range(14))


def test_other_format_version_refused(tmp_path: Path) -> None:
    root = collect(small(tmp_path / "d", episodes=2), progress=False)
    m = json.loads((root / "manifest.json").read_text())
    m["format_version"] = 99
    (root / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ReverieError, match="format version 99"):
        load_manifest(root)


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"env": "mars"}, "unknown environment"),
        ({"episodes": 0}, "--episodes"),
        ({"policy": "psychic"}, "--policy"),
        ({"seed": 5000}, "--seed"),
        ({"workers": 0}, "--workers"),
    ],
)
def test_bad_options(tmp_path: Path, kw: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        small(tmp_path, **kw)


def test_default_episodes_follow_the_env_recipe(tmp_path: Path) -> None:
    # ``reverie collect`` with no --episodes collects what the env's headline row trained on.
    from reverie.recipes import RECIPES

    for env in ("tworoom", "pusht", "reacher"):
        assert CollectConfig(env=env, out=tmp_path).episodes == RECIPES[env]["episodes"]
    assert CollectConfig(env="tworoom", episodes=7, out=tmp_path).episodes == 7


def test_full_disk_leaves_nothing_half_written(tmp_path: Path, monkeypatch) -> None:
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(collect_mod, "write_episode", no_space)
    with pytest.raises(ReverieError, match="No space left"):
        collect(small(tmp_path / "d"), progress=False)
    assert not list((tmp_path / "d").glob("shard_*")) and not list((tmp_path / "d").glob(".*tmp"))
    assert h5py  # the format library is importable alongside


def test_collect_random_scenes_records_each_spec(tmp_path) -> None:
    """`--scenes random`: one seeded spec per episode, stored with it and named in the manifest."""
    import json as _json

    import h5py

    from reverie.data.collect import episode_scene
    from reverie.scenes.spec import spec_from_dict

    cfg = CollectConfig(
        env="tabletop",
        episodes=3,
        out=tmp_path / "d",
        episode_steps=4,
        scenes="random",
        shard_episodes=3,
        policy="random",
    )
    collect(cfg, progress=False)
    manifest = _json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["settings"]["scenes"] == "random" and manifest["scenes"]["mode"] == "random"
    assert manifest["state_dim"] == 4 + 13 * 2
    with h5py.File(tmp_path / "d" / "shard_00000.h5") as f:
        specs = [_json.loads(f[k].attrs["scene"]) for k in sorted(f)]
        seeds = [int(f[k].attrs["seed"]) for k in sorted(f)]
    assert len({_json.dumps(s, sort_keys=True) for s in specs}) == 3  # a new world per episode
    assert spec_from_dict(specs[1]) == episode_scene(cfg, seeds[1])  # reproducible from the seed
    with h5py.File(tmp_path / "d" / "shard_00000.h5") as f:
        first_states = [f[k]["states"][0] for k in sorted(f)]
    for spec, state in zip(specs, first_states):  # each episode was simulated in its own world
        poses = [o["pose"] for o in spec["objects"]]
        np.testing.assert_allclose([state[2:4], state[9:11]], poses, atol=1e-9)


def test_collect_scene_file_records_the_spec(tmp_path) -> None:
    """`--scenes FILE`: every episode in that world; the manifest holds its spec."""
    import json as _json

    from reverie.scenes.spec import save_spec, spec_from_dict
    from reverie.scenes.text import parse_prompt

    spec = parse_prompt("a heavy red cube left of a bouncy blue ball").spec
    save_spec(spec, tmp_path / "s.json")
    cfg = CollectConfig(
        env="tabletop",
        episodes=2,
        out=tmp_path / "d",
        episode_steps=3,
        scenes=str(tmp_path / "s.json"),
        policy="random",
    )
    collect(cfg, progress=False)
    manifest = _json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert spec_from_dict(manifest["scenes"]["spec"]) == spec
    with pytest.raises(ValueError, match="--env tabletop"):
        CollectConfig(env="tworoom", scenes="random")
