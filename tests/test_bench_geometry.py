"""benchmarks/bench_geometry.py: the true distance it ranks against is each env's own."""

from __future__ import annotations

import numpy as np
from _bench import load_benchmark

from reverie.envs import make


def test_reacher_distance_is_the_envs_goal_distance_across_the_wrap() -> None:
    bench, env = load_benchmark("bench_geometry"), make("reacher", size=32)
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(-9, 9, 200), rng.uniform(-2.8, 2.8, 200), np.zeros((200, 2))])
    b = np.column_stack([rng.uniform(-9, 9, 200), rng.uniform(-2.8, 2.8, 200), np.zeros((200, 2))])
    want = [env.goal_distance(x, y) for x, y in zip(a, b)]
    assert np.allclose(bench.true_distance("reacher", a, b), want)
    # A full turn of the shoulder is no distance at all; plain x, y distance would call it 2π.
    turned = a.copy()
    turned[:, 0] += 2 * np.pi
    assert np.allclose(bench.true_distance("reacher", a, turned), 0, atol=1e-9)
    assert bench.bands_for("reacher")[-1][1] > np.sqrt(np.pi**2 + 5.6**2)


def test_tworoom_distance_is_the_agents_euclidean_distance() -> None:
    bench = load_benchmark("bench_geometry")
    a = np.array([[0.0, 0.0, 5.0, 5.0], [10.0, 10.0, 0.0, 0.0]])
    b = np.array([[3.0, 4.0, 0.0, 0.0], [10.0, 10.0, 9.0, 9.0]])
    assert np.allclose(bench.true_distance("tworoom", a, b), [5.0, 0.0])
    assert bench.bands_for("tworoom") == bench.BANDS
