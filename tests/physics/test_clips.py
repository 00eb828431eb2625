"""Tests of the violation-of-expectation clips: matched pairs, edits at v, reproducibility.

.venv/bin/python -m pytest tests/physics/test_clips.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from reverie.data.format import EVAL_SEED_BASE, MAX_COLLECT_SEED, SEED_STRIDE
from reverie.envs.tabletop import TABLE_TOP
from reverie.io import ReverieError
from reverie.physics.clips import (
    CATEGORIES,
    HARD_VARIANTS,
    PHYSICS_SEED_BASE,
    VARIANTS,
    GenerateConfig,
    load_clips,
    make_pair,
    pair_seed,
    reproduce_pair,
    variants,
)


def _states(root: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(root / "clips.h5", "r") as f:
        return f[key]["states_possible"][()], f[key]["states_impossible"][()]


def test_pairs_identical_before_violation_and_different_after(clip_dir: Path) -> None:
    clips = load_clips(clip_dir)
    assert clips.possible.shape == clips.impossible.shape == (40, 16, 32, 32, 3)
    assert clips.actions.shape == (40, 15, 2) and not clips.actions.any()
    for k, pair in enumerate(clips.pairs):
        v = pair["violation_frame"]
        assert 1 <= v < 16
        np.testing.assert_array_equal(clips.possible[k, :v], clips.impossible[k, :v])
        # Some frame from v on differs clearly (not a rounding flicker).
        diff = np.abs(clips.possible[k, v:].astype(int) - clips.impossible[k, v:]).max(-1)
        assert (diff > 40).sum((1, 2)).max() >= 3, pair


def test_manifest_records_every_pair_with_a_held_out_seed(clip_dir: Path) -> None:
    manifest = json.loads((clip_dir / "manifest.json").read_text())
    assert [p["category"] for p in manifest["pairs"]] == [c for c in CATEGORIES for _ in range(8)]
    for p in manifest["pairs"]:
        i = p["index"] % 8
        assert p["seed"] == pair_seed(0, p["category"], i)
        assert p["variant"] in VARIANTS[p["category"]] and p["has_actions"] is False
    # Disjoint from every collection seed and from the planning evaluation's seeds.
    seeds = [p["seed"] for p in manifest["pairs"]]
    assert min(seeds) >= PHYSICS_SEED_BASE > MAX_COLLECT_SEED * SEED_STRIDE + SEED_STRIDE
    assert PHYSICS_SEED_BASE - EVAL_SEED_BASE == 500_000_000
    assert len(set(seeds)) == len(seeds)
    # Every variant of every category is represented.
    assert {p["variant"] for p in manifest["pairs"]} == {v for vs in VARIANTS.values() for v in vs}


def test_possible_and_impossible_clips_are_reproduced_from_the_seed(clip_dir: Path) -> None:
    clips = load_clips(clip_dir)
    for k in range(0, 40, 8):  # the first pair of each category
        again = reproduce_pair(clip_dir, k)
        np.testing.assert_array_equal(again["possible"], clips.possible[k])
        np.testing.assert_array_equal(again["impossible"], clips.impossible[k])


def test_impossible_clips_edit_the_simulator_at_v(clip_dir: Path) -> None:
    manifest = json.loads((clip_dir / "manifest.json").read_text())
    from reverie.envs import make

    env = make("tabletop", size=32)
    for p in manifest["pairs"]:
        v, i, variant = p["violation_frame"], p["object"], p["variant"]
        s_pos, s_imp = _states(clip_dir, p["key"])
        np.testing.assert_array_equal(s_pos[:v], s_imp[:v])
        z_pos = np.array([env.object_positions(s)[i, 2] for s in s_pos])
        z_imp = np.array([env.object_positions(s)[i, 2] for s in s_imp])
        xy_imp = np.array([env.object_positions(s)[i, :2] for s in s_imp])
        if variant.startswith("vanish"):
            assert np.all(xy_imp[v:, 0] > 5)  # parked off camera
        elif variant in ("hover_off_edge", "toss_hover"):
            assert np.ptp(z_imp[v:]) < 1e-3 and z_pos[-1] < z_imp[-1] - 0.05  # held vs fell
        elif variant in ("rise_off_edge", "toss_rise"):
            assert z_imp[-1] > z_imp[v - 1] > z_pos[-1]  # fell up, while the lawful one is down
        elif variant.startswith("sideways") or variant == "toss_sideways":
            xy_pos = np.array([env.object_positions(s)[i, :2] for s in s_pos])
            assert np.linalg.norm(xy_imp[-1] - xy_pos[-1]) > 0.1  # pulled off its lawful path
        elif variant in ("sink_through_table", "drop_through_table"):
            assert z_imp[-1] < TABLE_TOP - 0.05 and z_pos[-1] > TABLE_TOP  # through vs on it
        elif variant.startswith("recolour"):
            np.testing.assert_array_equal(s_pos, s_imp)  # only the colour changed
        elif variant.startswith("jump") or variant == "appear_behind_screen":
            jump = np.linalg.norm(xy_imp[v] - xy_imp[v - 1])
            assert jump > 0.1
    env.close()


def test_bad_config_and_corrupt_files_are_refused(clip_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pairs-per-category"):
        GenerateConfig(out=tmp_path, pairs_per_category=0)
    with pytest.raises(ValueError, match="categories"):
        GenerateConfig(out=tmp_path, categories=("magic",))
    with pytest.raises(ValueError, match="frames"):
        GenerateConfig(out=tmp_path, frames=8)
    with pytest.raises(ReverieError, match="not found"):
        load_clips(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text((clip_dir / "manifest.json").read_text())
    (bad / "clips.h5").write_bytes((clip_dir / "clips.h5").read_bytes()[:1000])
    with pytest.raises(ReverieError, match="checksum"):
        load_clips(bad)


def test_hard_variants_make_matched_pairs() -> None:
    from reverie.envs import make

    env = make("tabletop", size=32)
    for category, hard in HARD_VARIANTS.items():
        cycle = variants(category, hard=True)
        for variant in hard:
            base = PHYSICS_SEED_BASE
            seed = next(base + s for s in range(10) if cycle[(base + s) % len(cycle)] == variant)
            plan, arrays = make_pair(category, seed, size=32, frames=16, env=env, hard=True)
            assert plan.variant == variant
            v = plan.violation_frame
            np.testing.assert_array_equal(arrays["possible"][:v], arrays["impossible"][:v])
            assert np.any(arrays["possible"][v:] != arrays["impossible"][v:])
    env.close()
